"""``solvers.over_devices``: a solver's batch split over devices gives the whole batch's answer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_on_fake_devices

from jaxsparse import solvers


def test_over_devices_on_8_fake_devices_equals_one_call():
    """Homotopy (with its info pytree), OMP and FISTA on a batch of 7 x 143 signals (1001: padded to
    1008 for 8 devices), jitted and not: the same codes as one call up to float rounding, the same
    supports, batch shape kept."""
    out = run_on_fake_devices("""
        import jax, jax.numpy as jnp, numpy as np
        import jaxsparse as js
        from jaxsparse.solvers import homotopy, omp, fista, over_devices
        assert jax.device_count() == 8
        x, _, d = js.data.sparse_coding_data(jax.random.key(0), 1001, 48, 16, 3, noise=0.01)
        x = x.reshape(7, 143, 16)
        z, info = homotopy(d, x, lam=0.05, max_active=16, return_info=True)
        z8, info8 = jax.jit(lambda d, x: over_devices(homotopy)(d, x, lam=0.05, max_active=16, return_info=True))(d, x)
        assert z8.shape == z.shape == (7, 143, 48) and info8.converged.shape == (7, 143)
        assert bool(info8.converged.all()) and bool(info.converged.all())
        np.testing.assert_allclose(z8, z, atol=2e-5)
        assert bool(((z8 != 0) == (z != 0)).all())
        np.testing.assert_array_equal(info8.path_steps, info.path_steps)
        np.testing.assert_allclose(over_devices(omp)(d, x, k=3), omp(d, x, k=3), atol=2e-5)
        np.testing.assert_allclose(over_devices(fista)(d, x, lam=0.05, n_iter=50), fista(d, x, lam=0.05, n_iter=50),
                                   atol=2e-5)
        two = over_devices(omp, devices=jax.devices()[:2])(d, x[0, :5], k=3)
        np.testing.assert_allclose(two, omp(d, x[0, :5], k=3), atol=2e-5)
        np.testing.assert_allclose(over_devices(omp)(d, x[0, 0], k=3), omp(d, x[0, 0], k=3), atol=2e-5)  # one signal
        try:
            over_devices(omp)(d, jnp.float32(1.0), k=3)
        except ValueError as e:
            assert "`x` must be signals" in str(e)
        else:
            raise AssertionError("a scalar x was accepted")
        print("ok")
    """)
    assert out.strip().endswith("ok")


def test_over_devices_on_one_device_is_the_solver():
    x = jax.random.normal(jax.random.key(0), (5, 8))
    d = jax.random.normal(jax.random.key(1), (12, 8))
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True)
    one = solvers.over_devices(solvers.omp, devices=jax.devices()[:1])
    np.testing.assert_array_equal(one(d, x, k=2), solvers.omp(d, x, k=2))


def test_over_devices_checks_its_arguments():
    with pytest.raises(TypeError, match="`solver` must be callable"):
        solvers.over_devices(3)
    with pytest.raises(ValueError, match="`devices` must be a non-empty sequence"):
        solvers.over_devices(solvers.omp, devices=[])
    with pytest.raises(ValueError, match="`devices` must be a non-empty sequence"):
        solvers.over_devices(solvers.omp, devices=["cpu"])

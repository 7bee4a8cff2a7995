"""``solvers.over_devices`` and ``solvers.over_threads``: a solver's batch split over devices, or into blocks
solved from host threads, gives the whole batch's answer."""

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


def _problem(n_signals=1001):
    """``x [7, n_signals / 7, 16]`` and ``d [48, 16]``: 3-sparse codes plus 1 % noise."""
    from jaxsparse.data import sparse_coding_data

    x, _, d = sparse_coding_data(jax.random.key(0), n_signals, 48, 16, 3, noise=0.01)
    return x.reshape(7, n_signals // 7, 16), d


def test_over_threads_equals_each_blocks_call_and_the_whole_batch():
    """Homotopy with its info pytree on 7 x 143 signals in 4 blocks (1001 padded to 1004): each block
    bit for bit its own call, the whole within float rounding of one call (same supports and path
    lengths); OMP in the default blocks; a batch smaller than the blocks; one signal."""
    x, d = _problem()
    z, info = solvers.homotopy(d, x, lam=0.05, max_active=16, return_info=True)
    z4, info4 = solvers.over_threads(solvers.homotopy, blocks=4)(d, x, lam=0.05, max_active=16, return_info=True)
    assert z4.shape == z.shape == (7, 143, 48) and info4.path_steps.shape == (7, 143)
    flat = jnp.concatenate([x.reshape(-1, 16), jnp.zeros((3, 16))])
    for i, block in enumerate(jnp.split(flat, 4)):
        own = solvers.homotopy(d, block, lam=0.05, max_active=16)
        np.testing.assert_array_equal(z4.reshape(-1, 48)[251 * i:251 * (i + 1)], own[:1001 - 251 * i])
    np.testing.assert_allclose(z4, z, atol=2e-5)
    assert bool(((z4 != 0) == (z != 0)).all()) and bool(info4.converged.all())
    np.testing.assert_array_equal(info4.path_steps, info.path_steps)
    np.testing.assert_allclose(solvers.over_threads(solvers.omp)(d, x, k=3), solvers.omp(d, x, k=3), atol=2e-5)
    few = solvers.over_threads(solvers.omp, blocks=8)(d, x[0, :5], k=3)
    np.testing.assert_allclose(few, solvers.omp(d, x[0, :5], k=3), atol=2e-5)
    np.testing.assert_array_equal(solvers.over_threads(solvers.omp, blocks=3)(d, x[0, 0], k=3),
                                  solvers.omp(d, x[0, 0], k=3))


def test_over_threads_under_transformations_is_one_call():
    """Under jit and grad the arrays are traced: one call of the solver, the same values and gradients."""
    x, d = _problem(70)
    split = solvers.over_threads(solvers.fista, blocks=2)
    jitted = jax.jit(lambda d, x: split(d, x, lam=0.05, n_iter=30))(d, x)
    np.testing.assert_allclose(jitted, solvers.fista(d, x, lam=0.05, n_iter=30), atol=1e-6)
    grad = jax.grad(lambda d: jnp.sum(split(d, x, lam=0.05, n_iter=30) ** 2))(d)
    ref = jax.grad(lambda d: jnp.sum(solvers.fista(d, x, lam=0.05, n_iter=30) ** 2))(d)
    np.testing.assert_allclose(grad, ref, atol=1e-6)


def test_over_threads_keeps_the_callers_precision_and_x64():
    """JAX keeps matmul precision and x64 per thread: the blocks' calls run in the caller's."""
    seen = []

    def solver(d, x):
        seen.append((jax.config.jax_default_matmul_precision, jax.config.jax_enable_x64))
        return x @ d.T

    x, d = _problem(70)
    with jax.default_matmul_precision("highest"):
        solvers.over_threads(solver, blocks=2)(d, x)
    assert seen == [("highest", False)] * 2
    seen.clear()
    with jax.enable_x64(True):
        out = solvers.over_threads(solver, blocks=2)(np.asarray(d, np.float64), np.asarray(x, np.float64))
    assert seen == [(None, True)] * 2 and out.dtype == np.float64


def test_over_threads_checks_its_arguments():
    with pytest.raises(TypeError, match="`solver` must be callable"):
        solvers.over_threads(3)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="`blocks` must be a positive int"):
            solvers.over_threads(solvers.omp, blocks=bad)
    with pytest.raises(ValueError, match="`x` must be signals"):
        solvers.over_threads(solvers.omp, blocks=2)(jnp.eye(4), jnp.float32(1.0), k=1)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.data import random_dictionary, sparse_codes, sparse_coding_data


def test_dictionary_unit_norm_rows():
    d = random_dictionary(jax.random.key(0), 32, 8)
    assert d.shape == (32, 8) and d.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("nonneg", [True, False])
def test_codes_exactly_k_nonzeros(nonneg):
    z = np.asarray(sparse_codes(jax.random.key(1), 5000, 16, 3, nonneg=nonneg))
    assert z.shape == (5000, 16)
    assert np.all((z != 0).sum(1) == 3)
    assert np.all(z >= 0) if nonneg else np.any(z < 0)
    # Uniform positions: each latent active with probability K/N = 3/16 (5000 draws: sd ~ 0.0055).
    np.testing.assert_allclose((z != 0).mean(0), 3 / 16, atol=0.025)
    # Half-normal magnitudes: E|N(0,1)| = sqrt(2/pi).
    np.testing.assert_allclose(np.abs(z[z != 0]).mean(), np.sqrt(2 / np.pi), rtol=0.03)


def test_problem_is_consistent_and_deterministic():
    key = jax.random.key(2)
    x, z, d = sparse_coding_data(key)
    assert x.shape == (1024, 8) and z.shape == (1024, 16) and d.shape == (16, 8)
    np.testing.assert_allclose(x, z @ d, rtol=1e-6)
    x2, _, _ = sparse_coding_data(key)
    np.testing.assert_array_equal(x, x2)
    xn, _, _ = sparse_coding_data(key, noise=0.1, dictionary=d)
    assert 0.05 < float(jnp.std(xn - z @ d)) < 0.15


def test_bad_input_named():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="`k`"):
        sparse_codes(key, 10, 16, 17)
    with pytest.raises(ValueError, match="`k`"):
        sparse_codes(key, 10, 16, 0)
    with pytest.raises(TypeError, match="`n_samples`"):
        sparse_codes(key, 10.0, 16, 3)
    with pytest.raises(ValueError, match="`noise`"):
        sparse_coding_data(key, noise=-1.0)
    with pytest.raises(ValueError, match="`magnitude`"):
        sparse_codes(key, 10, 16, 3, magnitude="cauchy")
    with pytest.raises(ValueError, match="`dictionary`"):
        sparse_coding_data(key, dictionary=jnp.ones((3, 3)))

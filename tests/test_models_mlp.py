"""The BatchNorm MLP (paper 2's encoder) against a NumPy forward pass and PyTorch-style checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import mlp


def _numpy_forward(params, x, slope):
    h = np.asarray(x, np.float64)
    layers = params["layers"]
    for layer in layers[:-1]:
        h = h @ np.asarray(layer["w"]) + np.asarray(layer["b"])
        if "scale" in layer:
            h = (h - h.mean(0)) / np.sqrt(h.var(0) + 1e-5) * np.asarray(layer["scale"]) + np.asarray(layer["shift"])
        h = np.where(h > 0, h, slope * h)
    return h @ np.asarray(layers[-1]["w"]) + np.asarray(layers[-1]["b"])


def test_csi_widths():
    assert mlp.csi_widths(5) == (5, 50, 250, 250, 250, 250, 50, 5)
    assert mlp.csi_widths(3, n_hidden=1, wide=2, narrow=1) == (3, 3, 6, 3, 3)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_forward_matches_numpy(batch_norm):
    params = mlp.init(jax.random.key(0), (3, 8, 8, 2), batch_norm=batch_norm)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 3)), jnp.float32)
    np.testing.assert_allclose(mlp.apply(params, x, slope=0.2), _numpy_forward(params, x, 0.2), rtol=1e-4, atol=1e-5)
    assert mlp.apply(params, x, features=True).shape == (16, 8)
    assert ("scale" in params["layers"][0]) == batch_norm and "scale" not in params["layers"][-1]


def test_init_bounds_and_vmap():
    params = mlp.init(jax.random.key(1), (100, 50, 4))
    assert float(jnp.max(jnp.abs(params["layers"][0]["w"]))) <= 0.1
    stacked = jax.vmap(lambda k: mlp.init(k, (3, 8, 2)))(jax.random.split(jax.random.key(0), 4))
    x = jnp.ones((4, 5, 3)) * jnp.arange(5.0)[None, :, None]
    out = jax.jit(jax.vmap(mlp.apply))(stacked, x)
    assert out.shape == (4, 5, 2) and bool(jnp.all(jnp.isfinite(out)))


def test_batch_norm_normalises_the_batch():
    u = jnp.asarray(np.random.default_rng(2).normal(3.0, 5.0, size=(256, 4)), jnp.float32)
    v = mlp.batch_norm(u, jnp.ones(4), jnp.zeros(4))
    np.testing.assert_allclose(jnp.mean(v, 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(v, 0), 1.0, atol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="widths"):
        mlp.init(jax.random.key(0), (3,))
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        mlp.init(jax.random.key(0), (3, 0, 2))
    with pytest.raises(TypeError, match="dtype"):
        mlp.init(jax.random.key(0), (3, 2), dtype=jnp.int32)
    params = mlp.init(jax.random.key(0), (3, 4, 2))
    with pytest.raises(ValueError, match="`x`"):
        mlp.apply(params, jnp.ones((5, 4)))

"""models.matmul: ``x @ w`` with a reordered weight gradient; values and gradients equal JAX's own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import matmul as mm


@pytest.mark.parametrize("swap", [True, False])
@pytest.mark.parametrize("shape", [((32, 24), (24, 5)), ((32, 5), (5, 24)), ((3, 7, 24), (24, 5))])
def test_value_and_gradients_equal_plain_matmul(monkeypatch, swap, shape):
    monkeypatch.setattr(mm, "SWAP_WEIGHT_GRADIENT", swap)
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x, w = jax.random.normal(kx, shape[0]), jax.random.normal(kw, shape[1])
    target = jax.random.normal(kg, shape[0][:-1] + shape[1][-1:])

    def loss(f, x, w):
        return jnp.sum(jnp.tanh(f(x, w)) * target)

    np.testing.assert_allclose(mm.matmul(x, w), x @ w, rtol=1e-6)
    ours = jax.jit(jax.grad(lambda x, w: loss(mm.matmul, x, w), argnums=(0, 1)))(x, w)
    ref = jax.grad(lambda x, w: loss(jnp.matmul, x, w), argnums=(0, 1))(x, w)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_vmapped_over_weights_and_inputs(monkeypatch):
    """A seed sweep: one weight matrix and one batch per seed."""
    monkeypatch.setattr(mm, "SWAP_WEIGHT_GRADIENT", True)
    x = jax.random.normal(jax.random.key(1), (4, 64, 32))
    w = jax.random.normal(jax.random.key(2), (4, 32, 3))
    grad = jax.vmap(jax.grad(lambda x, w: jnp.sum(jax.nn.relu(mm.matmul(x, w)) ** 2), argnums=1))
    ref = jax.vmap(jax.grad(lambda x, w: jnp.sum(jax.nn.relu(x @ w) ** 2), argnums=1))
    np.testing.assert_allclose(jax.jit(grad)(x, w), ref(x, w), rtol=1e-5, atol=1e-4)


def test_weight_gradient_by_hand():
    x = jnp.arange(6.0).reshape(3, 2)  # [[0, 1], [2, 3], [4, 5]]
    g = jnp.array([[1.0], [0.0], [2.0]])
    np.testing.assert_allclose(mm.weight_gradient(x, g), [[8.0], [11.0]])  # x^T g

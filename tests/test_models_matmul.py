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


@pytest.mark.parametrize("shape", [((24, 5), 32), ((5, 24), 32), ((8, 16), 1)])
def test_matmul_t_is_the_layer_on_transposed_activations(shape):
    """``matmul_t(W, x^T) = (x W)^T``, with JAX's own gradients of ``x W``, alone and vmapped over seeds."""
    (m, n), b = shape
    kx, kw, kg = jax.random.split(jax.random.key(3), 3)
    x, w = jax.random.normal(kx, (4, b, m)), jax.random.normal(kw, (4, m, n))
    target = jax.random.normal(kg, (4, b, n))
    np.testing.assert_allclose(mm.matmul_t(w[0], x[0].T), (x[0] @ w[0]).T, rtol=1e-5, atol=1e-5)
    ours = jax.jit(jax.vmap(jax.grad(lambda x, w, t: jnp.sum(jnp.tanh(mm.matmul_t(w, x.T).T) * t), argnums=(0, 1))))
    ref = jax.vmap(jax.grad(lambda x, w, t: jnp.sum(jnp.tanh(x @ w) * t), argnums=(0, 1)))
    for a, r in zip(ours(x, w, target), ref(x, w, target)):
        np.testing.assert_allclose(a, r, rtol=1e-5, atol=1e-5)


def test_matmul_t_names_bad_shapes():
    with pytest.raises(ValueError, match=r"w \[m, n\] and x_t \[m, B\]"):
        mm.matmul_t(jnp.ones((3, 4)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="x_t"):
        mm.matmul_t(jnp.ones((3, 4)), jnp.ones((2, 3, 5)))


def test_prefers_feature_major_only_for_narrow_layers_on_cpu():
    narrow = {"w": jnp.ones((8, 16)), "b": jnp.ones(16), "out": {"w": jnp.ones((64, 8))}}
    wide = {"w": jnp.ones((8, 16)), "hidden": {"w": jnp.ones((8, mm.FEATURE_MAJOR_MAX_WIDTH + 1))}}
    cpu = jax.default_backend() == "cpu"
    assert mm.prefers_feature_major(narrow) is cpu
    assert mm.prefers_feature_major(wide) is False
    assert mm.prefers_feature_major({"b": jnp.ones(4)}) is False  # no weight matrix

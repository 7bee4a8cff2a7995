"""Cross-entropy heads and InfoNCE (papers 2 and 3) against optax and hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsparse.losses import info_nce, linear_head_cross_entropy


def _problem(seed=0, b=6, d=4, k=5):
    rng = np.random.default_rng(seed)
    f = jnp.asarray(rng.normal(size=(b, d)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, d)), jnp.float32)
    y = jnp.asarray(rng.integers(0, k, size=b), jnp.int32)
    return f, w, y


@pytest.mark.parametrize("eps", [0.0, 0.3, 0.8])
@pytest.mark.parametrize("normalize,tau", [(False, 1.0), (True, 0.1)])
def test_linear_head_cross_entropy_equals_optax(eps, normalize, tau):
    f, w, y = _problem()
    loss, aux = linear_head_cross_entropy(f, w, y, normalize=normalize, temperature=tau, label_smoothing=eps)
    if normalize:
        f = f / jnp.linalg.norm(f, axis=1, keepdims=True)
        w = w / jnp.linalg.norm(w, axis=1, keepdims=True)
    logits = f @ w.T / tau
    target = optax.smooth_labels(jax.nn.one_hot(y, w.shape[0]), eps)
    np.testing.assert_allclose(loss, jnp.mean(optax.softmax_cross_entropy(logits, target)), rtol=1e-6)
    np.testing.assert_allclose(aux["accuracy"], np.mean(np.argmax(logits, 1) == y))


def test_linear_head_cross_entropy_by_hand():
    # two classes, one sample, f = [1, 0], W = [[1, 0], [0, 0]]: logits (1, 0)
    loss, aux = linear_head_cross_entropy(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0], [0.0, 0.0]]),
                                          jnp.array([0]))
    np.testing.assert_allclose(loss, math.log(1 + math.exp(-1)), rtol=1e-6)
    assert float(aux["accuracy"]) == 1.0
    # smoothing 0.5 spreads half the target mass evenly: q = (0.75, 0.25)
    loss, _ = linear_head_cross_entropy(jnp.array([[1.0, 0.0]]), jnp.array([[1.0, 0.0], [0.0, 0.0]]),
                                        jnp.array([0]), label_smoothing=0.5)
    lse = math.log(math.e + 1)
    np.testing.assert_allclose(loss, 0.75 * (lse - 1) + 0.25 * lse, rtol=1e-6)


def test_info_nce_by_hand():
    # unit vectors: a = (e1, e2), p = (e1, e1); similarities [[1, 1], [0, 0]] / tau
    a = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    p = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    tau = 0.5
    loss, aux = info_nce(a, p, temperature=tau)
    row0 = math.log(2 * math.exp(2)) - 2   # s = (2, 2), positive 2
    row1 = math.log(2)                    # s = (0, 0), positive 0
    np.testing.assert_allclose(loss, (row0 + row1) / 2, rtol=1e-6)
    # symmetric: columns: col0 s = (2, 0) positive 2; col1 s = (2, 0) positive 0
    col0 = math.log(math.exp(2) + 1) - 2
    col1 = math.log(math.exp(2) + 1)
    sym, _ = info_nce(a, p, temperature=tau, symmetric=True)
    np.testing.assert_allclose(sym, 0.5 * ((row0 + row1) / 2 + (col0 + col1) / 2), rtol=1e-6)
    # normalisation: scaling the inputs does not change the loss
    scaled, _ = info_nce(3 * a, 7 * p, temperature=tau)
    np.testing.assert_allclose(scaled, loss, rtol=1e-6)
    assert 0.0 <= float(aux["accuracy"]) <= 1.0


def test_byol_loss_by_hand_and_no_gradient_into_the_target():
    from jaxsparse.losses import byol_loss

    q = jnp.array([[3.0, 0.0], [0.0, 2.0]])
    z = jnp.array([[1.0, 1.0], [0.0, -5.0]])  # cosines 1/sqrt(2) and -1
    loss, aux = byol_loss(q, z)
    np.testing.assert_allclose(loss, ((2 - math.sqrt(2)) + 4) / 2, rtol=1e-6)
    np.testing.assert_allclose(aux["cosine"], (1 / math.sqrt(2) - 1) / 2, rtol=1e-6)
    grad_z = jax.grad(lambda z: byol_loss(q, z)[0])(z)
    np.testing.assert_array_equal(grad_z, jnp.zeros_like(z))
    with pytest.raises(ValueError, match="targets"):
        byol_loss(q, z[:1])


def test_info_nce_equals_cross_entropy_over_the_batch():
    f, _, _ = _problem(b=8)
    g = f + 0.1 * jnp.asarray(np.random.default_rng(1).normal(size=f.shape), jnp.float32)
    loss, _ = info_nce(f, g, temperature=0.2, normalize=False)
    ce, _ = linear_head_cross_entropy(f, g, jnp.arange(8), temperature=0.2)
    np.testing.assert_allclose(loss, ce, rtol=1e-6)


def test_objectives_jit_and_grad():
    f, w, y = _problem()
    g = jax.jit(jax.grad(lambda w: linear_head_cross_entropy(f, w, y, label_smoothing=0.8)[0]))(w)
    assert g.shape == w.shape and bool(jnp.all(jnp.isfinite(g)))
    g = jax.jit(jax.grad(lambda a: info_nce(a, f, temperature=0.1)[0]))(f)
    assert g.shape == f.shape and bool(jnp.all(jnp.isfinite(g)))


def test_objectives_bad_arguments():
    f, w, y = _problem()
    with pytest.raises(ValueError, match="labels"):
        linear_head_cross_entropy(f, w, y[:3])
    with pytest.raises(ValueError, match="labels"):
        linear_head_cross_entropy(f, w, y.astype(jnp.float32))
    with pytest.raises(ValueError, match="head"):
        linear_head_cross_entropy(f, w[:, :2], y)
    with pytest.raises(ValueError, match="temperature"):
        linear_head_cross_entropy(f, w, y, temperature=0.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        linear_head_cross_entropy(f, w, y, label_smoothing=1.0)
    with pytest.raises(TypeError, match="features"):
        linear_head_cross_entropy(np.arange(4).reshape(2, 2), w, y)
    with pytest.raises(ValueError, match="positives"):
        info_nce(f, f[:2])
    with pytest.raises(ValueError, match="anchors"):
        info_nce(f[0], f[0])


def test_normalised_losses_have_finite_gradients_at_a_zero_feature():
    from jaxsparse import losses

    z = jnp.zeros((3, 4)).at[1:].set(jax.random.normal(jax.random.key(0), (2, 4)))  # row 0 is exactly zero
    grads = [jax.grad(lambda a: losses.info_nce(a, a[::-1], temperature=0.5)[0])(z),
             jax.grad(lambda a: losses.byol_loss(a, a[::-1] + 1.0)[0])(z),
             jax.grad(lambda a: losses.linear_head_cross_entropy(a, jnp.ones((5, 4)), jnp.arange(3), normalize=True)[0])(z)]
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in grads)

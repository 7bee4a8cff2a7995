"""conv2d: JAX's own values and gradients, under jit, scan and vmap (unrolled on CPU or grouped)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import conv
from jaxsparse.models.conv import conv2d

PAD = ((1, 1), (1, 1))


def _plain(h, w, stride, pad):
    return jax.lax.conv_general_dilated(h, w, (stride, stride), pad, dimension_numbers=conv.DIMS)


def test_conv2d_gradients_are_jaxs_own(rng):
    # (H, W, k, stride, padding): the net's layers, a stride that leaves input rows unused, asymmetric pads
    for h_size, w_size, k, stride, pad in [(8, 8, 4, 2, ((1, 1), (1, 1))), (9, 7, 4, 2, ((1, 1), (1, 1))),
                                           (5, 5, 2, 1, ((1, 0), (0, 1))), (10, 11, 3, 3, ((2, 0), (1, 2)))]:
        h = jnp.asarray(rng.normal(size=(2, h_size, w_size, 3)), jnp.float32)
        w = jnp.asarray(rng.normal(size=(k, k, 3, 5)), jnp.float32)
        ours = jax.grad(lambda h, w: jnp.sum(jnp.sin(conv2d(h, w, stride, pad))), (0, 1))(h, w)
        plain = jax.grad(lambda h, w: jnp.sum(jnp.sin(_plain(h, w, stride, pad))), (0, 1))(h, w)
        for a, b in zip(ours, plain):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("unroll", [True, False])
def test_vmapped_values_and_gradients_equal_a_loop_over_seeds(rng, unroll, monkeypatch):
    monkeypatch.setattr(conv, "UNROLL_VMAP", unroll)
    hs = jnp.asarray(rng.normal(size=(3, 2, 8, 8, 2)), jnp.float32)
    ws = jnp.asarray(rng.normal(size=(3, 4, 4, 2, 5)), jnp.float32)

    def loss(h, w):
        return jnp.sum(jnp.sin(conv2d(h, w, 2, PAD)))

    value, (dh, dw) = jax.jit(jax.vmap(jax.value_and_grad(loss, (0, 1))))(hs, ws)
    for i in range(3):
        v, (gh, gw) = jax.value_and_grad(lambda h, w: jnp.sum(jnp.sin(_plain(h, w, 2, PAD))), (0, 1))(hs[i], ws[i])
        np.testing.assert_allclose(value[i], v, rtol=1e-5)
        np.testing.assert_allclose(dh[i], gh, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(dw[i], gw, rtol=1e-4, atol=1e-5)


def test_vmap_over_kernels_only_images_only_and_nested(rng):
    h = jnp.asarray(rng.normal(size=(2, 8, 8, 2)), jnp.float32)
    hs = jnp.asarray(rng.normal(size=(3, 2, 8, 8, 2)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 4, 2, 5)), jnp.float32)
    ws = jnp.asarray(rng.normal(size=(3, 4, 4, 2, 5)), jnp.float32)
    out = jax.vmap(conv2d, (None, 0, None, None))(h, ws, 2, PAD)
    np.testing.assert_allclose(out, jnp.stack([_plain(h, ws[i], 2, PAD) for i in range(3)]), rtol=1e-5, atol=1e-5)
    out = jax.vmap(conv2d, (0, None, None, None))(hs, w, 2, PAD)
    np.testing.assert_allclose(out, jnp.stack([_plain(hs[i], w, 2, PAD) for i in range(3)]), rtol=1e-5, atol=1e-5)
    wss = jnp.stack([ws, 2 * ws])  # [2, 3, ...]: a grid of hyperparameters x seeds
    out = jax.vmap(jax.vmap(conv2d, (0, 0, None, None)), (None, 0, None, None))(hs, wss, 2, PAD)
    expected = jnp.stack([jnp.stack([_plain(hs[i], wss[j, i], 2, PAD) for i in range(3)]) for j in range(2)])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)


def test_vmapped_training_steps_inside_scan(rng):
    hs = jnp.asarray(rng.normal(size=(3, 2, 8, 8, 2)), jnp.float32)
    w0 = jnp.asarray(rng.normal(size=(3, 4, 4, 2, 5)), jnp.float32)

    def steps(h, w):
        def body(w, _):
            g = jax.grad(lambda w: jnp.sum(conv2d(h, w, 2, PAD) ** 2))(w)
            return w - 1e-3 * g, None
        return jax.lax.scan(body, w, length=3)[0]

    out = jax.jit(jax.vmap(steps))(hs, w0)
    for i in range(3):
        np.testing.assert_allclose(out[i], steps(hs[i], w0[i]), rtol=1e-5, atol=1e-5)

"""The small ResNet backbone: shapes, GroupNorm by hand, a block against lax convolutions, bad arguments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import resnet


def test_shapes_strides_and_parameter_layout():
    params = resnet.init(jax.random.key(0), image_shape=(9, 9, 3), widths=(8, 16), blocks=2)
    assert sorted(params) == ["block_0_0", "block_0_1", "block_1_0", "block_1_1", "stem"]
    assert "w_short" in params["block_1_0"] and "w_short" not in params["block_0_0"]
    assert "w_short" not in params["block_1_1"]
    x = jax.random.uniform(jax.random.key(1), (5, 9, 9, 3))
    f = resnet.apply(params, x)
    assert f.shape == (5, 16) and resnet.feature_dim(params) == 16 and bool(jnp.all(f >= 0))
    # one image at a time gives the same features (no cross-batch statistics)
    np.testing.assert_allclose(resnet.apply(params, x[2:3])[0], f[2], rtol=1e-5, atol=1e-6)
    # vmapped over a stack of backbones (one per seed)
    stack = jax.vmap(lambda k: resnet.init(k, image_shape=(9, 9, 3), widths=(4,)))(jax.random.split(jax.random.key(2), 2))
    out = jax.jit(jax.vmap(resnet.apply, (0, None)))(stack, x)
    one = resnet.apply(jax.tree.map(lambda a: a[1], stack), x)
    np.testing.assert_allclose(out[1], one, rtol=1e-5, atol=1e-5)
    assert resnet.apply(params, x, stem_stride=2).shape == (5, 16)


def test_group_norm_by_hand():
    h = jax.random.normal(jax.random.key(0), (2, 3, 3, 4)) * 3 + 1
    gamma, beta = jnp.array([1.0, 2.0, 3.0, 4.0]), jnp.array([0.0, 1.0, 0.0, -1.0])
    out = np.asarray(resnet.group_norm(h, gamma, beta, 2))
    hn = np.asarray(h)
    for b in range(2):
        for g in range(2):
            part = hn[b, :, :, 2 * g:2 * g + 2]
            want = (part - part.mean()) / np.sqrt(part.var() + resnet.EPS) * np.asarray(gamma[2 * g:2 * g + 2]) \
                + np.asarray(beta[2 * g:2 * g + 2])
            np.testing.assert_allclose(out[b, :, :, 2 * g:2 * g + 2], want, rtol=1e-5, atol=1e-5)


def test_forward_equals_a_plain_lax_implementation():
    params = resnet.init(jax.random.key(3), image_shape=(8, 8, 1), widths=(4, 8), groups=2)
    x = jax.random.uniform(jax.random.key(4), (3, 8, 8, 1))

    def conv(h, w, s, pad):
        return jax.lax.conv_general_dilated(h, w, (s, s), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    def gn(h, g, b):
        return resnet.group_norm(h, g, b, 2)

    p = params["stem"]
    h = jax.nn.relu(gn(conv(x, p["w"], 1, ((1, 1), (1, 1))), p["gamma"], p["beta"]))
    p = params["block_0_0"]
    y = gn(conv(jax.nn.relu(gn(conv(h, p["w1"], 1, ((1, 1), (1, 1))), p["gamma1"], p["beta1"])), p["w2"], 1,
                ((1, 1), (1, 1))), p["gamma2"], p["beta2"])
    h = jax.nn.relu(y + h)
    p = params["block_1_0"]
    y = gn(conv(jax.nn.relu(gn(conv(h, p["w1"], 2, ((1, 1), (1, 1))), p["gamma1"], p["beta1"])), p["w2"], 1,
                ((1, 1), (1, 1))), p["gamma2"], p["beta2"])
    h = jax.nn.relu(y + gn(conv(h, p["w_short"], 2, ((0, 0), (0, 0))), p["gamma_short"], p["beta_short"]))
    want = h.mean(axis=(1, 2))
    np.testing.assert_allclose(resnet.apply(params, x, groups=2), want, rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="groups"):
        resnet.init(jax.random.key(0), image_shape=(8, 8, 1), widths=(6, 8), groups=4)
    with pytest.raises(ValueError, match="image_shape"):
        resnet.init(jax.random.key(0), image_shape=(8, 8))
    params = resnet.init(jax.random.key(0), image_shape=(8, 8, 1), widths=(4,))
    with pytest.raises(ValueError, match="`x`"):
        resnet.apply(params, jnp.zeros((2, 8, 8, 3)))

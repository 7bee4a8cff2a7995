"""The small conv classifier: layers against lax's own convolution, units, init scale, errors, vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import convnet


def _reference(params, x):
    """The module docstring's equations with ``lax.conv_general_dilated`` (not ``conv2d``)."""
    h, layers = x, {}
    for i in range(convnet.n_convs(params)):
        p = params[f"conv_{i}"]
        s = 1 if i == 0 else 2
        h = jax.nn.relu(jax.lax.conv_general_dilated(h, p["w"], (s, s), ((1, 1), (1, 1)),
                                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["b"])
        layers[f"conv_{i}"] = h
    h = jax.nn.relu(h.reshape(h.shape[0], -1) @ params["fc"]["w"] + params["fc"]["b"])
    return h @ params["out"]["w"] + params["out"]["b"], {**layers, "fc": h}


def test_layers_match_the_equations_and_units_average_over_space():
    params = convnet.init(jax.random.key(0), image_shape=(7, 7, 2), channels=(3, 4, 5), hidden=6, n_classes=4)
    params = jax.tree.map(lambda p: p + 0.1, params)  # non-zero biases
    x = jax.random.uniform(jax.random.key(1), (5, 7, 7, 2))
    logits, layers = jax.jit(lambda p, x: convnet.apply(p, x, return_layers=True))(params, x)
    ref_logits, ref_layers = _reference(params, x)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)
    assert [layers[k].shape for k in layers] == [(5, 7, 7, 3), (5, 4, 4, 4), (5, 2, 2, 5), (5, 6)]
    for k in layers:
        np.testing.assert_allclose(layers[k], ref_layers[k], rtol=1e-5, atol=1e-5)
    units = convnet.units(layers)
    np.testing.assert_allclose(units["conv_1"][2, 3], np.mean(np.asarray(layers["conv_1"])[2, :, :, 3]), rtol=1e-6)
    assert units["fc"] is layers["fc"] and logits.shape == (5, 4)


def test_kaiming_scale_and_one_net_per_key_under_vmap():
    params = convnet.init(jax.random.key(0), image_shape=(8, 8, 1), channels=(64,), hidden=512)
    assert np.std(np.asarray(params["conv_0"]["w"])) == pytest.approx(np.sqrt(2 / 9), rel=0.1)
    assert np.std(np.asarray(params["fc"]["w"])) == pytest.approx(np.sqrt(2 / (64 * 64)), rel=0.05)
    stack = jax.vmap(lambda k: convnet.init(k, image_shape=(8, 8, 1)))(jax.random.split(jax.random.key(2), 3))
    x = jnp.ones((2, 8, 8, 1))
    out = jax.vmap(convnet.apply, (0, None))(stack, x)
    one = convnet.apply(jax.tree.map(lambda p: p[1], stack), x)
    np.testing.assert_allclose(out[1], one, rtol=1e-5, atol=1e-6)
    assert not np.allclose(out[0], out[1])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="image_shape"):
        convnet.init(jax.random.key(0), image_shape=(8, 8))
    with pytest.raises(ValueError, match="channels"):
        convnet.init(jax.random.key(0), image_shape=(8, 8, 1), channels=())
    with pytest.raises(ValueError, match="hidden"):
        convnet.init(jax.random.key(0), image_shape=(8, 8, 1), hidden=0)
    params = convnet.init(jax.random.key(0), image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="`x`"):
        convnet.apply(params, jnp.ones((2, 8, 8, 3)))
    with pytest.raises(ValueError, match="image_shape"):
        convnet.apply(params, jnp.ones((2, 12, 12, 1)))
    with pytest.raises(TypeError, match="floating"):
        convnet.apply(params, jnp.ones((2, 8, 8, 1), jnp.int32))

"""The one-layer modular-arithmetic transformer against a NumPy re-implementation, and its rescaling."""

from functools import partial

import jax
import numpy as np
import pytest

from jaxsparse.models import transformer

apply = jax.jit(transformer.apply)  # one compile per shape instead of one per eager op


def _init(key, **sizes):
    return jax.jit(partial(transformer.init, **sizes))(key)


def _numpy_forward(params, tokens):
    """Per example, per head, written out with loops and explicit softmax."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    out = []
    for t in np.asarray(tokens):
        x = p["embed"]["W_E"][t] + p["embed"]["W_pos"][: len(t)]          # [T, d]
        attn = np.zeros(x.shape[1])
        for h in range(p["attn"]["W_Q"].shape[0]):
            q = x[-1] @ p["attn"]["W_Q"][h]
            k = x @ p["attn"]["W_K"][h]
            v = x @ p["attn"]["W_V"][h]
            s = k @ q / np.sqrt(len(q))
            w = np.exp(s - s.max())
            w /= w.sum()
            attn += (w @ v) @ p["attn"]["W_O"][h]
        r = x[-1] + attn
        r = r + np.maximum(r @ p["mlp"]["W_in"] + p["mlp"]["b_in"], 0) @ p["mlp"]["W_out"] + p["mlp"]["b_out"]
        out.append(r @ p["unembed"]["W_U"])
    return np.stack(out)


def test_forward_equals_a_numpy_reference_with_random_biases():
    params = _init(jax.random.key(0), n_vocab=8, n_out=7, n_ctx=3, d_model=12, n_heads=3, d_mlp=10)
    rng = np.random.default_rng(1)
    params["mlp"]["b_in"], params["mlp"]["b_out"] = rng.normal(size=10), rng.normal(size=12)
    tokens = rng.integers(0, 8, size=(5, 3))
    np.testing.assert_allclose(apply(params, tokens), _numpy_forward(params, tokens), rtol=2e-5, atol=2e-5)
    # leading batch axes and a shorter context
    np.testing.assert_allclose(apply(params, tokens.reshape(5, 1, 3))[:, 0], apply(params, tokens), rtol=1e-6)
    np.testing.assert_allclose(apply(params, tokens[:, :2]), _numpy_forward(params, tokens[:, :2]),
                               rtol=2e-5, atol=2e-5)


def test_init_scales_follow_fan_in_and_rescale_keeps_the_product():
    params = _init(jax.random.key(0), n_vocab=300, n_out=200, n_ctx=3, d_model=64, n_heads=4, d_mlp=256)
    assert params["attn"]["W_Q"].shape == (4, 64, 16) and params["unembed"]["W_U"].shape == (64, 200)
    np.testing.assert_allclose(np.std(params["embed"]["W_E"]), 1 / 8, rtol=0.05)
    np.testing.assert_allclose(np.std(params["mlp"]["W_out"]), 1 / 16, rtol=0.05)
    np.testing.assert_allclose(np.std(params["unembed"]["W_U"]), 1 / np.sqrt(200), rtol=0.05)
    scaled = jax.jit(transformer.rescale)(params, 0.25)
    np.testing.assert_allclose(scaled["embed"]["W_E"], 0.5 * params["embed"]["W_E"], rtol=1e-6)
    np.testing.assert_allclose(scaled["embed"]["W_pos"], 0.5 * params["embed"]["W_pos"], rtol=1e-6)
    np.testing.assert_allclose(scaled["unembed"]["W_U"], 2.0 * params["unembed"]["W_U"], rtol=1e-6)
    np.testing.assert_array_equal(scaled["mlp"]["W_in"], params["mlp"]["W_in"])


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="n_heads"):
        transformer.init(jax.random.key(0), n_vocab=5, n_out=5, n_ctx=3, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="d_mlp"):
        transformer.init(jax.random.key(0), n_vocab=5, n_out=5, n_ctx=3, d_mlp=0)
    params = jax.eval_shape(partial(transformer.init, n_vocab=5, n_out=5, n_ctx=2, d_model=8, n_heads=2, d_mlp=8),
                            jax.random.key(0))
    with pytest.raises(ValueError, match="n_ctx"):
        transformer.apply(params, np.zeros((1, 3), np.int32))
    with pytest.raises(TypeError, match="tokens"):
        transformer.apply(params, np.zeros((1, 2)))

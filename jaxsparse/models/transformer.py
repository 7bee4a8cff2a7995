"""A one-layer attention-plus-MLP transformer without LayerNorm, as pure ``init``/``apply`` functions.

The model of Nanda et al. (ICLR 2023, "Progress measures for grokking via mechanistic
interpretability"), used by Kunin et al. (NeurIPS 2024) for grokking against unbalanced
initialisation. For token ids ``t [..., T]``::

    x_0 = W_E[t] + W_pos                                 [..., T, d]      (embedding, "upstream")
    x_1 = x_0 + sum_h softmax(causal(q_h k_h^T / sqrt(d_head))) v_h W_O^h
          with q_h, k_h, v_h = x_0 W_Q^h, x_0 W_K^h, x_0 W_V^h
    x_2 = x_1 + relu(x_1 W_in + b_in) W_out + b_out
    logits = x_2[..., -1, :] W_U                        [..., n_out]   (readout, "downstream")

Only the last position is read out (the ``=`` token of ``a b =``). **Initialisation** as Nanda et
al.'s code: every matrix ``N(0, 1 / fan_in)`` (``W_E``, ``W_pos``, ``W_Q``, ``W_K``, ``W_V``,
``W_O``, ``W_in``, ``W_out`` with ``fan_in = d`` or ``d_mlp``), except ``W_U ~ N(0, 1 / n_out)``;
biases zero. :func:`rescale` multiplies the embedding and divides the readout by one factor.

Example::

    params = init(jax.random.key(0), n_vocab=114, n_out=113, n_ctx=3)
    logits = apply(params, jnp.array([[3, 5, 113]]))          # [1, 113]
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxsparse._checks import positive_int

PyTree = Any


def init(key: jax.Array, *, n_vocab: int, n_out: int, n_ctx: int, d_model: int = 128, n_heads: int = 4,
         d_mlp: int = 512, dtype=jnp.float32) -> PyTree:
    """Parameters ``{"embed": {"W_E": [n_vocab, d], "W_pos": [n_ctx, d]}, "attn": {"W_Q", "W_K", "W_V":
    [n_heads, d, d_head], "W_O": [n_heads, d_head, d]}, "mlp": {"W_in": [d, d_mlp], "b_in", "W_out":
    [d_mlp, d], "b_out"}, "unembed": {"W_U": [d, n_out]}}`` with ``d_head = d_model / n_heads``.

    Defaults are Nanda et al.'s (``d = 128``, 4 heads, ``d_mlp = 512``).
    """
    n_vocab, n_out, n_ctx = (positive_int(n, v) for n, v in (("n_vocab", n_vocab), ("n_out", n_out), ("n_ctx", n_ctx)))
    d_model, n_heads, d_mlp = (positive_int(n, v) for n, v in (("d_model", d_model), ("n_heads", n_heads),
                                                                 ("d_mlp", d_mlp)))
    if d_model % n_heads:
        raise ValueError(f"`d_model` ({d_model}) must be a multiple of `n_heads` ({n_heads})")
    d_head = d_model // n_heads
    keys = jax.random.split(key, 9)

    def normal(k, shape, fan_in):
        return (jax.random.normal(k, shape, dtype) / jnp.sqrt(fan_in)).astype(dtype)

    return {
        "embed": {"W_E": normal(keys[0], (n_vocab, d_model), d_model), "W_pos": normal(keys[1], (n_ctx, d_model), d_model)},
        "attn": {"W_Q": normal(keys[2], (n_heads, d_model, d_head), d_model),
                 "W_K": normal(keys[3], (n_heads, d_model, d_head), d_model),
                 "W_V": normal(keys[4], (n_heads, d_model, d_head), d_model),
                 "W_O": normal(keys[5], (n_heads, d_head, d_model), d_model)},
        "mlp": {"W_in": normal(keys[6], (d_model, d_mlp), d_model), "b_in": jnp.zeros((d_mlp,), dtype),
                "W_out": normal(keys[7], (d_mlp, d_model), d_mlp), "b_out": jnp.zeros((d_model,), dtype)},
        "unembed": {"W_U": normal(keys[8], (d_model, n_out), n_out)},
    }


def apply(params: PyTree, tokens: jax.Array) -> jax.Array:
    """Logits ``[..., n_out]`` at the last position of ``tokens: int [..., T]`` (``T <= n_ctx``)."""
    tokens = jnp.asarray(tokens)
    if not jnp.issubdtype(tokens.dtype, jnp.integer) or tokens.ndim < 1:
        raise TypeError(f"`tokens` must be an integer array [..., T], got {tokens.dtype} {tokens.shape}")
    n_ctx = params["embed"]["W_pos"].shape[0]
    T = tokens.shape[-1]
    if T > n_ctx:
        raise ValueError(f"`tokens` has {T} positions, more than the model's n_ctx = {n_ctx}")
    e, a, m = params["embed"], params["attn"], params["mlp"]
    x = e["W_E"][tokens] + e["W_pos"][:T]                                   # [..., T, d]
    q = jnp.einsum("...td,hde->...hte", x[..., -1:, :], a["W_Q"])         # only the read-out query
    k = jnp.einsum("...td,hde->...hte", x, a["W_K"])
    v = jnp.einsum("...td,hde->...hte", x, a["W_V"])
    scores = jnp.einsum("...hqe,...hte->...hqt", q, k) / jnp.sqrt(jnp.asarray(q.shape[-1], x.dtype))
    z = jnp.einsum("...hqt,...hte->...hqe", jax.nn.softmax(scores, axis=-1), v)  # the last query sees all T
    x_last = x[..., -1, :] + jnp.einsum("...hqe,hed->...qd", z, a["W_O"])[..., 0, :]
    x_last = x_last + jax.nn.relu(x_last @ m["W_in"] + m["b_in"]) @ m["W_out"] + m["b_out"]
    return x_last @ params["unembed"]["W_U"]


def rescale(params: PyTree, ratio: Any) -> PyTree:
    """Embedding (``W_E``, ``W_pos``) times ``sqrt(ratio)``, readout ``W_U`` divided by it: the ratio of
    embedding to readout scale becomes ``ratio`` times the default's, their product unchanged."""
    root = jnp.sqrt(jnp.asarray(ratio, params["unembed"]["W_U"].dtype))
    return {**params, "embed": jax.tree.map(lambda w: w * root, params["embed"]),
            "unembed": {"W_U": params["unembed"]["W_U"] / root}}

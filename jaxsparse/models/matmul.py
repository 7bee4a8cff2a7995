"""``x @ w`` for dense layers, with a weight gradient that XLA's CPU backend runs fast.

The gradient of ``y = x W`` (``x [B, m]``, ``W [m, n]``) with respect to ``W`` is ``dW = x^T g``: a
contraction over the long batch axis. JAX emits it as one ``dot`` whose left operand is read
transposed, and XLA:CPU runs that form 2-4x below its matmul rate when ``m`` is much larger than
``n`` (measured on 2 AMD EPYC cores, jax 0.10: ``[1024, 256]^T [1024, 16]`` at 25 GFLOP/s, the same
product computed as ``(g^T x)^T`` at 55-86 GFLOP/s; seeds vmapped or not). :func:`matmul` is
``x @ w`` with its own reverse rule that computes ``dW`` in the fast orientation (the transposed
product behind an ``optimization_barrier``, so XLA cannot fold the transpose back) when ``m > n``
on CPU. Values are unchanged up to float rounding; on other backends the rule is JAX's own.

Small layers run faster still with their activations stored feature-major, ``x^T [m, B]``:
:func:`matmul_t` is the same layer on transposed activations, ``y^T = W^T x^T``. Every product of
its forward and reverse passes then reads both operands along their contiguous axis (``W^T x^T``
with ``W^T`` materialised, ``W g^T`` and ``x^T g`` contracted over the long minor axis ``B``),
the forms XLA:CPU runs at its best rate. Measured by ``python benchmarks/feature_major.py`` (one
core of the AVX-512 Xeon, jaxlib 0.10.2, 5 seeds vmapped, ``B = 1024``): ``[1024, 8] @ [8, 16]``
46 us against 13 us for ``[16, 8] @ [8, 1024]``; the weight gradient ``[1024, 8]^T [1024, 16]``
42 us against 22 us contracted over the minor axis. Wide layers lose; :func:`prefers_feature_major`
says which layout to use. The encoders of :mod:`jaxsparse.models.encoders` offer both
(``Encoder.apply_t``).

Reverse mode only (``jax.grad``, ``jax.vjp``); ``jax.jvp`` through either is an error, as for any
``jax.custom_vjp``.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

SWAP_WEIGHT_GRADIENT: bool | None = None
"""Compute ``dW`` as ``(g^T x)^T`` when ``m > n``: ``None`` (default) on CPU only; ``True``/``False``
everywhere. Read when a program is traced."""


def _swap() -> bool:
    return jax.default_backend() == "cpu" if SWAP_WEIGHT_GRADIENT is None else bool(SWAP_WEIGHT_GRADIENT)


@jax.custom_vjp
def matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``y = x W``: ``x [..., m]``, ``W [m, n]`` -> ``[..., n]`` (see the module docstring for the gradient)."""
    return x @ w


def weight_gradient(x: jax.Array, g: jax.Array) -> jax.Array:
    """``dW = sum over leading axes of x^T g``: ``x [..., m]``, ``g [..., n]`` -> ``[m, n]``."""
    x2, g2 = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
    if _swap() and x2.shape[1] > g2.shape[1]:
        return jax.lax.optimization_barrier(g2.T @ x2).T
    return x2.T @ g2


def _fwd(x, w):
    return x @ w, (x, w)


def _bwd(res, g):
    x, w = res
    return (g @ w.T).astype(x.dtype), weight_gradient(x, g).astype(w.dtype)


matmul.defvjp(_fwd, _bwd)


def _product_t(w, x_t):
    if w.ndim != 2 or x_t.ndim != 2 or w.shape[0] != x_t.shape[0]:
        raise ValueError(f"`matmul_t` needs w [m, n] and x_t [m, B], got shapes {w.shape} and {x_t.shape}")
    return jax.lax.optimization_barrier(w.T) @ x_t  # W^T materialised: both operands read along rows


@jax.custom_vjp
def matmul_t(w: jax.Array, x_t: jax.Array) -> jax.Array:
    """``y^T = W^T x^T``, the layer ``y = x W`` on feature-major activations: ``W [m, n]``,
    ``x_t [m, B]`` -> ``[n, B]`` (see the module docstring; vmap it for more leading axes)."""
    return _product_t(w, x_t)


def _fwd_t(w, x_t):
    return _product_t(w, x_t), (w, x_t)


def _bwd_t(res, g):
    w, x_t = res  # g [n, B]
    dw = jax.lax.dot_general(x_t, g, (((1,), (1,)), ((), ())))  # x^T g, contracted over the minor B
    return dw.astype(w.dtype), (w @ g).astype(x_t.dtype)


matmul_t.defvjp(_fwd_t, _bwd_t)

def to_feature_major(x: jax.Array) -> jax.Array:
    """``x [..., m]`` as feature-major activations ``[m, B]`` (leading axes flattened into ``B``), the
    transpose behind an ``optimization_barrier`` so that XLA cannot fold it back into the products of
    :func:`matmul_t` (it did, and the weight gradient went back to the slow form)."""
    return jax.lax.optimization_barrier(x.reshape(-1, x.shape[-1]).T)


FEATURE_MAJOR_MAX_WIDTH = 64
"""On CPU, layers at most this wide train faster feature-major (:func:`prefers_feature_major`)."""


def prefers_feature_major(params: Any) -> bool:
    """Whether a model with these parameters trains faster on feature-major activations: on CPU, when
    no weight matrix (2-D leaf) has a side wider than :data:`FEATURE_MAJOR_MAX_WIDTH`; never elsewhere
    (not measured there). Read when a program is traced.

    Measured by ``python benchmarks/feature_major.py`` (one core of the AVX-512 Xeon, jaxlib 0.10.2,
    paper 1's training steps, 5 seeds of 1024 samples, ``M = 8 -> N = 16``, the two layouts in
    alternating processes): SAE 1.39x, TopK-3 1.18x, JumpReLU 1.21x, LISTA-3 1.39x, MLP-32 1.30x
    faster feature-major, the known regimes' SAE and MLP-32 1.23-1.33x, and with ``--hidden 48 64
    128``: MLP-48 1.26x, MLP-64 1.08x, MLP-128 0.96x; MLP-256 0.88x (slower).
    """
    if jax.default_backend() != "cpu":
        return False
    widths = [max(np.shape(w)) for w in jax.tree.leaves(params) if np.ndim(w) == 2]
    return bool(widths) and max(widths) <= FEATURE_MAJOR_MAX_WIDTH


__all__ = ["FEATURE_MAJOR_MAX_WIDTH", "SWAP_WEIGHT_GRADIENT", "matmul", "matmul_t", "prefers_feature_major",
           "to_feature_major", "weight_gradient"]

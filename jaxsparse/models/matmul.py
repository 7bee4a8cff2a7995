"""``x @ w`` for dense layers, with a weight gradient that XLA's CPU backend runs fast.

The gradient of ``y = x W`` (``x [B, m]``, ``W [m, n]``) with respect to ``W`` is ``dW = x^T g``: a
contraction over the long batch axis. JAX emits it as one ``dot`` whose left operand is read
transposed, and XLA:CPU runs that form 2-4x below its matmul rate when ``m`` is much larger than
``n`` (measured on 2 AMD EPYC cores, jax 0.10: ``[1024, 256]^T [1024, 16]`` at 25 GFLOP/s, the same
product computed as ``(g^T x)^T`` at 55-86 GFLOP/s; seeds vmapped or not). :func:`matmul` is
``x @ w`` with its own reverse rule that computes ``dW`` in the fast orientation (the transposed
product behind an ``optimization_barrier``, so XLA cannot fold the transpose back) when ``m > n``
on CPU. Values are unchanged up to float rounding; on other backends the rule is JAX's own.

Reverse mode only (``jax.grad``, ``jax.vjp``); ``jax.jvp`` through it is an error, as for any
``jax.custom_vjp``.
"""

from __future__ import annotations

import jax

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

__all__ = ["SWAP_WEIGHT_GRADIENT", "matmul", "weight_gradient"]

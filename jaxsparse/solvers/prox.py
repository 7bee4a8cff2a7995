"""Proximal operators: plain functions passed to the proximal-gradient loop.

A solver variant is a different prox, not a new solver (jaxopt's design).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_threshold(v: jax.Array, threshold: jax.Array | float, *, nonneg: bool = False) -> jax.Array:
    """Prox of ``threshold * ||.||_1`` (plus the indicator of ``z >= 0`` when ``nonneg``).

    ``prox(v)_i = sign(v_i) * max(|v_i| - threshold, 0)``, or ``max(v_i - threshold, 0)`` when ``nonneg``.

    Args:
      v: any shape.
      threshold: scalar or broadcastable to ``v``, ``>= 0``.
    """
    if nonneg:
        return jnp.maximum(v - threshold, 0)
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - threshold, 0)


def top_k(v: jax.Array, k: int, *, nonneg: bool = False) -> jax.Array:
    """Keep the ``k`` largest entries of the last axis (by magnitude, or by value when ``nonneg``).

    The projection onto ``{z : ||z||_0 <= k}`` (and ``z >= 0`` when ``nonneg``); the TopK SAE's activation.
    """
    score = v if nonneg else jnp.abs(v)
    kth = jax.lax.top_k(score, k)[0][..., -1:]
    kept = jnp.where(score >= kth, v, 0)
    return jnp.maximum(kept, 0) if nonneg else kept

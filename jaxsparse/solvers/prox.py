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
    Entries tied with the ``k``-th largest are all kept. For float32 the threshold is found by
    :func:`kth_largest` (exact, a few passes over ``v``), not ``lax.top_k``, which sorts: on CPU that
    made a 1536-latent TopK SAE's step 4-5 times slower than a ReLU SAE's.
    """
    score = v if nonneg else jnp.abs(v)
    if score.dtype == jnp.float32:
        kept = jnp.where(_sortable(score) >= _kth_key(_sortable(score), k), v, 0)
    else:
        kept = jnp.where(score >= jax.lax.top_k(score, k)[0][..., -1:], v, 0)
    return jnp.maximum(kept, 0) if nonneg else kept


def _sortable(x: jax.Array) -> jax.Array:
    """float32 -> int32 keys in the same order (IEEE bits, negative values' magnitude bits flipped)."""
    i = jax.lax.bitcast_convert_type(x, jnp.int32)
    return jnp.where(i < 0, i ^ jnp.int32(0x7FFFFFFF), i)


def _kth_key(key: jax.Array, k: int) -> jax.Array:
    """``[..., 1]``: the largest ``t`` with ``#{key >= t} >= k`` along the last axis (the ``k``-th largest key),
    by bisection on the integers: 32 halvings cover any int32 range."""
    lo, hi = jnp.min(key, -1, keepdims=True), jnp.max(key, -1, keepdims=True)

    def body(_, bounds):
        lo, hi = bounds
        mid = (lo >> 1) + (hi >> 1) + ((lo | hi) & 1)  # ceil((lo + hi) / 2) without overflow
        ok = jnp.sum(key >= mid, axis=-1, keepdims=True) >= k
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

    return jax.lax.fori_loop(0, 32, body, (lo, hi))[0]


def kth_largest(v: jax.Array, k: int) -> jax.Array:
    """The ``k``-th largest float32 value along the last axis, ``[..., 1]`` (exact, without sorting).

    Example::

        kth_largest(jnp.array([0.5, -1.0, 2.0, 0.5]), 2)   # [0.5]
    """
    v = jnp.asarray(v, jnp.float32)
    key = _kth_key(_sortable(v), k)
    return jax.lax.bitcast_convert_type(jnp.where(key < 0, key ^ jnp.int32(0x7FFFFFFF), key), jnp.float32)

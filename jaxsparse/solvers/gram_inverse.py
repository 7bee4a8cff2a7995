"""Rank-one updates of the inverse Gram matrix of an active set, stored in fixed-size slots.

Active-set solvers (OMP, homotopy) keep ``H = (G_AA)^{-1}``, the inverse Gram matrix of the active
atoms ``A``, embedded in a ``[S, S]`` array whose rows and columns of free slots are zero. Adding atom
``j`` in free slot ``p`` (Schur complement), with ``v = G_{A j}`` (zero on free slots)::

    w = H v,   s = G_jj - v.w,   H_new = H + (w - e_p)(w - e_p)^T / s

Removing the atom in slot ``p`` (the inverse of a principal submatrix)::

    h = H e_p,   H_new = H - h h^T / h_p

Both are rank-one updates ``H + coef * q q^T`` (:func:`rank_one`), so a solver that may add or
remove picks ``(q, coef)`` per sample and touches ``H`` once. They are ``O(S^2)`` elementwise work, which vectorises under ``vmap`` far better than batched
triangular solves of many small matrices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def combine_slots(dictionary: jax.Array, idx: jax.Array, weights: jax.Array,
                  start: jax.Array | None = None) -> jax.Array:
    """``start + sum_s weights[:, s] * dictionary[idx[:, s]]``: ``[B, M]`` from the slots' atoms ``idx [B, S]``
    and ``weights [B, S]`` (no ``start``: the sum alone).

    One fused loop of row gathers, with no ``[B, S, M]`` array of atoms: OMP's residual ``x - z_S D_S``
    and homotopy's ``u D_A``.
    """
    out = start
    for s in range(idx.shape[1]):
        term = weights[:, s, None] * dictionary[idx[:, s]]
        out = term if out is None else out + term
    return out


def add_factors(h: jax.Array, v: jax.Array, g_jj: jax.Array, slot: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Rank-one factors of adding an atom in free ``slot``: ``H_new = H + coef * q q^T``.

    Args:
      h: ``[S, S]`` inverse Gram matrix of the active atoms (zero rows/cols on free slots).
      v: ``[S]`` Gram entries between the new atom and the active atoms (zero on free slots).
      g_jj: squared norm of the new atom.
      slot: index of a free slot.
    Returns:
      ``(q, coef, s)`` where ``s = g_jj - v^T h v`` is the Schur complement (the squared distance of
      the new atom to the span of the active ones); callers skip the update when it is numerically 0.
    """
    w = h @ v
    schur = g_jj - v @ w
    return w - jax.nn.one_hot(slot, h.shape[0], dtype=h.dtype), 1.0 / schur, schur


def remove_factors(h: jax.Array, slot: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Rank-one factors of removing the atom in ``slot``: ``H_new = H + coef * q q^T``.

    ``q`` is read as row ``slot`` of the symmetric ``H`` (contiguous; the column is the same numbers).
    """
    q = h[slot]
    return q, -1.0 / q[slot]


def rank_one(h: jax.Array, q: jax.Array, coef: jax.Array) -> jax.Array:
    """``h + coef * q q^T`` (one pass over ``h``; ``coef = 0`` leaves it unchanged)."""
    return h + coef * jnp.outer(q, q)

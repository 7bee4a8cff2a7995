"""Exact Lasso by homotopy (LARS-Lasso), batched over signals, with a differentiable final step.

Per sample (``x: [M]``, ``D: [N, M]``), the Lasso solution ``z(l)`` of

    F_l(z) = 0.5 * ||x - z D||^2 + l * ||z||_1          (z >= 0 when nonneg)

is piecewise linear in ``l`` (Osborne, Presnell & Turlach 2000; Efron et al. 2004). Starting from
``l_0 = max_j |c_j|`` (``c = D x``, where ``z = 0``) the path is followed down to ``l = lam``. On a
segment with active set ``A`` and signs ``theta_A``, the KKT conditions ``c_A = l theta_A`` with
``c = D x - G z`` (``G = D D^T``) give::

    dz_A / d(-l) = u = (G_AA)^{-1} theta_A,        dc / d(-l) = -a,   a = G_{:A} u

and the segment ends at the first event after a decrease ``gamma`` of ``l``:

    an atom enters   gamma = (l - c_j) / (1 - a_j)  or  (l + c_j) / (1 + a_j)   (j inactive, > 0)
    an atom leaves   gamma = -z_i / u_i                                          (i active, > 0)
    the target       gamma = l - lam

``(G_AA)^{-1}`` is kept in ``max_active`` slots with rank-one updates
(:mod:`jaxsparse.solvers.gram_inverse`), so a step costs two thin matmuls plus ``O(max_active^2)``.
The path ends with one Newton (iterative-refinement) step on the final support,

    z_A <- z_A + (G_AA)^{-1} (c_A - lam theta_A),   c = (x - z D) D^T,

written so that its derivative is the implicit-function derivative of the Lasso solution on a fixed
support: gradients with respect to ``dictionary``, ``x`` and ``lam`` are exact almost everywhere.

The ``[S, S]`` slot arrays make a step cost ``O(S^2)`` per sample, so the first pass uses 16 slots;
the few samples whose support outgrows them are redone with ``max_active`` slots. Samples that still
run out of slots or ``max_steps`` segments, or whose final point fails the KKT check (rounding on
near-degenerate paths), fall back to FISTA warm-started from where they stopped. Each of these passes
computes only the samples that need it (gathered into a batch of ``B / 16`` when they are few).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsparse._checks import check_dictionary_and_signal, nonneg_scalar, positive_int
from jaxsparse.solvers.gram_inverse import add_factors, rank_one, remove_factors
from jaxsparse.solvers.proximal import _proximal_gradient
from jaxsparse.solvers.reductions import argmax_last, argmin_last


_FIRST_SLOTS = 16  # slots of the first pass; samples needing more are redone with max_active


class HomotopyState(NamedTuple):
    """Path state of one sample (leading batch axis when batched)."""

    z: jax.Array  # [S] coefficients of the active slots
    idx: jax.Array  # [S] atom index of each slot
    active: jax.Array  # [S] bool
    theta: jax.Array  # [S] signs of the active slots
    is_active: jax.Array  # [N] bool, the active set in atom space
    h: jax.Array  # [S, S] inverse Gram matrix of the active atoms
    c: jax.Array  # [N] correlations D x - G z
    lam: jax.Array  # current point on the path
    dropped: jax.Array  # atom dropped at the previous step (may not re-enter at once), -1 if none
    n_steps: jax.Array
    done: jax.Array
    failed: jax.Array  # ran out of slots or steps, or met a degenerate atom


def _init_one(gram, b, lam, *, max_active, nonneg) -> HomotopyState:
    """The path's start from ``b = D x``: ``z = 0`` at ``l_0 = max_j |b_j|`` with the best atom active."""
    dtype = b.dtype
    score = b if nonneg else jnp.abs(b)
    j0 = argmax_last(score)
    start = score[j0] > lam
    first = jnp.arange(max_active) == 0
    return HomotopyState(
        z=jnp.zeros(max_active, dtype),
        idx=jnp.where(first, j0, 0).astype(jnp.int32),
        active=first & start,
        theta=jnp.where(first, 1.0 if nonneg else jnp.sign(b[j0]), 0.0).astype(dtype),
        is_active=(jnp.arange(b.shape[0]) == j0) & start,
        h=jnp.where(first[:, None] & first & start, 1.0 / gram[j0, j0], 0.0).astype(dtype),
        c=b,
        lam=jnp.where(start, score[j0], lam),
        dropped=jnp.asarray(-1, jnp.int32),
        n_steps=jnp.asarray(0, jnp.int32),
        done=~start,
        failed=jnp.asarray(False),
    )


def _event_length(gap: jax.Array, rate: jax.Array, open_: jax.Array) -> jax.Array:
    """Decrease of ``l`` until ``gap = l -+ c_j`` closes at speed ``rate``: 0 if already closed, inf if never."""
    length = jnp.where(rate > 0, gap / rate, jnp.inf)
    return jnp.where(open_, jnp.where(gap <= 0, 0.0, length), jnp.inf).astype(gap.dtype)


def _step_one(s: HomotopyState, dictionary, gram, lam, *, max_steps, nonneg) -> HomotopyState:
    """Follow one segment of the path to its next event; a no-op once ``s.done``."""
    n_latents, max_active = dictionary.shape[0], s.z.shape[0]
    dtype = s.z.dtype
    tiny = 100 * jnp.finfo(dtype).eps
    inf = jnp.asarray(jnp.inf, dtype)
    slots, atom_ids = jnp.arange(max_active), jnp.arange(n_latents)
    running = ~s.done
    u = s.h @ s.theta
    direction = jnp.zeros(n_latents, dtype).at[s.idx].add(jnp.where(s.active, u, 0.0))
    a = (direction @ dictionary) @ dictionary.T  # G_{:A} u through two thin matmuls
    open_ = ~(s.is_active | (atom_ids == s.dropped))
    gamma_up = _event_length(s.lam - s.c, 1.0 - a, open_)
    if nonneg:
        enter_all = gamma_up
    else:
        enter_all = jnp.minimum(gamma_up, _event_length(s.lam + s.c, 1.0 + a, open_))
    j = argmin_last(enter_all)
    gamma_enter = enter_all[j]
    # An active coefficient leaves when it reaches zero (at once if rounding moved it past zero).
    wrong_sign = s.active & (s.z * s.theta < 0)
    ratio = -s.z / u
    leave_all = jnp.where(wrong_sign, 0.0, jnp.where(s.active & (ratio > 0), ratio, inf))
    i = argmin_last(leave_all)
    gamma_leave = leave_all[i]
    gamma_end = s.lam - lam
    reached = gamma_end <= jnp.minimum(gamma_enter, gamma_leave)
    gamma = jnp.where(running, jnp.minimum(jnp.minimum(gamma_enter, gamma_leave), gamma_end), 0.0)
    leaves = running & ~reached & (gamma_leave <= gamma_enter)
    enters = running & ~reached & ~leaves
    # An entering atom takes the first free slot; its Schur complement must be positive.
    free = argmin_last(s.active)
    v = jnp.where(s.active, gram[j, s.idx], 0.0)
    q_add, coef_add, schur = add_factors(s.h, v, gram[j, j], free)
    add = enters & ~s.active[free] & (schur > tiny * gram[j, j])
    into_free, out_of_i = add & (slots == free), leaves & (slots == i)
    q_remove, coef_remove = remove_factors(s.h, i)
    q = jnp.where(add, q_add, q_remove)
    h = rank_one(s.h, q, jnp.where(add, coef_add, jnp.where(leaves, coef_remove, 0.0)))
    sign_j = 1.0 if nonneg else jnp.where(gamma_up[j] == gamma_enter, 1.0, -1.0)
    n_steps = s.n_steps + running
    failed = s.failed | (enters & ~add) | (running & ~reached & (n_steps >= max_steps))
    return HomotopyState(
        z=jnp.where(out_of_i | ~s.active, 0.0, s.z + gamma * u),
        idx=jnp.where(into_free, j, s.idx).astype(jnp.int32),
        active=(s.active & ~out_of_i) | into_free,
        theta=jnp.where(into_free, sign_j, s.theta).astype(dtype),
        is_active=(s.is_active & ~(leaves & (atom_ids == s.idx[i]))) | (add & (atom_ids == j)),
        h=h,
        c=s.c - gamma * a,
        lam=s.lam - gamma,
        dropped=jnp.where(leaves, s.idx[i], -1).astype(jnp.int32),
        n_steps=n_steps,
        done=s.done | reached | failed,
        failed=failed,
    )


def _compacted(fn, state, pending: jax.Array, size: int):
    """Apply ``fn`` to the (at most ``size``) pending samples of a batched pytree only, in place."""
    take = jnp.argsort(~pending, stable=True)[:size]  # pending samples first
    sub = fn(jax.tree.map(lambda a: a[take], state))
    return jax.tree.map(lambda a, b: a.at[take].set(b), state, sub)


def homotopy_path(dictionary, x, lam, *, max_active, max_steps, nonneg, shrink=4) -> HomotopyState:
    """Run the batched path for signals ``x: [B, M]``; returns the final :class:`HomotopyState`.

    A ``while_loop`` over the batch whose body is the per-sample step under ``vmap`` (finished samples
    take zero-length steps). Path lengths vary, and the slowest samples would keep the whole batch
    stepping: once at most ``B / shrink`` samples are still running, they are gathered into a batch of
    that size and continue there (recursively), then scattered back.
    """
    gram = dictionary @ dictionary.T
    init = jax.vmap(functools.partial(_init_one, max_active=max_active, nonneg=nonneg), in_axes=(None, 0, None))
    step = jax.vmap(functools.partial(_step_one, max_steps=max_steps, nonneg=nonneg), in_axes=(0, None, None, None))

    def run(state: HomotopyState) -> HomotopyState:
        size = state.done.shape[0]
        smaller = size // shrink
        if smaller < 32:
            return jax.lax.while_loop(lambda s: ~jnp.all(s.done), lambda s: step(s, dictionary, gram, lam), state)
        state = jax.lax.while_loop(
            lambda s: jnp.sum(~s.done) > smaller, lambda s: step(s, dictionary, gram, lam), state
        )
        return _compacted(run, state, ~state.done, smaller)

    return run(init(gram, x @ dictionary.T, lam))  # b = x D^T at the batch level: row-major [B, N]


def _kkt_violated(z, c, lam, nonneg, tol):
    """Per-sample check of the Lasso optimality conditions, to a relative tolerance ``tol``."""
    bound = lam * (1 + tol)
    if nonneg:
        inactive_ok = jnp.where(z > 0, True, c <= bound)
        active_ok = jnp.where(z > 0, jnp.abs(c - lam) <= tol * lam, True)
    else:
        inactive_ok = jnp.where(z != 0, True, jnp.abs(c) <= bound)
        active_ok = jnp.where(z != 0, jnp.abs(c - lam * jnp.sign(z)) <= tol * lam, True)
    return ~jnp.all(inactive_ok & active_ok, axis=-1)


def _solve(dictionary, x, lam, *, max_active, max_steps, nonneg):
    """Path, then the differentiable Newton finish; returns ``(z [B, N], bad [B])``.

    ``bad`` flags samples whose path ran out of slots or steps, or whose final point fails the
    KKT conditions (rounding on a near-degenerate path).
    """
    n_latents = dictionary.shape[0]
    sg = jax.lax.stop_gradient
    s = homotopy_path(sg(dictionary), sg(x), sg(lam), max_active=max_active, max_steps=max_steps, nonneg=nonneg)
    scatter = jax.vmap(lambda idx, val: jnp.zeros(n_latents, x.dtype).at[idx].add(val))
    z0 = scatter(s.idx, jnp.where(s.active, s.z, 0.0))
    c = (x - z0 @ dictionary) @ dictionary.T
    c_slots = jnp.take_along_axis(c, s.idx, axis=-1)
    delta = jnp.einsum("bst,bt->bs", s.h, jnp.where(s.active, c_slots - lam * s.theta, 0.0))
    z = z0 + scatter(s.idx, jnp.where(s.active, delta, 0.0))
    if nonneg:
        z = jnp.maximum(z, 0.0)
    c = (x - sg(z) @ dictionary) @ dictionary.T
    tol = 1e3 * jnp.finfo(x.dtype).eps
    return z, s.failed | _kkt_violated(sg(z), sg(c), sg(lam), nonneg, tol)


def _redo_flagged(fn, x, z, bad):
    """Replace ``(z, bad)`` on the flagged samples by ``fn(x_b, z_b)``: nothing if none are flagged,
    a gathered batch of ``B / 16`` if few are, the whole batch otherwise."""

    def apply(batch):
        x_b, z_b, bad_b = batch
        z_new, bad_new = fn(x_b, z_b)
        return x_b, jnp.where(bad_b[:, None], z_new, z_b), bad_b & bad_new

    small = max(x.shape[0] // 16, 1)
    count = jnp.sum(bad)
    _, z, bad = jax.lax.cond(
        count == 0,
        lambda batch: batch,
        lambda batch: jax.lax.cond(
            count <= small, lambda b: _compacted(apply, b, bad, small), apply, batch
        ),
        (x, z, bad),
    )
    return z, bad


@functools.partial(jax.jit, static_argnames=("max_active", "max_steps", "nonneg", "fallback_iters"))
def _homotopy(dictionary, x, lam, *, max_active, max_steps, nonneg, fallback_iters):
    batch_shape, (n_latents, n_features) = x.shape[:-1], dictionary.shape
    flat = x.reshape(-1, n_features)
    first = min(max_active, _FIRST_SLOTS)
    z, bad = _solve(dictionary, flat, lam, max_active=first, max_steps=min(max_steps, 4 * first), nonneg=nonneg)
    if first < max_active:  # the few samples with larger supports: again, with all the slots
        solve_all = functools.partial(_solve, max_active=max_active, max_steps=max_steps, nonneg=nonneg)
        z, bad = _redo_flagged(lambda x_b, _: solve_all(dictionary, x_b, lam), flat, z, bad)

    def fista_from(x_b, z_b):
        z_f = _proximal_gradient(
            dictionary, x_b, lam, z_b, n_iter=fallback_iters, nonneg=nonneg, accelerate=True, restart=True
        )
        return z_f, jnp.zeros(x_b.shape[0], bool)

    z, _ = _redo_flagged(fista_from, flat, z, bad)
    return z.reshape(batch_shape + (n_latents,))


def homotopy(
    dictionary: jax.Array,
    x: jax.Array,
    *,
    lam: float,
    nonneg: bool = False,
    max_active: int | None = None,
    max_steps: int | None = None,
    fallback_iters: int = 500,
) -> jax.Array:
    """Exact Lasso codes ``argmin_z 0.5 ||x - z D||^2 + lam ||z||_1`` by batched homotopy.

    See the module docstring for the path, the events and the differentiable final step. Same
    objective and scaling as :func:`jaxsparse.solvers.fista` (scikit-learn ``Lasso`` with
    ``alpha = lam / M``).

    Args:
      dictionary: ``[N, M]`` dictionary, rows are atoms.
      x: ``[..., M]`` signals.
      lam: ``lam > 0`` (may be traced).
      nonneg: constrain ``z >= 0``.
      max_active: most active atoms on a path (static); default ``min(N, M)``. A sample whose
        solution needs more atoms falls back to FISTA.
      max_steps: most path segments per sample (static); default ``4 * max_active``.
      fallback_iters: FISTA iterations for the samples that ran out of slots or steps.
    Returns:
      ``[..., N]`` codes.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0), 4096, 256, 64, 8, noise=0.01)
        z_hat = homotopy(d, x, lam=0.05, max_active=32)
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    n_latents, n_features = dictionary.shape
    nonneg_scalar("lam", lam)
    if max_active is None:
        max_active = min(n_latents, n_features)
    max_active = positive_int("max_active", max_active, maximum=n_latents)
    max_steps = positive_int("max_steps", 4 * max_active if max_steps is None else max_steps)
    fallback_iters = positive_int("fallback_iters", fallback_iters)
    return _homotopy(
        dictionary, x, jnp.asarray(lam, x.dtype),
        max_active=max_active, max_steps=max_steps, nonneg=bool(nonneg), fallback_iters=fallback_iters,
    )

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
(:mod:`jaxsparse.solvers.gram_inverse`), so a step costs one thin matmul (``G_{:A} u = D (u D_A)^T``)
plus ``O(N + M max_active + max_active^2)``.
The path ends with one Newton (iterative-refinement) step on the final support,

    z_A <- z_A + (G_AA)^{-1} (c_A - lam theta_A),   c = (x - z D) D^T,

written so that its derivative is the implicit-function derivative of the Lasso solution on a fixed
support: gradients with respect to ``dictionary``, ``x`` and ``lam`` are exact almost everywhere.

The ``[S, S]`` slot arrays make a step cost ``O(S^2)`` per sample, so on CPU the first pass uses 16
slots and the few samples whose support outgrows them are redone with ``max_active`` slots (on an
accelerator, where a step costs its kernel launches, one pass takes all the slots: :class:`Schedule`).
Samples that still run out of slots or ``max_steps`` segments, or whose final point fails the KKT
check (rounding on near-degenerate paths), fall back to FISTA warm-started from where they stopped.
Each of these passes computes only the samples that need it (gathered into chunks of ``B / 16``,
one after another). That needs the batch's own control flow: for several dictionaries, loop over
them with ``jax.lax.map`` rather than ``jax.vmap``, under which every ``lax.cond`` becomes a select
that runs both branches (every pass and the FISTA fallback for the whole batch: 0.2 s instead of
0.03 s for 5 dictionaries of paper 1's analysis, ``experiments/amortisation_gap/analysis.py``).
The solver's matmuls run at ``highest`` precision whatever the caller's default (TF32 on recent
NVIDIA GPUs, bf16 passes on TPUs would give paths that fail the KKT check).

**Warm start** (Asif & Romberg 2014, "Sparse recovery of streaming signals using l1-homotopy").
Given ``z0 = init`` (clipped at 0 when nonneg) with support ``A`` and signs ``theta_A``, let
``c0 = D (x - z0 D)^T`` and choose the correlations ``c~0`` that make ``z0`` optimal, ``c~0_A =
lam theta_A`` and ``c~0_j = clip(c0_j, -lam, lam)`` off ``A`` (``min(c0_j, lam)`` when nonneg), and
``w = c0 - c~0``. Then ``z0`` solves the perturbed Lasso

    P_e:   min_z 0.5 ||x - z D||^2 + lam ||z||_1 - (1 - e) w.z

at ``e = 0``, and ``P_1`` is the Lasso. Its solution is piecewise linear in ``e``; the same events
are followed with ``lam`` fixed and the drive ``w`` in place of ``theta``::

    dz_A / de = (G_AA)^{-1} w_A,        dc~ / de = -(a - w),   a = G_{:A} dz_A/de

so an atom enters when ``c~_j`` reaches ``+-lam`` moving outward, and leaves when its coefficient
reaches 0. A warm start from the solution has ``w = 0`` and ends in one step; from anywhere else it
still ends at the Lasso optimum (the end point does not depend on the start). It pays off near the
solution (measured on paper-1 data: 1.9 steps from a perturbed solution against 3.9 cold); from a
poor start (random codes) the path is longer than the cold one (13 steps). It runs with
``max_active`` slots; a zero ``init``, one whose support does not fit the slots (or is linearly
dependent), or whose path fails, is redone by the cold path, then FISTA, as above.

**FLOPs** (:func:`homotopy_flops`, ``return_info=True``): each sample reports its own work: for each
pass it ran, the start (``2MN`` for ``x D^T``, or the warm start's ``4MN + M`` and one rank-one
addition per atom of its support), ``path_steps`` times the step (one thin matmul ``2MN`` plus
``O(N + SM + S^2)``), and the finish (the Newton step and the KKT check,
``8MN + O(N + S^2)``); plus FISTA's count and one KKT check if it fell back. Lock-step padding
(finished samples of a batch stepping along while others run) and the per-dictionary Gram matrix are
not counted.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsparse._checks import check_dictionary_and_signal, check_init, nonneg_scalar, positive_int
from jaxsparse.solvers.gram_inverse import add_factors, combine_slots, rank_one, remove_factors
from jaxsparse.solvers.proximal import _proximal_gradient, fista_flops
from jaxsparse.solvers.reductions import argmax_last, argmin_last, min_and_argmin, min_and_argmin_flops


class HomotopyState(NamedTuple):
    """Path state of one sample; batched (:func:`homotopy_path`), a leading batch axis ``[B, ...]``,
    except the per-atom arrays ``is_active``, ``c`` and ``w``, which are ``[N, B]``."""

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
    w: jax.Array | None = None  # [N] drive of the warm-start path (None on the cold path)
    e: jax.Array | None = None  # progress of the warm-start path, from 0 to 1


class HomotopyInfo(NamedTuple):
    """What :func:`homotopy` did for each sample (``return_info=True``); all arrays ``[...]`` (x's batch shape).

    converged: the returned ``z`` satisfies the Lasso KKT conditions to
      ``kkt_residual <= 1e3 eps lam + 10 eps ||x|| max_j ||D_j||`` (the second term is the rounding
      floor of ``c`` in x's precision ``eps``), the same test that sends a path to the fallback.
    kkt_residual: ``max_j`` violation at the returned ``z`` (``c = D (x - z D)^T``):
      ``|c_j - lam sign(z_j)|`` where ``z_j != 0``, ``max(|c_j| - lam, 0)`` where ``z_j = 0``
      (``max(c_j - lam, 0)`` when nonneg).
    path_steps: path segments taken, summed over the passes the sample ran (int32).
    fallback: the sample was finished by FISTA (``fallback_iters`` iterations).
    flops: FLOPs of this sample's own work (module docstring), in x's float dtype.
    """

    converged: jax.Array
    kkt_residual: jax.Array
    path_steps: jax.Array
    fallback: jax.Array
    flops: jax.Array


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


def _warm_init_one(gram, c0, z0, lam, *, max_active, nonneg) -> HomotopyState:
    """The warm-start path's start from ``z0`` and ``c0 = D (x - z0 D)^T``: ``z0`` solves ``P_0`` (module docstring).

    Fails (the sample goes to the cold path) when ``z0`` is zero (the cold path is the shorter one
    from there), or its support does not fit ``max_active`` slots or is numerically linearly dependent.
    """
    dtype = c0.dtype
    tiny = 100 * jnp.finfo(dtype).eps
    slots = jnp.arange(max_active)
    size, idx = jax.lax.top_k(jnp.abs(z0), max_active)  # the support first
    active = size > 0

    def add(carry):  # (G_AA)^{-1} by one rank-one addition per support atom
        p, h, independent = carry
        j = idx[p]
        v = jnp.where(active & (slots < p), gram[j, idx], 0.0)
        q, coef, schur = add_factors(h, v, gram[j, j], p)
        ok = schur > tiny * gram[j, j]
        return p + 1, rank_one(h, q, jnp.where(ok, coef, 0.0)), independent & ok

    h0 = jnp.zeros((max_active, max_active), dtype)
    n_seeds = jnp.sum(active)  # a loop over the support only (under vmap, padded to the batch's largest)
    _, h, independent = jax.lax.while_loop(lambda c: c[0] < n_seeds, add, (jnp.asarray(0), h0, jnp.asarray(True)))
    on_support = z0 != 0
    inside = jnp.minimum(c0, lam) if nonneg else jnp.clip(c0, -lam, lam)
    c_tilde = jnp.where(on_support, lam * jnp.sign(z0), inside)
    failed = (jnp.sum(on_support) > max_active) | ~independent | (n_seeds == 0)
    return HomotopyState(
        z=jnp.where(active, z0[idx], 0.0),
        idx=idx.astype(jnp.int32),
        active=active,
        theta=jnp.where(active, jnp.sign(z0[idx]), 0.0).astype(dtype),
        is_active=on_support,
        h=h,
        c=c_tilde,
        lam=jnp.asarray(lam, dtype),
        dropped=jnp.asarray(-1, jnp.int32),
        n_steps=jnp.asarray(0, jnp.int32),
        done=failed,
        failed=failed,
        w=c0 - c_tilde,
        e=jnp.zeros((), dtype),
    )


def _event_length(gap: jax.Array, rate: jax.Array, open_: jax.Array) -> jax.Array:
    """Path length until ``gap = l -+ c_j`` closes at speed ``rate``: 0 if already past (or on the
    boundary and moving out), inf if never."""
    length = jnp.where(rate > 0, gap / rate, jnp.inf)
    return jnp.where(open_, jnp.where(gap < 0, 0.0, length), jnp.inf).astype(gap.dtype)


def _step(s: HomotopyState, dictionary, gram, lam, *, max_steps, nonneg) -> HomotopyState:
    """Follow one segment of each sample's path to its next event (finished samples step by 0).

    Cold path: ``l`` decreases, drive ``theta``. Warm path (``s.w`` set): ``e`` increases with ``l``
    fixed, drive ``w`` (module docstring). Written for the batch (:class:`HomotopyState`'s layout):
    ``G_{:A} u = D (u D_A)^T``, where ``u D_A`` is one fused loop over the slots gathering one row of
    ``D`` per sample, and the per-atom arrays are ``[N, B]``, so that the event search reduces down
    the columns. Against a ``vmap`` of the one-sample step, which scattered ``u`` into a ``[B, N]``
    direction for two thin matmuls: 1.18x faster on 2 CPU cores at 4096 x 64 x 256, 16 slots.
    """
    n_latents, max_active = dictionary.shape[0], s.z.shape[1]
    warm = s.w is not None
    dtype = s.z.dtype
    tiny = 100 * jnp.finfo(dtype).eps
    inf = jnp.asarray(jnp.inf, dtype)
    slots, atom_ids = jnp.arange(max_active), jnp.arange(n_latents)[:, None]
    take_slot = lambda a, p: jnp.take_along_axis(a, p[:, None], axis=1)[:, 0]  # noqa: E731  a[b, p[b]]
    take_atom = lambda a, j: jnp.take_along_axis(a, j[None, :], axis=0)[0]  # noqa: E731  a[j[b], b]
    samples = jnp.arange(s.z.shape[0])

    def set_atoms(a, j, value):  # a[j[b], b] = value where j[b] >= 0: one element per sample, not a pass over [N, B]
        return a.at[jnp.where(j < 0, n_latents, j), samples].set(value, mode="drop")

    running = ~s.done
    drive = jnp.where(s.active, jnp.take_along_axis(s.w, s.idx.T, axis=0).T, 0.0) if warm else s.theta
    u = jnp.einsum("bst,bt->bs", s.h, drive)
    u_active = jnp.where(s.active, u, 0.0)
    a = dictionary @ combine_slots(dictionary, s.idx, u_active).T  # G_{:A} u = D (u D_A)^T, [N, B]
    open_ = ~(s.is_active | (atom_ids == s.dropped))
    # Per unit of path, c~ moves by -speed and l by -1 (cold) or 0 (warm): l -+ c~_j closes at (1 or 0) -+ speed_j.
    speed = a - s.w if warm else a
    gamma_up = _event_length(s.lam - s.c, -speed if warm else 1.0 - speed, open_)
    if nonneg:
        enter_all = gamma_up
    else:
        enter_all = jnp.minimum(gamma_up, _event_length(s.lam + s.c, speed if warm else 1.0 + speed, open_))
    gamma_enter, j = min_and_argmin(enter_all, axis=0)
    # An active coefficient leaves when it reaches zero (at once if rounding moved it past zero).
    wrong_sign = s.active & (s.z * s.theta < 0)
    ratio = -s.z / u
    leave_all = jnp.where(wrong_sign, 0.0, jnp.where(s.active & (ratio > 0), ratio, inf))
    gamma_leave, i = min_and_argmin(leave_all, axis=-1)
    gamma_end = 1.0 - s.e if warm else s.lam - lam
    reached = gamma_end <= jnp.minimum(gamma_enter, gamma_leave)
    gamma = jnp.where(running, jnp.minimum(jnp.minimum(gamma_enter, gamma_leave), gamma_end), 0.0)
    leaves = running & ~reached & (gamma_leave <= gamma_enter)
    enters = running & ~reached & ~leaves
    # An entering atom takes the first free slot; its Schur complement must be positive.
    free = argmin_last(s.active)
    v = jnp.where(s.active, gram[j[:, None], s.idx], 0.0)
    g_jj = gram[j, j]
    q_add, coef_add, schur = jax.vmap(add_factors)(s.h, v, g_jj, free)
    add = enters & ~take_slot(s.active, free) & (schur > tiny * g_jj)
    into_free, out_of_i = add[:, None] & (slots == free[:, None]), leaves[:, None] & (slots == i[:, None])
    q_remove, coef_remove = jax.vmap(remove_factors)(s.h, i)
    q = jnp.where(add[:, None], q_add, q_remove)
    h = jax.vmap(rank_one)(s.h, q, jnp.where(add, coef_add, jnp.where(leaves, coef_remove, 0.0)))
    if nonneg:
        sign_j = 1.0
    else:  # the side that closed first at j: gamma_up's arithmetic at j alone, not a second [N, B] pass
        speed_j = take_atom(speed, j)
        up_j = _event_length(s.lam - take_atom(s.c, j), -speed_j if warm else 1.0 - speed_j, True)
        sign_j = jnp.where(up_j == gamma_enter, 1.0, -1.0)[:, None]
    n_steps = s.n_steps + running
    failed = s.failed | (enters & ~add) | (running & ~reached & (n_steps >= max_steps))
    left = jnp.where(leaves, take_slot(s.idx, i), -1)
    # per-sample values materialised once: fused into the [N, B] updates, XLA would recompute them per element
    gamma, entered, left = jax.lax.optimization_barrier((gamma, jnp.where(add, j, -1), left))
    return HomotopyState(
        z=jnp.where(out_of_i | ~s.active, 0.0, s.z + gamma[:, None] * u),
        idx=jnp.where(into_free, j[:, None], s.idx).astype(jnp.int32),
        active=(s.active & ~out_of_i) | into_free,
        theta=jnp.where(into_free, sign_j, s.theta).astype(dtype),
        is_active=set_atoms(set_atoms(s.is_active, left, False), entered, True),
        h=h,
        c=s.c - gamma * speed,
        lam=s.lam if warm else s.lam - gamma,
        dropped=left.astype(jnp.int32),
        n_steps=n_steps,
        done=s.done | reached | failed,
        failed=failed,
        w=s.w,
        e=s.e + gamma if warm else None,
    )


_PER_ATOM = ("is_active", "c", "w")  # HomotopyState's [N, B] fields


def _sample_axes(tree):
    """The batch axis of each leaf of ``tree``: 1 for a :class:`HomotopyState`'s per-atom arrays, else 0."""
    if isinstance(tree, HomotopyState):
        return HomotopyState(*[None if v is None else int(f in _PER_ATOM) for f, v in zip(tree._fields, tree)])
    return jax.tree.map(lambda _: 0, tree)


def _compacted(fn, state, pending: jax.Array, size: int):
    """Apply ``fn`` to the (at most ``size``) pending samples of a batched pytree only, in place."""
    take = jnp.argsort(~pending, stable=True)[:size]  # pending samples first
    axes = _sample_axes(state)
    sub = fn(jax.tree.map(lambda a, ax: jnp.take(a, take, axis=ax), state, axes))
    return jax.tree.map(lambda a, b, ax: a.at[(slice(None),) * ax + (take,)].set(b), state, sub, axes)


def _start(dictionary, gram, x, lam, init, *, max_active, nonneg) -> HomotopyState:
    """Batched start: the cold path's from ``b = x D^T``, or the warm path's from ``init: [B, N]``
    (each sample's start, then the per-atom arrays transposed to ``[N, B]``)."""
    if init is None:
        start = functools.partial(_init_one, max_active=max_active, nonneg=nonneg)
        state = jax.vmap(start, in_axes=(None, 0, None))(gram, x @ dictionary.T, lam)  # b row-major [B, N]
    else:
        start = functools.partial(_warm_init_one, max_active=max_active, nonneg=nonneg)
        state = jax.vmap(start, in_axes=(None, 0, 0, None))(gram, (x - init @ dictionary) @ dictionary.T, init, lam)
    return state._replace(**{f: getattr(state, f).T for f in _PER_ATOM if getattr(state, f) is not None})


def homotopy_path(
    dictionary, x, lam, *, max_active, max_steps, nonneg, shrink=4, unroll=1, init=None
) -> HomotopyState:
    """Run the batched path for signals ``x: [B, M]`` (warm-started from ``init: [B, N]`` if given);
    returns the final :class:`HomotopyState`.

    A ``while_loop`` over the batch whose body is ``unroll`` batched steps (:func:`_step`; finished
    samples take zero-length steps). Path lengths vary, and the slowest samples would keep the whole
    batch stepping: once at most ``B / shrink`` samples are still running, they are gathered into a
    batch of that size and continue there (recursively), then scattered back (``shrink=0``: never).
    Both are speed settings (:class:`Schedule`); the result does not depend on them. A batch whose
    pass costs fewer than :data:`COMPACT_MIN_WORK` multiply-adds (``B M N``) is not compacted.
    """
    gram = dictionary @ dictionary.T
    one = functools.partial(_step, max_steps=max_steps, nonneg=nonneg)

    def step(s):
        for _ in range(unroll):
            s = one(s, dictionary, gram, lam)
        return s

    def run(state: HomotopyState) -> HomotopyState:
        size = state.done.shape[0]
        smaller = size // shrink if shrink else 0
        if smaller < 32 or size * dictionary.size < COMPACT_MIN_WORK:
            return jax.lax.while_loop(lambda s: ~jnp.all(s.done), step, state)
        state = jax.lax.while_loop(lambda s: jnp.sum(~s.done) > smaller, step, state)
        return _compacted(run, state, ~state.done, smaller)

    return run(_start(dictionary, gram, x, lam, init, max_active=max_active, nonneg=nonneg))


COMPACT_MIN_WORK = 1 << 20
"""Smallest ``B M N`` at which :func:`homotopy_path` compacts its running samples. Each level of
compaction is another copy of the path step in the compiled program; below this its compiling
costs more than it saves. Paper 1's analysis (5 seeds of 1024 x 8 x 16, ``B M N = 131072``, seeds
in ``lax.map``): compiling 8.2 -> 4.0 s on one core without compaction, running 0.015 -> 0.039 s per
call, for four calls per run. The solver benchmarks (4096 x 64 x 256) compact as before."""


class Schedule(NamedTuple):
    """How the batched path is stepped (speed only: the codes do not depend on it).

    first_slots: slots of the first cold pass (samples whose support outgrows them are redone with
      ``max_active``); ``None``: ``max_active`` at once.
    shrink: once at most ``B / shrink`` samples are still running, gather them into a batch of that
      size (recursively; 0: never).
    unroll: path steps per ``while_loop`` iteration.
    """

    first_slots: int | None
    shrink: int
    unroll: int


CPU_SCHEDULE = Schedule(16, 4, 1)
"""On CPU a step costs ``O(B (MN + S^2))``: a cheap 16-slot first pass, and the running samples compacted."""
ACCELERATOR_SCHEDULE = Schedule(None, 0, 4)
"""On an accelerator a step is a few kernel launches whatever ``B`` and ``S``, and each ``while_loop``
iteration waits for its condition on the host: one pass with all the slots (a second pass would
restart the long paths), no compaction, and several steps per iteration. At 4096 x 64 x 256,
``max_active=32`` on an H200 (``python benchmarks/gpu_kernels.py``, two runs): 2.66 and 2.42 ms,
against 3.74 ms with :data:`CPU_SCHEDULE`."""


def default_schedule() -> Schedule:
    """:data:`CPU_SCHEDULE` on CPU, else :data:`ACCELERATOR_SCHEDULE`."""
    return CPU_SCHEDULE if jax.default_backend() == "cpu" else ACCELERATOR_SCHEDULE


def _kkt_residual(z, c, lam, nonneg):
    """Per sample, the largest violation of the Lasso optimality conditions at ``z`` (``c = D (x - z D)^T``)."""
    if nonneg:
        violation = jnp.where(z > 0, jnp.abs(c - lam), jnp.maximum(c - lam, 0.0))
    else:
        violation = jnp.where(z != 0, jnp.abs(c - lam * jnp.sign(z)), jnp.maximum(jnp.abs(c) - lam, 0.0))
    return jnp.max(violation, axis=-1)


def _kkt_tolerance(dictionary, x, lam):
    """Per-sample KKT tolerance ``1e3 eps lam + 10 eps ||x|| max_j ||D_j||`` (``eps`` of x's dtype).

    The second term is the rounding floor of ``c = D (x - z D)^T`` in x's precision: the path's exact
    points measure below ``1.2 eps ||x||`` (float32, paper-1 and benchmark problems), so a tolerance
    relative to ``lam`` alone would reject them at small ``lam`` (at ``lam = 1e-4`` on paper-1 data,
    1944 of 2048 samples) and hand them to FISTA for nothing.
    """
    eps = jnp.finfo(x.dtype).eps
    scale = jnp.linalg.norm(x, axis=-1) * jnp.max(jnp.linalg.norm(dictionary, axis=-1))
    return 1e3 * eps * lam + 10 * eps * scale


def _finish(dictionary, x, lam, s: HomotopyState, nonneg):
    """The differentiable Newton step on the path's final support, then the KKT check.

    Returns ``(z [B, N], kkt_residual [B])``.
    """
    n_latents = dictionary.shape[0]
    sg = jax.lax.stop_gradient
    scatter = jax.vmap(lambda idx, val: jnp.zeros(n_latents, x.dtype).at[idx].add(val))
    z0 = scatter(s.idx, jnp.where(s.active, s.z, 0.0))
    c = (x - z0 @ dictionary) @ dictionary.T
    c_slots = jnp.take_along_axis(c, s.idx, axis=-1)
    delta = jnp.einsum("bst,bt->bs", s.h, jnp.where(s.active, c_slots - lam * s.theta, 0.0))
    z = z0 + scatter(s.idx, jnp.where(s.active, delta, 0.0))
    if nonneg:
        z = jnp.maximum(z, 0.0)
    c = (x - sg(z) @ dictionary) @ dictionary.T
    return z, _kkt_residual(sg(z), sg(c), sg(lam), nonneg)


def _solve(dictionary, x, lam, *, max_active, max_steps, nonneg, schedule, init=None):
    """Path, then the differentiable Newton finish; returns ``(z [B, N], bad [B], kkt_residual [B], steps [B])``.

    ``bad`` flags samples whose path ran out of slots or steps, or whose final point fails the
    KKT conditions (rounding on a near-degenerate path).
    """
    sg = jax.lax.stop_gradient
    s = homotopy_path(
        sg(dictionary), sg(x), sg(lam), max_active=max_active, max_steps=max_steps, nonneg=nonneg,
        shrink=schedule.shrink, unroll=schedule.unroll, init=None if init is None else sg(init),
    )
    z, residual = _finish(dictionary, x, lam, s, nonneg)
    bad = s.failed | (residual > _kkt_tolerance(sg(dictionary), sg(x), sg(lam)))
    return z, bad, residual, s.n_steps


def _redo_flagged(fn, x, record, flagged, *, whole_above: int | None = None):
    """Replace the flagged samples' ``record`` (a pytree of ``[B, ...]`` arrays) by ``fn(x_b, record_b)``.

    ``fn`` returns ``(new_record_b, still_flagged_b)``. The flagged samples are gathered into chunks
    of ``B / 16`` and done one chunk after another (a ``lax.scan`` of 16 ``lax.cond``s that skip once
    none are left, so reverse mode works), so the cost follows their number. With ``whole_above``,
    more flagged samples than that go through ``fn`` as one whole batch instead (a second copy of
    ``fn`` in the program: for a cheap-to-compile ``fn`` whose small chunks run slowly). Returns
    ``(record, still_flagged)``.

    Before, any count above one chunk sent the whole batch through ``fn``: at 4096 x 64 x 256 with 444
    samples outgrowing the first pass (lam = 0.04), 417 ms against 284-286 ms now, and the second
    copy of the path compiled about 3 s longer (``python benchmarks/homotopy_regimes.py``).
    """
    small = max(x.shape[0] // 16, 1)

    def pick(mask, new, old):  # per sample: `new` where `mask`, else `old` (pytrees of [b, ...] arrays)
        return jax.tree.map(lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o), new, old)

    def chunk(carry):
        record, todo, still = carry
        take = jnp.argsort(~todo, stable=True)[:small]  # the next (at most) `small` flagged samples first
        sel = todo[take]  # the last chunk may hold unflagged samples: they keep their record
        rec_b = jax.tree.map(lambda a: a[take], record)
        new, flag_new = fn(x[take], rec_b)
        record = jax.tree.map(lambda a, b: a.at[take].set(b), record, pick(sel, new, rec_b))
        return record, todo.at[take].set(False), still.at[take].set(jnp.where(sel, flag_new, still[take]))

    def step(carry, _):
        return jax.lax.cond(jnp.any(carry[1]), chunk, lambda c: c, carry), None

    def chunks(carry):
        return jax.lax.scan(step, carry, None, length=-(-x.shape[0] // small))[0]

    def whole(carry):
        record, todo, still = carry
        new, flag_new = fn(x, record)
        return pick(todo, new, record), jnp.zeros_like(todo), jnp.where(todo, flag_new, still)

    carry = (record, flagged, flagged)
    if whole_above is None:
        record, _, still = chunks(carry)
    else:
        record, _, still = jax.lax.cond(jnp.sum(flagged) > whole_above, whole, chunks, carry)
    return record, still


# ---------------------------------------------------------------- FLOPs (what the code above executes)
def _start_flops(n: int, m: int, s: int, *, nonneg: bool, seeds: int | None) -> int:
    """Per sample: ``_init_one`` with ``b = x D^T`` (``seeds=None``), or ``_warm_init_one`` with
    ``c0 = D (x - z0 D)^T`` and ``seeds`` support atoms.

    Cold: ``b`` 2MN; |b| N (signed); argmax 5N; the start's one-hot N and mask N; slot masks 3S,
    the ``[S, S]`` first inverse 3S^2; the index S. Warm: ``c0`` 4MN + M; the support's top-S of
    ``|z0|``, N + N ceil(log2 N) (a sort's comparisons, as in :func:`~jaxsparse.solvers.omp.omp_flops`);
    one rank-one addition per support atom (:func:`_seed_flops`); the support mask, clip (N when
    nonneg), signs and ``w``, 7N; the support size and slot values and signs 4S.
    """
    if seeds is None:
        return 2 * m * n + (7 if nonneg else 8) * n + 3 * s * s + 4 * s + 2
    clip = n if nonneg else 2 * n
    return 4 * m * n + m + n + n * (n - 1).bit_length() + seeds * _seed_flops(s) + 5 * n + clip + 4 * s


def _seed_flops(s: int) -> int:
    """One rank-one addition of a warm start's support atom: masks 3S, ``H v`` 2S^2, Schur 2S + 1,
    ``q`` 2S, the update 3S^2 + 1, the loop test and counter 4."""
    return 5 * s * s + 7 * s + 6


def _step_flops(n: int, m: int, s: int, *, nonneg: bool, warm: bool) -> int:
    """Per sample and path step: :func:`_step`.

    ``u = H theta`` 2S^2 and its active part S; ``u D_A`` (2S - 1)M; ``a = D (u D_A)^T`` 2MN; open
    atoms 3N; per event side the gap, rate and :func:`_event_length` 8N (two sides and their min
    when signed, 17N); the argmin over atoms
    (:func:`~jaxsparse.solvers.reductions.min_and_argmin_flops`); the leaving test 9S and its
    argmin 4S; the free slot 5S; the entering factors 2S^2 + 5S; the inverse update 3S^2 + S; slot
    updates 14S; ``c`` 2N; about 12 scalars (18 when signed: the entering side; the active set is two
    one-element scatters).
    Warm: the drive ``w_A`` 2S, and ``-speed`` N when nonneg.
    """
    per_step = (2 * m * n + (2 * s - 1) * m + (13 if nonneg else 22) * n + min_and_argmin_flops(n)
                + 7 * s * s + 39 * s + (12 if nonneg else 18))
    if warm:
        per_step += 2 * s + (n if nonneg else 0)
    return per_step


def _finish_flops(n: int, m: int, s: int, *, nonneg: bool) -> int:
    """Per sample: ``_finish``: ``c`` at the path's end 4MN + M; the Newton step 2S^2 + 7S + N
    (+ N clipping when nonneg); the KKT check (:func:`_kkt_flops`) and its tolerance's ``||x||``, 2M + 5."""
    return (4 * m * n + m + 2 * s * s + 7 * s + n + (n if nonneg else 0) + _kkt_flops(n, m, nonneg=nonneg)
            + 2 * m + 5)


def _kkt_flops(n: int, m: int, *, nonneg: bool) -> int:
    """Per sample: ``c = D (x - z D)^T`` 4MN + M and :func:`_kkt_residual`, 10N (7N when nonneg)."""
    return 4 * m * n + m + (7 if nonneg else 10) * n


def homotopy_flops(
    n_latents: int, n_features: int, *, path_steps: int, slots: int, nonneg: bool = False,
    warm_support: int | None = None,
) -> int:
    """FLOPs per sample of one homotopy pass: its start, ``path_steps`` path steps and its finish.

    With ``N = n_latents``, ``M = n_features``, ``S = slots`` (a multiply-add is 2, any other
    elementwise op, comparison or select 1; index arithmetic of gathers is not counted)::

        start  = 2MN + 8N + 3S^2 + 4S + 2                                   (cold; 7N when nonneg)
                 4MN + M + (8 + ceil(log2 N)) N + A (5S^2 + 7S + 6) + 4S    (warm, A = warm_support;
                                                                              7N + ... when nonneg)
        step   = 2MN + (2S - 1)M + 22N + A(N) + 7S^2 + 39S + 18
                 (nonneg: 13N and 12; warm: + 2S, + N when nonneg; A(N): the argmin over atoms,
                 3N/2 + 36 on CPU when N is a multiple of 8, at least 32, else 4N)
        finish = 8MN + 4M + 11N + 2S^2 + 7S + 5                             (nonneg: 9N)

    (itemised in ``_start_flops``, ``_step_flops``, ``_finish_flops``; ``tests/test_solvers.py``
    checks each piece against XLA's cost analysis). ``homotopy(..., return_info=True)`` adds these
    up per sample over the passes it ran (on CPU 16 slots, then ``max_active``; on an accelerator
    ``max_active``; a warm start: ``max_active``, then cold if it failed), plus
    ``fista_flops(N, M, n_iter=fallback_iters)`` and one KKT check if it fell back. Excluded, as for every solver: the Gram matrix ``D D^T``.

    Example::

        homotopy_flops(256, 64, path_steps=10, slots=16)   # 602_803: a 10-step cold pass (on CPU)

    Args:
      n_latents, n_features: ``N`` and ``M``.
      path_steps: segments followed (``>= 0``).
      slots: active-set slots of the pass (``min(max_active, 16)`` for a cold first pass on CPU,
        ``max_active`` otherwise).
      nonneg: as passed to :func:`homotopy`.
      warm_support: for a pass warm-started from ``init``, its number of nonzeros (the seeded atoms,
        at most ``slots``); ``None`` for a cold pass.
    Returns:
      FLOPs per sample, an ``int``.
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    s = positive_int("slots", slots, maximum=n)
    steps = positive_int("path_steps", path_steps, minimum=0)
    seeds = None if warm_support is None else positive_int("warm_support", warm_support, minimum=0, maximum=s)
    nonneg, warm = bool(nonneg), warm_support is not None
    return (_start_flops(n, m, s, nonneg=nonneg, seeds=seeds) + steps * _step_flops(n, m, s, nonneg=nonneg, warm=warm)
            + _finish_flops(n, m, s, nonneg=nonneg))


class _Record(NamedTuple):
    """Per-sample results carried through the passes (leading batch axis)."""

    z: jax.Array
    kkt_residual: jax.Array
    path_steps: jax.Array
    fallback: jax.Array
    flops: jax.Array


@functools.partial(jax.jit, static_argnames=("max_active", "max_steps", "nonneg", "fallback_iters", "schedule"))
def _homotopy(dictionary, x, lam, init, *, max_active, max_steps, nonneg, fallback_iters, schedule):
    with jax.default_matmul_precision("highest"):  # an exact path needs exact correlations (no TF32 or bf16 passes)
        return _homotopy_body(dictionary, x, lam, init, max_active=max_active, max_steps=max_steps, nonneg=nonneg,
                              fallback_iters=fallback_iters, schedule=schedule)


def _homotopy_body(dictionary, x, lam, init, *, max_active, max_steps, nonneg, fallback_iters, schedule):
    batch_shape, (n_latents, n_features) = x.shape[:-1], dictionary.shape
    dtype = x.dtype
    flat = x.reshape(-1, n_features)
    first = max_active if schedule.first_slots is None else min(max_active, schedule.first_slots)
    warm = init is not None
    if warm:
        init = init.reshape(-1, n_latents).astype(dtype)
        if nonneg:
            init = jnp.maximum(init, 0.0)

    def pass_flops(slots, steps, seeds=None):  # homotopy_flops with traced path steps and seeds
        warm_pass = seeds is not None
        # Python floats: at SAE scale the counts pass 2**31 (a Python int would be parsed as int32)
        fixed = float(homotopy_flops(n_latents, n_features, path_steps=0, slots=slots, nonneg=nonneg,
                                     warm_support=0 if warm_pass else None))
        per_step = float(_step_flops(n_latents, n_features, slots, nonneg=nonneg, warm=warm_pass))
        seeding = _seed_flops(slots) * seeds.astype(dtype) if warm_pass else 0.0
        return fixed + seeding + per_step * steps.astype(dtype)

    if warm:  # a warm start's support may be large and its path is short: all the slots at once
        first, first_steps = max_active, max_steps
    else:
        first_steps = min(max_steps, 4 * first)
    z, bad, residual, steps = _solve(
        dictionary, flat, lam, max_active=first, max_steps=first_steps, nonneg=nonneg, schedule=schedule, init=init
    )
    seeds = jnp.minimum(jnp.sum(init != 0, axis=-1), first) if warm else None
    record = _Record(z, residual, steps, jnp.zeros_like(bad), pass_flops(first, steps, seeds))
    if warm or first < max_active:  # the few samples with larger supports (or a failed warm start): cold, all slots
        def cold(x_b, r):
            z, bad, residual, steps = _solve(
                dictionary, x_b, lam, max_active=max_active, max_steps=max_steps, nonneg=nonneg, schedule=schedule
            )
            return r._replace(z=z, kkt_residual=residual, path_steps=r.path_steps + steps,
                              flops=r.flops + pass_flops(max_active, steps)), bad

        record, bad = _redo_flagged(cold, flat, record, bad)

    fallback_flops = float(fista_flops(n_latents, n_features, n_iter=fallback_iters, nonneg=nonneg, restart=True)
                           + _kkt_flops(n_latents, n_features, nonneg=nonneg))

    def fista_from(x_b, r):
        z_f = _proximal_gradient(
            dictionary, x_b, lam, r.z, n_iter=fallback_iters, nonneg=nonneg, accelerate=True, restart=True
        )
        sg = jax.lax.stop_gradient
        residual = _kkt_residual(sg(z_f), sg((x_b - z_f @ dictionary) @ dictionary.T), sg(lam), nonneg)
        return r._replace(z=z_f, kkt_residual=residual, fallback=jnp.ones_like(r.fallback),
                          flops=r.flops + fallback_flops), jnp.zeros_like(r.fallback)

    # FISTA compiles fast and runs slowly in small chunks: past a quarter of the batch, the whole batch
    record, _ = _redo_flagged(fista_from, flat, record, bad, whole_above=flat.shape[0] // 4)
    info = HomotopyInfo(
        converged=record.kkt_residual <= jax.lax.stop_gradient(_kkt_tolerance(dictionary, flat, lam)),
        kkt_residual=record.kkt_residual,
        path_steps=record.path_steps,
        fallback=record.fallback,
        flops=record.flops,
    )
    info = jax.tree.map(lambda a: a.reshape(batch_shape), info)
    return record.z.reshape(batch_shape + (n_latents,)), info


def homotopy(
    dictionary: jax.Array,
    x: jax.Array,
    *,
    lam: float,
    nonneg: bool = False,
    max_active: int | None = None,
    max_steps: int | None = None,
    fallback_iters: int = 500,
    init: jax.Array | None = None,
    return_info: bool = False,
) -> jax.Array | tuple[jax.Array, HomotopyInfo]:
    """Exact Lasso codes ``argmin_z 0.5 ||x - z D||^2 + lam ||z||_1`` by batched homotopy.

    See the module docstring for the path, the events, the warm start and the differentiable final
    step. Same objective and scaling as :func:`jaxsparse.solvers.fista` (scikit-learn ``Lasso`` with
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
      init: optional warm start ``[..., N]``: the path runs from it to the solution (module
        docstring); the solution reached is the same, and from the solution itself it takes one step.
      return_info: also return a :class:`HomotopyInfo` of per-sample diagnostics (converged, KKT
        residual, path steps, FISTA fallback, FLOPs).
    Returns:
      ``[..., N]`` codes, or ``(codes, info)`` with ``return_info=True``.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0), 4096, 256, 64, 8, noise=0.01)
        z_hat, info = homotopy(d, x, lam=0.05, max_active=32, return_info=True)
        assert info.converged.all(); print(info.flops.mean())
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    n_latents, n_features = dictionary.shape
    nonneg_scalar("lam", lam)
    if max_active is None:
        max_active = min(n_latents, n_features)
    max_active = positive_int("max_active", max_active, maximum=n_latents)
    max_steps = positive_int("max_steps", 4 * max_active if max_steps is None else max_steps)
    fallback_iters = positive_int("fallback_iters", fallback_iters)
    init = check_init(init, x, n_latents)
    z, info = _homotopy(
        dictionary, x, jnp.asarray(lam, x.dtype), init,
        max_active=max_active, max_steps=max_steps, nonneg=bool(nonneg), fallback_iters=fallback_iters,
        schedule=default_schedule(),
    )
    return (z, info) if return_info else z

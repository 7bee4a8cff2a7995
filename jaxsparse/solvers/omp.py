"""Orthogonal matching pursuit, batched over signals, with rank-one inverse-Gram updates.

For one signal ``x: [M]`` and dictionary ``D: [N, M]`` (rows are atoms), OMP (Pati et al. 1993)
runs ``k`` greedy steps; with residual ``r = x - z D`` and support ``S``::

    j   = argmax_j |<r, D_j>|    (the best-correlated atom; r is orthogonal to the atoms in S)
    S   = S + {j}
    z_S = argmin ||x - z_S D_S||^2 = (D_S D_S^T)^{-1} D_S x   (least squares on the support)

``(D_S D_S^T)^{-1}`` is updated by one rank-one step per atom (:mod:`jaxsparse.solvers.gram_inverse`),
in arrays padded to ``k`` slots. A step adds no atom (its coefficient stays 0) when the residual is
numerically zero or the new atom is numerically in the span of the support, where scikit-learn's
``orthogonal_mp`` stops early.

**Warm start.** OMP has no objective to descend, so a warm start means a *seeded support*: the
nonzeros of ``init`` (the ``k`` largest ``|init_j|`` if it has more) are taken as the first
selected atoms, in decreasing order of ``|init_j|``, then the remaining steps are greedy. The values
of ``init`` are not used (least squares refits the coefficients), and a seeded atom is kept
whatever its correlation with the residual (but not if it is in the span of the atoms before it).
Since OMP's result depends only on its selected set, seeding it with its own output returns that
output, and seeding it with the first ``j`` atoms it selects reproduces the cold run.

FLOPs per sample (:func:`omp_flops`): ``2MN`` for ``D x``; per step the argmax ``2N``, the
inverse-Gram update ``5s^2 + 2s`` and the coefficients ``2s^2`` over ``s`` padded slots (the support
size rounded up to a power of two); between steps (``k - 1`` times) the new correlations
``(x - z_S D_S) D^T``, ``2sM + 2MN``; a warm start adds the top-``k`` of ``|init|``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsparse._checks import check_dictionary_and_signal, check_init, positive_int
from jaxsparse.solvers.reductions import max_abs_and_argmax
from jaxsparse.solvers.gram_inverse import add_factors, combine_slots, rank_one


def _slot_schedule(k: int) -> list[int]:
    """Slots (padded support size) of each of the ``k`` steps: step ``i`` needs ``i + 1``; it gets the next
    power of two (at most ``k``), and the last step ``k``. Growing the slot arrays with the support
    instead of padding them to ``k`` from the start made ``k = 8`` 1.3x faster on 2 CPU cores (with
    the gathered atoms below); one scan per power of two keeps compilation ``O(log k)``."""
    return [min(1 << i.bit_length(), k) for i in range(k - 1)] + [k]


def _omp_batch(dictionary: jax.Array, x: jax.Array, k: int, init: jax.Array | None = None) -> jax.Array:
    """OMP for signals ``x: [B, M]`` (seeded with the support of ``init: [B, N]``); returns codes ``[B, N]``.

    Written at the batch level (not ``vmap`` of one signal) so that the correlations are one dense
    matmul per step, ``D r^T = D (x - z_S D_S)^T``, kept as ``[N, B]`` so that the argmax over atoms
    reduces down columns. The residual ``x - z_S D_S`` is one fused loop over the slots, each
    gathering one row of ``D`` per signal: 1.26x faster for the whole solve on 2 CPU cores than a
    ``[B, S, M]`` gather and a batched matvec (same codes, bit for bit), and cheaper than carrying a
    ``[B, k, M]`` array through the loop. The slot arrays grow with the support
    (:func:`_slot_schedule`); the last step skips the correlations.
    """
    n_latents, n_features = dictionary.shape
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    gram = dictionary @ dictionary.T
    alpha = dictionary @ x.T  # <x, D_j>, [N, B]: signals along the minor axis (see below)
    x_norm = jnp.linalg.norm(x, axis=-1)
    scatter = jax.vmap(lambda idx, val: jnp.zeros(n_latents, dtype).at[idx].add(val))
    factors = jax.vmap(add_factors, in_axes=(0, 0, 0, None))
    warm = init is not None
    if warm:  # the seeded atoms, largest |init| first; slots past the support are not seeded
        seed_size, seed_idx = jax.lax.top_k(jnp.abs(init), k)
        seeded_slots = seed_size > 0

    def step(carry, i, last=False):
        corr, h, idx, valid, alpha_s = carry
        # Selected atoms need no mask: the residual is orthogonal to them, and should rounding pick one
        # again its Schur complement is ~0 and the step adds nothing.
        # argmax of |corr| over atoms, down the columns of [N, B] (vectorised across the signals)
        corr_j, j = max_abs_and_argmax(corr)
        if warm:
            seeded = seeded_slots[:, i]
            j = jnp.where(seeded, seed_idx[:, i], j)
        v = jnp.where(valid, jax.vmap(lambda jj, ix: gram[jj, ix])(j, idx), 0.0)
        q, coef, schur = factors(h, v, gram[j, j], i)
        correlated = corr_j > 100 * eps * x_norm
        if warm:
            correlated = correlated | seeded
        ok = correlated & (schur > 100 * eps * gram[j, j])
        h = jax.vmap(rank_one)(h, q, jnp.where(ok, coef, 0.0))
        idx = idx.at[:, i].set(j)
        valid = valid.at[:, i].set(ok)
        alpha_s = alpha_s.at[:, i].set(jnp.where(ok, jnp.take_along_axis(alpha, j[None], axis=0)[0], 0.0))
        coef = jnp.einsum("bst,bt->bs", h, alpha_s)
        if not last:
            corr = dictionary @ combine_slots(dictionary, idx, -coef, start=x).T  # D (x - z_S D_S)^T
        return (corr, h, idx, valid, alpha_s), coef if last else None

    def with_slots(carry, size):  # zero-pad the slot axes of the carry to `size` slots
        corr, h, idx, valid, alpha_s = carry
        grow = size - h.shape[1]
        pad = lambda a, axes: jnp.pad(a, [(0, grow if ax in axes else 0) for ax in range(a.ndim)])  # noqa: E731
        return corr, pad(h, (1, 2)), pad(idx, (1,)), pad(valid, (1,)), pad(alpha_s, (1,))

    batch = x.shape[0]
    carry = (alpha, jnp.zeros((batch, 0, 0), dtype), jnp.zeros((batch, 0), jnp.int32), jnp.zeros((batch, 0), bool),
             jnp.zeros((batch, 0), dtype))
    slots = _slot_schedule(k)
    for size in sorted(set(slots[:-1])):  # one scan per slot count
        steps = [i for i, s in enumerate(slots[:-1]) if s == size]
        carry, _ = jax.lax.scan(step, with_slots(carry, size), jnp.arange(steps[0], steps[-1] + 1))
    (_, _, idx, valid, _), coef = step(with_slots(carry, k), k - 1, last=True)
    return scatter(idx, jnp.where(valid, coef, 0.0))


@functools.partial(jax.jit, static_argnames=("k",))
def _omp(dictionary: jax.Array, x: jax.Array, k: int, init: jax.Array | None = None) -> jax.Array:
    batch_shape, n_latents = x.shape[:-1], dictionary.shape[0]
    flat_init = None if init is None else init.reshape(-1, n_latents).astype(x.dtype)
    z = _omp_batch(dictionary, x.reshape(-1, x.shape[-1]), k, flat_init)
    return z.reshape(batch_shape + (n_latents,))


def omp_flops(n_latents: int, n_features: int, *, k: int, warm_start: bool = False) -> int:
    """FLOPs per sample of :func:`omp` (what ``_omp_batch`` executes; a multiply-add is 2)::

        2MN + sum_i (2N + 7 s_i^2 + 2 s_i) + sum_{i < k-1} (2 s_i M + 2MN)     (+ N + N ceil(log2 N) warm)

    over the ``k`` steps, ``s_i`` the slots of step ``i`` (``i + 1`` rounded up to a power of two, at
    most ``k``; ``k`` for the last step). A warm start adds ``|init|`` (``N``) and the top-``k``
    selection of its support, counted as the ``N ceil(log2 N)`` comparisons of a sort.

    Args:
      n_latents, n_features: ``N`` and ``M``.
      k: atoms selected, ``1 <= k <= N``.
      warm_start: an ``init`` is passed.
    Returns:
      FLOPs per sample, an ``int``.

    Example::

        omp_flops(16, 8, k=2)   # 256 + (32 + 7 + 2) + (32 + 28 + 4) + (16 + 256) = 633
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    k = positive_int("k", k, maximum=n)
    seeding = n + n * (n - 1).bit_length() if warm_start else 0
    slots = _slot_schedule(k)
    steps = sum(2 * n + 7 * s * s + 2 * s for s in slots)
    correlations = sum(2 * s * m + 2 * m * n for s in slots[:-1])
    return 2 * m * n + steps + correlations + seeding


def omp(dictionary: jax.Array, x: jax.Array, *, k: int, init: jax.Array | None = None) -> jax.Array:
    """Orthogonal matching pursuit with exactly ``k`` greedy steps (see the module docstring).

    Per signal, ``k`` times: ``j = argmax_j |<x - z D, D_j>|``, ``S = S + {j}``,
    ``z_S = argmin ||x - z_S D_S||^2``. Matches scikit-learn's ``orthogonal_mp(D.T, x,
    n_nonzero_coefs=k)`` in support and coefficients.

    Args:
      dictionary: ``[N, M]``, rows are atoms (unit norm by convention).
      x: ``[..., M]`` signals; leading axes are batch axes.
      k: number of atoms to select, ``1 <= k <= min(N, M)`` (static).
      init: optional warm start ``[..., N]``: its support seeds the selection (module docstring);
        its values are not used.
    Returns:
      ``[..., N]`` codes with at most ``k`` nonzeros per signal.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0))
        z_hat = omp(d, x, k=3)
        z_more = omp(d, x, k=5, init=z_hat)   # keeps these 3 atoms, adds 2 greedily
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    n_latents, n_features = dictionary.shape
    k = positive_int("k", k, maximum=n_latents)
    if k > n_features:
        raise ValueError(f"`k` must be <= n_features={n_features} (least squares on k atoms in R^M), got {k}")
    init = check_init(init, x, n_latents)
    return _omp(dictionary, x, k, init)

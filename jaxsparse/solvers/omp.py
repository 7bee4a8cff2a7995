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
inverse-Gram update ``5k^2 + 2k`` and the coefficients ``2k^2`` over ``k`` padded slots; between
steps (``k - 1`` times) the new correlations ``(x - z_S D_S) D^T``, ``2kM + M + 2MN``; a warm start
adds the top-``k`` of ``|init|``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsparse._checks import check_dictionary_and_signal, check_init, positive_int
from jaxsparse.solvers.reductions import min_and_argmin
from jaxsparse.solvers.gram_inverse import add_factors, rank_one


def _omp_batch(dictionary: jax.Array, x: jax.Array, k: int, init: jax.Array | None = None) -> jax.Array:
    """OMP for signals ``x: [B, M]`` (seeded with the support of ``init: [B, N]``); returns codes ``[B, N]``.

    Written at the batch level (not ``vmap`` of one signal) so that the correlations are one dense
    matmul per step, ``D r^T = D (x - z_S D_S)^T``, kept as ``[N, B]`` so that the argmax over atoms
    reduces down columns, with the selected atoms ``D_S`` kept in a ``[B, k, M]`` carry; the last step
    skips them.
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
        corr, h, idx, valid, atoms, _ = carry
        # Selected atoms need no mask: the residual is orthogonal to them, and should rounding pick one
        # again its Schur complement is ~0 and the step adds nothing.
        # argmax of |corr| over atoms, down the columns of [N, B] (vectorised across the signals)
        neg_best, j = min_and_argmin(-jnp.abs(corr), axis=0)
        if warm:
            seeded = seeded_slots[:, i]
            j = jnp.where(seeded, seed_idx[:, i], j)
        corr_j = -neg_best
        v = jnp.where(valid, jax.vmap(lambda jj, ix: gram[jj, ix])(j, idx), 0.0)
        q, coef, schur = factors(h, v, gram[j, j], i)
        correlated = corr_j > 100 * eps * x_norm
        if warm:
            correlated = correlated | seeded
        ok = correlated & (schur > 100 * eps * gram[j, j])
        h = jax.vmap(rank_one)(h, q, jnp.where(ok, coef, 0.0))
        idx = idx.at[:, i].set(j)
        valid = valid.at[:, i].set(ok)
        atoms = atoms.at[:, i].set(dictionary[j])
        coef = jnp.einsum("bst,bt->bs", h, jnp.where(valid, jnp.take_along_axis(alpha, idx.T, axis=0).T, 0.0))
        if not last:
            corr = dictionary @ (x - jnp.einsum("bs,bsm->bm", coef, atoms)).T
        return (corr, h, idx, valid, atoms, coef), None

    batch = x.shape[0]
    carry0 = (
        alpha,
        jnp.zeros((batch, k, k), dtype),
        jnp.zeros((batch, k), jnp.int32),
        jnp.zeros((batch, k), bool),
        jnp.zeros((batch, k, n_features), dtype),
        jnp.zeros((batch, k), dtype),
    )
    carry, _ = jax.lax.scan(step, carry0, jnp.arange(k - 1))
    (_, _, idx, valid, _, coef), _ = step(carry, k - 1, last=True)
    return scatter(idx, jnp.where(valid, coef, 0.0))


@functools.partial(jax.jit, static_argnames=("k",))
def _omp(dictionary: jax.Array, x: jax.Array, k: int, init: jax.Array | None = None) -> jax.Array:
    batch_shape, n_latents = x.shape[:-1], dictionary.shape[0]
    flat_init = None if init is None else init.reshape(-1, n_latents).astype(x.dtype)
    z = _omp_batch(dictionary, x.reshape(-1, x.shape[-1]), k, flat_init)
    return z.reshape(batch_shape + (n_latents,))


def omp_flops(n_latents: int, n_features: int, *, k: int, warm_start: bool = False) -> int:
    """FLOPs per sample of :func:`omp` (what ``_omp_batch`` executes; a multiply-add is 2)::

        2MN + k (2N + 7k^2 + 2k) + (k - 1)(2kM + M + 2MN)     (+ N + N ceil(log2 N) warm)

    A warm start adds ``|init|`` (``N``) and the top-``k`` selection of its support, counted as the
    ``N ceil(log2 N)`` comparisons of a sort.

    Args:
      n_latents, n_features: ``N`` and ``M``.
      k: atoms selected, ``1 <= k <= N``.
      warm_start: an ``init`` is passed.
    Returns:
      FLOPs per sample, an ``int``.

    Example::

        omp_flops(16, 8, k=2)   # 256 + 2 * 64 + 296 = 680
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    k = positive_int("k", k, maximum=n)
    seeding = n + n * (n - 1).bit_length() if warm_start else 0
    return 2 * m * n + k * (2 * n + 7 * k * k + 2 * k) + (k - 1) * (2 * k * m + m + 2 * m * n) + seeding


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

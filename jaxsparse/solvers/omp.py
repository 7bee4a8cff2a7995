"""Orthogonal matching pursuit, batched over signals, with rank-one inverse-Gram updates.

For one signal ``x: [M]`` and dictionary ``D: [N, M]`` (rows are atoms), OMP (Pati et al. 1993)
runs ``k`` greedy steps; with residual ``r = x - z D`` and support ``S``::

    j   = argmax_{j not in S} |<r, D_j>|                  (select the best-correlated atom)
    S   = S + {j}
    z_S = argmin ||x - z_S D_S||^2 = (D_S D_S^T)^{-1} D_S x   (least squares on the support)

``(D_S D_S^T)^{-1}`` is updated by one rank-one step per atom (:mod:`jaxsparse.solvers.gram_inverse`),
in arrays padded to ``k`` slots. A step adds no atom (its coefficient stays 0) when the residual is
numerically zero or the new atom is numerically in the span of the support, where scikit-learn's
``orthogonal_mp`` stops early.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsparse.solvers.reductions import argmax_last
from jaxsparse._checks import check_dictionary_and_signal, positive_int
from jaxsparse.solvers.gram_inverse import inverse_add


def _omp_one(dictionary: jax.Array, gram: jax.Array, x: jax.Array, k: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """OMP for one signal ``x: [M]``; returns ``(coefficients [k], indices [k], valid [k])``."""
    n_latents = dictionary.shape[0]
    dtype = x.dtype
    eps = jnp.finfo(dtype).eps
    alpha = dictionary @ x  # <x, D_j>, [N]
    x_norm = jnp.linalg.norm(x)

    def step(carry, i):
        residual, h, idx, valid, _ = carry
        corr = jnp.abs(dictionary @ residual)
        taken = jnp.zeros(n_latents, bool).at[idx].max(valid)
        j = argmax_last(jnp.where(taken, -1.0, corr))
        v = jnp.where(valid, gram[j, idx], 0.0)
        h_new, schur = inverse_add(h, v, gram[j, j], i)
        ok = (corr[j] > 100 * eps * x_norm) & (schur > 100 * eps * gram[j, j])
        h = jnp.where(ok, h_new, h)
        idx = idx.at[i].set(j.astype(idx.dtype))
        valid = valid.at[i].set(ok)
        coef = h @ jnp.where(valid, alpha[idx], 0.0)
        residual = x - coef @ dictionary[idx]
        return (residual, h, idx, valid, coef), None

    init = (x, jnp.zeros((k, k), dtype), jnp.zeros(k, jnp.int32), jnp.zeros(k, bool), jnp.zeros(k, dtype))
    (_, _, idx, valid, coef), _ = jax.lax.scan(step, init, jnp.arange(k))
    return jnp.where(valid, coef, 0.0), idx, valid


@functools.partial(jax.jit, static_argnames=("k",))
def _omp(dictionary: jax.Array, x: jax.Array, k: int) -> jax.Array:
    batch_shape, n_latents = x.shape[:-1], dictionary.shape[0]
    flat = x.reshape(-1, x.shape[-1])
    gram = dictionary @ dictionary.T
    coef, idx, _ = jax.vmap(_omp_one, in_axes=(None, None, 0, None))(dictionary, gram, flat, k)
    z = jax.vmap(lambda c, i: jnp.zeros(n_latents, x.dtype).at[i].add(c))(coef, idx)
    return z.reshape(batch_shape + (n_latents,))


def omp(dictionary: jax.Array, x: jax.Array, *, k: int) -> jax.Array:
    """Orthogonal matching pursuit with exactly ``k`` greedy steps (see the module docstring).

    Matches scikit-learn's ``orthogonal_mp(D.T, x, n_nonzero_coefs=k)`` in support and coefficients.

    Args:
      dictionary: ``[N, M]``, rows are atoms (unit norm by convention).
      x: ``[..., M]`` signals; leading axes are batch axes.
      k: number of atoms to select, ``1 <= k <= min(N, M)`` (static).
    Returns:
      ``[..., N]`` codes with at most ``k`` nonzeros per signal.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0))
        z_hat = omp(d, x, k=3)
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    n_latents, n_features = dictionary.shape
    k = positive_int("k", k, maximum=n_latents)
    if k > n_features:
        raise ValueError(f"`k` must be <= n_features={n_features} (least squares on k atoms in R^M), got {k}")
    return _omp(dictionary, x, k)

"""Matching pursuit (Mallat & Zhang 1993): greedy, no re-fitting of earlier coefficients.

For one signal ``x: [M]``, dictionary ``D: [N, M]`` with unit-norm rows, residual ``r = x - z D``::

    c = r D^T;   j = argmax_j |c_j|   (argmax_j c_j when nonneg)
    z_j += c_j;  r -= c_j D_j          (c_j clipped at 0 when nonneg)

An atom may be selected more than once, so ``n_iter`` bounds (does not fix) the number of nonzeros.

FLOPs per sample (:func:`matching_pursuit_flops`): per iteration the correlations ``2MN``, the
argmax ``2N`` and the update ``2M + 1``; a warm start adds its residual ``x - z D``, ``2MN + M``, once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsparse.solvers.reductions import argmax_last
from jaxsparse._checks import check_dictionary_and_signal, check_init, positive_int


@functools.partial(jax.jit, static_argnames=("n_iter", "nonneg"))
def _matching_pursuit(dictionary, x, init, *, n_iter, nonneg):
    n_latents = dictionary.shape[0]
    z0 = jnp.zeros(x.shape[:-1] + (n_latents,), x.dtype) if init is None else init.astype(x.dtype)
    residual0 = x if init is None else x - z0 @ dictionary

    def step(carry, _):
        z, residual = carry
        corr = residual @ dictionary.T
        j = argmax_last(corr if nonneg else jnp.abs(corr))
        c = jnp.take_along_axis(corr, j[..., None], axis=-1)
        if nonneg:
            c = jnp.maximum(c, 0)
        z = z + c * jax.nn.one_hot(j, n_latents, dtype=x.dtype)
        return (z, residual - c * dictionary[j]), None

    (z, _), _ = jax.lax.scan(step, (z0, residual0), None, length=n_iter)
    return z


def matching_pursuit_flops(n_latents: int, n_features: int, *, n_iter: int = 10, warm_start: bool = False) -> int:
    """FLOPs per sample of :func:`matching_pursuit` (a multiply-add is 2)::

        n_iter * (2MN + 2N + 2M + 1)   (+ 2MN + M with a warm start)

    Args:
      n_latents, n_features: ``N`` and ``M``.
      n_iter: greedy steps.
      warm_start: an ``init`` is passed (its residual is computed once).
    Returns:
      FLOPs per sample, an ``int``.
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    n_iter = positive_int("n_iter", n_iter)
    return n_iter * (2 * m * n + 2 * n + 2 * m + 1) + (2 * m * n + m if warm_start else 0)


def matching_pursuit(
    dictionary: jax.Array, x: jax.Array, *, n_iter: int = 10, nonneg: bool = False, init: jax.Array | None = None
) -> jax.Array:
    """Matching pursuit codes (see the module docstring).

    Args:
      dictionary: ``[N, M]`` with unit-norm rows.
      x: ``[..., M]`` signals.
      n_iter: greedy steps (static).
      nonneg: only positive coefficients.
      init: optional warm start ``[..., N]``.
    Returns:
      ``[..., N]`` codes.
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    init = check_init(init, x, dictionary.shape[0])
    n_iter = positive_int("n_iter", n_iter)
    return _matching_pursuit(dictionary, x, init, n_iter=n_iter, nonneg=bool(nonneg))

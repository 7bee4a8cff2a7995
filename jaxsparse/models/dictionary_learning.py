"""Dictionary learning by batch alternating minimisation: FISTA codes, block-coordinate atom updates.

Minimises over codes ``S [B, N]`` (non-negative when ``nonneg``) and a dictionary ``D [N, M]`` with
atoms in the unit ball, for signals ``X [B, M]``::

    F(S, D) = sum_b 0.5 ||x_b - s_b D||^2 + lam ||s_b||_1                                 (1)

Each of ``n_iter`` outer steps (i) updates the codes by ``inner_iter`` FISTA iterations warm-started
at the previous codes (:func:`jaxsparse.solvers.fista`), (ii) forms the sufficient statistics
``A = S^T S [N, N]``, ``Bm = S^T X [N, M]`` and (iii) makes one pass of block-coordinate descent
over the atoms (Mairal, Bach, Ponce & Sapiro 2010, "Online learning for matrix factorization and
sparse coding", Algorithm 2, here on the full batch)::

    d_j <- (Bm_j - A_j D) / A_jj + d_j,    d_j <- d_j / max(||d_j||, 1)

Atoms start at ``n_latents`` distinct training signals (normalised), as in SPAMS. Each step
decreases (1) up to the inexact inner solve. All loops are ``lax.scan``; ``vmap`` over seeds.

Training FLOPs: ``jaxsparse.eval.flops("alternating", n_iter=inner_iter, n_steps=n_iter,
n_samples=B, phase="training", ...)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsparse._checks import as_float_array, nonneg_scalar, positive_int
from jaxsparse.models.sae import normalize_rows
from jaxsparse.solvers import fista


def update_dictionary(dictionary: jax.Array, a: jax.Array, b: jax.Array, eps: float = 1e-10) -> jax.Array:
    """One block-coordinate pass over the atoms (Mairal et al. 2010, Alg. 2).

    Args:
      dictionary: ``[N, M]``.  a: ``S^T S`` ``[N, N]``.  b: ``S^T X`` ``[N, M]``.
    Returns:
      ``[N, M]``, atoms projected onto the unit ball; an unused atom (``A_jj = 0``) is kept.
    """

    def body(d, j):
        u = jnp.where(a[j, j] > eps, (b[j] - a[j] @ d) / jnp.maximum(a[j, j], eps) + d[j], d[j])
        return d.at[j].set(u / jnp.maximum(jnp.linalg.norm(u), 1.0)), None

    return jax.lax.scan(body, dictionary, jnp.arange(dictionary.shape[0]))[0]


def learn_dictionary(key: jax.Array, x: jax.Array, *, n_latents: int, lam: float, n_iter: int = 1000,
                     inner_iter: int = 20, nonneg: bool = True) -> tuple[jax.Array, jax.Array]:
    """Learn ``D`` on ``x [B, M]`` by alternating FISTA codes and block-coordinate atom updates, objective (1).

    Args:
      key: picks the ``n_latents`` training signals that initialise the atoms.
      x: ``[B, M]`` training signals, ``B >= n_latents``.
      n_latents: atoms ``N``.  lam: the per-sample l1 weight of (1).
      n_iter: outer steps.  inner_iter: FISTA iterations per step (warm-started).
      nonneg: non-negative codes.
    Returns:
      ``(dictionary [N, M] with unit-norm rows, training codes [B, N])``.

    Example::

        d, s = learn_dictionary(jax.random.key(0), x, n_latents=16, lam=0.005)
    """
    x = as_float_array("x", x, min_ndim=2)
    n_latents = positive_int("n_latents", n_latents, maximum=x.shape[0])
    nonneg_scalar("lam", lam)
    return _learn(key, x, jnp.asarray(lam, x.dtype), n_latents=n_latents, n_iter=positive_int("n_iter", n_iter),
                  inner_iter=positive_int("inner_iter", inner_iter), nonneg=bool(nonneg))


def _learn(key, x, lam, *, n_latents, n_iter, inner_iter, nonneg):
    idx = jax.random.choice(key, x.shape[0], (n_latents,), replace=False)
    d0 = normalize_rows(x[idx])
    z0 = jnp.zeros((x.shape[0], n_latents), x.dtype)

    def step(carry, _):
        d, z = carry
        z = fista(d, x, lam=lam, n_iter=inner_iter, nonneg=nonneg, init=z)
        return (update_dictionary(d, z.T @ z, z.T @ x), z), None

    (d, z), _ = jax.lax.scan(step, (d0, z0), None, length=n_iter)
    return normalize_rows(d), z


_learn = jax.jit(_learn, static_argnames=("n_latents", "n_iter", "inner_iter", "nonneg"))

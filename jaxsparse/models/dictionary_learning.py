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

Training FLOPs: :func:`dictionary_learning_flops` (``jaxsparse.eval.flops("alternating",
n_iter=inner_iter, n_steps=n_iter, n_samples=B, phase="training", ...)`` dispatches there).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsparse._checks import as_float_array, nonneg_scalar, positive_int
from jaxsparse.models.sae import normalize_rows
from jaxsparse.solvers import fista, fista_flops


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


def init_dictionary_learning(key: jax.Array, x: jax.Array, n_latents: int) -> dict[str, jax.Array]:
    """``{"dictionary": [N, M], "codes": [B, N]}``: atoms at ``n_latents`` distinct training signals
    (normalised, as SPAMS does), codes zero. ``x: [B, M]``, ``B >= n_latents``."""
    idx = jax.random.choice(key, x.shape[0], (n_latents,), replace=False)
    return {"dictionary": normalize_rows(x[idx]), "codes": jnp.zeros((x.shape[0], n_latents), x.dtype)}


def dictionary_learning_step(params: dict[str, jax.Array], x: jax.Array, *, lam: float | jax.Array, inner_iter: int,
                             nonneg: bool = True) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """One outer step on objective (1): ``inner_iter`` FISTA iterations warm-started at the previous
    codes, then one block-coordinate pass over the atoms.

    Returns:
      ``(params, {"loss": (1) / B at the new codes and the previous dictionary, "l0": mean nonzeros})``.
    """
    d, z = params["dictionary"], params["codes"]
    z = fista(d, x, lam=lam, n_iter=inner_iter, nonneg=nonneg, init=z)
    loss = jnp.mean(0.5 * jnp.sum((x - z @ d) ** 2, axis=-1) + lam * jnp.sum(jnp.abs(z), axis=-1))
    l0 = jnp.mean(jnp.sum(z != 0, axis=-1).astype(x.dtype))
    return {"dictionary": update_dictionary(d, z.T @ z, z.T @ x), "codes": z}, {"loss": loss, "l0": l0}


def learn_dictionary(key: jax.Array, x: jax.Array, *, n_latents: int, lam: float, n_iter: int = 1000,
                     inner_iter: int = 20, nonneg: bool = True) -> tuple[jax.Array, jax.Array]:
    """Learn ``D`` on ``x [B, M]`` by alternating FISTA codes and block-coordinate atom updates, objective (1).

    ``n_iter`` steps of :func:`dictionary_learning_step` from :func:`init_dictionary_learning` under
    ``lax.scan`` (the same pieces train it through :mod:`jaxsparse.train` as a ``Task`` with ``update``).

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
    def step(params, _):
        return dictionary_learning_step(params, x, lam=lam, inner_iter=inner_iter, nonneg=nonneg)[0], None

    params, _ = jax.lax.scan(step, init_dictionary_learning(key, x, n_latents), None, length=n_iter)
    return normalize_rows(params["dictionary"]), params["codes"]


_learn = jax.jit(_learn, static_argnames=("n_latents", "n_iter", "inner_iter", "nonneg"))


def dictionary_learning_flops(n_latents: int, n_features: int, *, n_samples: int, n_iter: int, inner_iter: int,
                              nonneg: bool = True) -> int:
    """Total FLOPs of :func:`learn_dictionary` (``n_iter`` outer steps on ``B = n_samples`` signals).

    ``N`` = n_latents, ``M`` = n_features. Per outer step and sample: ``inner_iter`` warm-started
    FISTA iterations (:func:`jaxsparse.solvers.fista_flops`, its ``x D^T`` included) plus the
    statistics ``S^T S``, ``S^T X``, ``2N^2 + 2NM``; per outer step, one block-coordinate pass over
    the atoms ``N (2NM + 6M)``::

        n_iter * (B * (fista_flops(N, M, n_iter=inner_iter, nonneg) + 2N^2 + 2NM) + N (2NM + 6M))

    Example::

        dictionary_learning_flops(16, 8, n_samples=100, n_iter=10, inner_iter=20)
        # 10 * (100 * (14416 + 512 + 256) + 16 * (256 + 48)) = 15_232_640
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    samples, steps = positive_int("n_samples", n_samples), positive_int("n_iter", n_iter)
    inner = fista_flops(n, m, n_iter=inner_iter, nonneg=nonneg)
    return steps * (samples * (inner + 2 * n * n + 2 * n * m) + n * (2 * n * m + 6 * m))

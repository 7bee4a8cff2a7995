"""The amortisation gap of linear-ReLU encoders (O'Neill, Gumran & Klindt, ICML 2025, Theorem 1).

**Setting.** Codes ``s in R^N_{>=0}`` with at most ``K >= 2`` nonzeros, a dictionary ``D [N, M]``
with ``M < N`` whose columns of ``D^T`` (atoms) satisfy the restricted isometry property of order
``2K``, and noiseless signals ``x = s D``. Under RIP, compressed sensing recovers every such ``s``
from ``x`` (l1 minimisation, OMP, FISTA at small ``lam``).

**Theorem.** No encoder ``f(x) = ReLU(x W + b)`` (``W [M, N]``, ``b [N]``) recovers every
``K``-sparse non-negative code: ``sup_s ||f(sD) - s|| > 0``. The amortisation gap is non-zero.

**Proof.** Suppose ``f(sD) = s`` for all such ``s``. (i) One atom, ``s = a e_i``: ``ReLU(a D_i W + b)
= a e_i`` for all ``a > 0``; letting ``a -> 0`` gives ``ReLU(b) = 0``, and on coordinate ``i``,
``a (D_i W)_i + b_i = a`` for all ``a > 0`` gives ``b_i = 0``, ``(D_i W)_i = 1``; for ``j != i``,
``(D_i W)_j <= 0``. (ii) Two atoms (``K >= 2``), ``s = a e_i + c e_j``: coordinate ``i`` gives
``a + c (D_j W)_i = a`` for all ``a, c > 0``, so ``(D_j W)_i = 0``. Hence ``D W = I_N``, but
``rank(D W) <= M < N``: a contradiction. By continuity of ``f``, the error is bounded away from
zero on a set of codes of positive probability, so the expected code error of the *best* such
encoder is strictly positive, while a solver reaches zero. ∎

The linear part alone is quantitative: ``min_W ||D W - I_N||_F^2 = N - rank(D)``
(:func:`linear_gap`), since ``D W`` has rank at most ``rank(D)`` (Eckart–Young).

**Quantitative version** (:func:`relu_gap_bound`). Take the proof's finite set of codes
(:func:`theorem_codes`), for ``0 < alpha < beta`` and ``c > 0``::

    T = {alpha e_i, beta e_i : i}  ∪  {alpha e_i + c e_j : i != j}

and ``eps = max_{s in T} ||ReLU(s D W + b) - s||_inf``. Then for every ``W, b``::

    eps >= min(alpha, sqrt(N - rank D) / (2 sqrt(N / (beta - alpha)^2 + N (N - 1) / c^2)))

Proof: let ``A = D W``. If ``eps < alpha``, every support coordinate of every code in ``T`` has
output ``>= alpha - eps > 0``, so the ReLU is the identity there. From ``alpha e_i`` and ``beta e_i``,
``|alpha A_ii + b_i - alpha| <= eps`` and ``|beta A_ii + b_i - beta| <= eps``, so
``|A_ii - 1| <= 2 eps / (beta - alpha)``; from ``alpha e_i + c e_j`` and ``alpha e_i``,
``|c A_ji| <= 2 eps``. Summing squares, ``N - rank D = linear_gap <= ||A - I||_F^2 <=
4 eps^2 (N / (beta - alpha)^2 + N (N - 1) / c^2)``. ∎ Exact solvers (OMP with ``k = 2``, the Lasso
at small ``lam``) recover ``T`` when ``D`` allows it, so on ``T`` the gap is measurable.

The supervised fit of the best such encoder is :func:`jaxsparse.models.fit.fit_relu_encoder`;
``tests/test_theory_amortisation.py`` checks the theorem numerically with it: the fitted encoder's
error on ``T`` stays above :func:`relu_gap_bound`, while exact Lasso / OMP on the true dictionary
recover the codes.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import as_float_array, positive_int
from jaxsparse.models.fit import fit_relu_encoder  # noqa: F401  (moved to models.fit; re-exported for old callers)


def relative_code_error(z: jax.Array, z_hat: jax.Array) -> jax.Array:
    """``sum ||z_hat - z||^2 / sum ||z||^2`` over all samples (0 = perfect recovery).

    Args:
      z, z_hat: ``[B, N]`` true and inferred codes.
    """
    z = as_float_array("z", z, min_ndim=2)
    z_hat = as_float_array("z_hat", z_hat, min_ndim=2)
    if z.shape != z_hat.shape:
        raise ValueError(f"`z_hat` must have the shape of `z` {tuple(z.shape)}, got {tuple(z_hat.shape)}")
    return jnp.sum((z_hat - z) ** 2) / jnp.sum(z**2)


def linear_gap(dictionary: jax.Array) -> jax.Array:
    """``min_W ||D W - I_N||_F^2 = N - rank(D)`` for ``dictionary [N, M]`` (> 0 whenever ``M < N``)."""
    dictionary = as_float_array("dictionary", dictionary, min_ndim=2)
    n = dictionary.shape[0]
    w = jnp.linalg.pinv(dictionary)  # [M, N], the least-squares minimiser
    return jnp.sum((dictionary @ w - jnp.eye(n, dtype=dictionary.dtype)) ** 2)


def _check_magnitudes(alpha: float, beta: float, c: float) -> tuple[float, float, float]:
    for name, value in (("alpha", alpha), ("beta", beta), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"`{name}` must be a real number, got {type(value).__name__}")
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}")
    if beta <= alpha:
        raise ValueError(f"`beta` must be > alpha={alpha}, got {beta!r}")
    return float(alpha), float(beta), float(c)


def theorem_codes(n_latents: int, *, alpha: float = 1.0, beta: float = 2.0, c: float = 1.0,
                  dtype=jnp.float32) -> jax.Array:
    """The proof's codes ``T``: ``alpha e_i``, ``beta e_i`` for every ``i``, ``alpha e_i + c e_j`` for ``i != j``.

    Args:
      n_latents: ``N >= 2``.
      alpha, beta, c: magnitudes, ``0 < alpha < beta``, ``c > 0``.
    Returns:
      ``[2N + N (N - 1), N]`` non-negative codes with one or two nonzeros.
    """
    n = positive_int("n_latents", n_latents, minimum=2)
    alpha, beta, c = _check_magnitudes(alpha, beta, c)
    eye = np.eye(n)
    pairs = [alpha * eye[i] + c * eye[j] for i, j in itertools.permutations(range(n), 2)]
    return jnp.asarray(np.concatenate([alpha * eye, beta * eye, np.stack(pairs)]), dtype)


def relu_gap_bound(dictionary: jax.Array, *, alpha: float = 1.0, beta: float = 2.0, c: float = 1.0) -> jax.Array:
    """Lower bound on ``max_{s in T} ||ReLU(s D W + b) - s||_inf`` over all ``W, b`` (module docstring).

        bound = min(alpha, sqrt(linear_gap(D)) / (2 sqrt(N / (beta - alpha)^2 + N (N - 1) / c^2)))

    Args:
      dictionary: ``[N, M]``.
      alpha, beta, c: the magnitudes of :func:`theorem_codes`.
    Returns:
      A scalar, ``> 0`` whenever ``rank(D) < N``.

    Example::

        d = jaxsparse.data.random_dictionary(jax.random.key(0), 16, 8)
        relu_gap_bound(d)   # sqrt(8) / (2 * 16) = 0.088
    """
    dictionary = as_float_array("dictionary", dictionary, min_ndim=2)
    alpha, beta, c = _check_magnitudes(alpha, beta, c)
    n = dictionary.shape[0]
    scale = 2.0 * np.sqrt(n / (beta - alpha) ** 2 + n * (n - 1) / c**2)
    gap = jnp.maximum(linear_gap(dictionary), 0.0)
    return jnp.minimum(alpha, jnp.sqrt(gap) / scale)

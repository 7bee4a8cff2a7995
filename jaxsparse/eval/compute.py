"""Analytic FLOPs per sample for every solver (and, as they land, every encoder).

One multiply-add counts as 2 FLOPs; elementwise ops, comparisons and square roots as 1.
``N`` = n_latents, ``M`` = n_features. Counts follow what our implementations execute:

- ``matmul``: one ``x D^T`` product, ``2MN``.
- ``ista``/``fista``: set-up plus ``n_iter`` iterations. The gradient uses the Gram form
  (``2N^2 + N`` per iteration, ``2MN`` once for ``x D^T``) when ``N <= 2M``, else the residual
  form (``4MN + M``). Gradient step ``2N``, soft threshold ``3N`` (``2N`` when ``nonneg``);
  FISTA momentum ``5N`` (plus ``2N`` for adaptive restart) and ``4`` scalar FLOPs.
- ``omp``: ``2MN`` for ``D x``, then ``k`` steps over ``k`` padded slots: ``|.|`` and argmax
  ``2N``, inverse-Gram update ``5k^2 + 2k``, coefficients ``2k^2``; and between steps (``k - 1``
  times) the new correlations, ``2N^2 + N`` (Gram form, ``N <= 2M``) or ``4MN + M``.
- ``matching_pursuit``: per iteration correlations ``2MN``, argmax ``2N``, update ``2M + 1``
  (a warm start adds ``2MN + M`` once for its residual).

Per-dictionary set-up (the Gram matrix ``D D^T``, the spectral norm) is excluded: it is paid once
per dictionary and amortised over the batch. ``tests/test_flops.py`` checks these counts against
XLA's own cost analysis of the compiled solvers.

Training costs (paper 1): ``(forward + backward + update) * samples * steps`` — built from these.
"""

from __future__ import annotations

from jaxsparse._checks import positive_int


def _prox_gradient_flops(n: int, m: int, n_iter: int, *, accelerate: bool, restart: bool, nonneg: bool) -> int:
    if n <= 2 * m:
        setup, grad = 2 * m * n, 2 * n * n + n
    else:
        setup, grad = 0, 4 * m * n + m
    per_iter = grad + 2 * n + (2 * n if nonneg else 3 * n)
    if accelerate:
        per_iter += 5 * n + 4 + (2 * n if restart else 0)
    return setup + n_iter * per_iter


def flops(
    method: str,
    *,
    n_latents: int,
    n_features: int,
    n_iter: int | None = None,
    k: int | None = None,
    nonneg: bool = False,
    restart: bool = True,
) -> int:
    """Inference FLOPs per sample of ``method`` (see the module docstring for each formula).

    Args:
      method: ``"matmul"``, ``"ista"``, ``"fista"``, ``"omp"`` or ``"matching_pursuit"``.
      n_latents, n_features: ``N`` and ``M``.
      n_iter: iterations (ISTA, FISTA, matching pursuit).  k: atoms (OMP).
      nonneg, restart: as passed to the solver.
    Returns:
      FLOPs per sample, an ``int``.

    Example::

        flops("fista", n_latents=16, n_features=8, n_iter=100)
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    if method == "matmul":
        return 2 * m * n
    if method in ("ista", "fista", "matching_pursuit"):
        if n_iter is None:
            raise ValueError(f"`n_iter` is required for method {method!r}")
        n_iter = positive_int("n_iter", n_iter)
        if method == "matching_pursuit":
            return n_iter * (2 * m * n + 2 * n + 2 * m + 1)
        accelerate = method == "fista"
        return _prox_gradient_flops(n, m, n_iter, accelerate=accelerate, restart=restart and accelerate, nonneg=nonneg)
    if method == "omp":
        if k is None:
            raise ValueError("`k` is required for method 'omp'")
        k = positive_int("k", k, maximum=n)
        correlations = 2 * n * n + n if n <= 2 * m else 4 * m * n + m
        return 2 * m * n + k * (2 * n + 7 * k * k + 2 * k) + (k - 1) * correlations
    raise ValueError(f"`method` must be one of 'matmul', 'ista', 'fista', 'omp', 'matching_pursuit'; got {method!r}")

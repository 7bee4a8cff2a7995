"""Analytic FLOPs per sample: one dispatcher over the solvers' own counts, and the encoders' counts.

One multiply-add counts as 2 FLOPs; elementwise ops, comparisons and square roots as 1.
``N`` = n_latents, ``M`` = n_features. Counts follow what our implementations execute.

Each solver's count lives beside it, with its formula in its docstring, and :func:`flops` only
dispatches to it: ``ista``/``fista`` -> :func:`jaxsparse.solvers.proximal.ista_flops` /
:func:`~jaxsparse.solvers.proximal.fista_flops`, ``omp`` -> :func:`jaxsparse.solvers.omp.omp_flops`,
``matching_pursuit`` -> :func:`jaxsparse.solvers.matching_pursuit.matching_pursuit_flops`, and
``matmul`` (one ``x D^T`` product) is ``2MN``. ``homotopy``'s cost depends on the path each sample
takes, so it has no closed form here: ``homotopy(..., return_info=True)`` reports it per sample
(:func:`jaxsparse.solvers.homotopy.homotopy_flops` per pass).

The encoder counts below still live in this module (the encoder modules are to take them over).

Encoders (paper 1's counts, which include decoding ``x_hat = z D``, ``2MN``, so that an encoder's
count is "signal in, reconstruction out"; ``h`` = hidden width, ``T`` = unrolled steps):

- ``sae``: ``2MN`` (encoder) ``+ N`` (ReLU) ``+ 2MN`` (decoder) ``= 4MN + N``.
- ``topk`` / ``jumprelu``: the SAE's ``4MN + N`` plus ``N`` for the top-k mask / threshold compare.
- ``mlp``: ``2Mh + h + 2hN + N + 2NM``.
- ``lista``: ``2MN`` for ``x W``, ``T`` thresholds ``2N``, ``T - 1`` recurrences ``2N^2 + N``, decoder ``2MN``.
- ``adam_codes`` (paper 1's ITO / sparse-coding inference, ``n_iter`` Adam steps on exp-codes):
  ``(MN + N) + n_iter * (4MN + 2M + 11N)``.

Training (``phase="training"``) returns ``per_sample_step * n_samples * n_steps`` with paper 1's
per-sample-step counts (``learn_decoder`` adds the decoder's normalisation, gradient and update):

- ``sae``: forward ``4MN + N`` (``+MN``); backward ``N + (2MN + N) + 2MN + 2(MN + N)`` (``+2MN``).
- ``mlp``: forward as inference (``+MN``); backward ``N + (2Nh + N) + h + (2Mh + h) + 2NM +
  2(Mh + h + hN + N)`` (``+2NM``).
- ``adam_codes`` (sparse coding, codes and dictionary): forward ``N + 2MN`` (``+3MN``), loss
  ``2M + N``, backward twice the forward, update ``N`` (``+MN``).
- ``alternating`` (``jaxsparse.models.dictionary_learning``; training only): per outer step
  (``n_steps``) and sample, ``n_iter`` warm-started non-negative FISTA iterations plus the statistics
  ``2N^2 + 2NM``; per outer step, one block-coordinate pass ``N (2NM + 6M)``.
- ``topk``, ``jumprelu``, ``lista`` (no count in the paper): three forward passes (forward and a
  backward of twice its cost) plus ``2 * n_params`` for the update, ``n_params`` the encoder's
  weights (``+2MN`` for the decoder when learned).

Per-dictionary set-up (the Gram matrix ``D D^T``, the spectral norm) is excluded: it is paid once
per dictionary and amortised over the batch. ``tests/test_solvers.py`` checks every solver's count
against XLA's own cost analysis of the compiled solver.

Training costs (paper 1): ``(forward + backward + update) * samples * steps`` — built from these.
"""

from __future__ import annotations

from typing import Literal

from jaxsparse._checks import positive_int
from jaxsparse.solvers.matching_pursuit import matching_pursuit_flops
from jaxsparse.solvers.omp import omp_flops
from jaxsparse.solvers.proximal import fista_flops, ista_flops

ENCODER_METHODS = ("sae", "topk", "jumprelu", "mlp", "lista", "adam_codes")
SOLVER_METHODS = ("matmul", "ista", "fista", "omp", "matching_pursuit")


def _encoder_flops(method: str, n: int, m: int, hidden: int | None, n_iter: int | None) -> int:
    """Inference FLOPs per sample of an encoder (decoding included), paper 1's convention."""
    if method == "sae":
        return 4 * m * n + n
    if method in ("topk", "jumprelu"):
        return 4 * m * n + 2 * n
    if method == "mlp":
        h = positive_int("hidden", _needed("hidden", hidden, method))
        return 2 * m * h + h + 2 * h * n + n + 2 * n * m
    t = positive_int("n_iter", _needed("n_iter", n_iter, method))
    if method == "lista":
        return 2 * m * n + t * 2 * n + (t - 1) * (2 * n * n + n) + 2 * m * n
    return (m * n + n) + t * (4 * m * n + 2 * m + 11 * n)  # adam_codes


def _encoder_params(method: str, n: int, m: int, hidden: int | None, n_iter: int | None) -> int:
    """Weights of an encoder (for the generic training count)."""
    if method == "lista":
        return m * n + n * n + n_iter * n
    return m * n + n + (n if method == "jumprelu" else 0)


def _training_flops_per_sample_step(method, n, m, hidden, n_iter, learn_decoder: bool) -> int:
    """Paper 1's per-sample, per-step training counts (module docstring)."""
    fwd = _encoder_flops(method, n, m, hidden, n_iter) if method != "adam_codes" else n + 2 * m * n
    if method == "sae":
        bwd = n + (2 * n * m + n) + 2 * n * m + 2 * (m * n + n)
        extra = m * n + 2 * n * m
    elif method == "mlp":
        h = hidden
        bwd = n + (2 * n * h + n) + h + (2 * m * h + h) + 2 * n * m + 2 * (m * h + h + h * n + n)
        extra = m * n + 2 * n * m
    elif method == "adam_codes":
        return 3 * fwd + (2 * m + n) + n + (3 * 3 * m * n + m * n if learn_decoder else 0)
    else:
        bwd = 2 * fwd + 2 * _encoder_params(method, n, m, hidden, n_iter)
        extra = 2 * m * n
    return fwd + bwd + (extra if learn_decoder else 0)


def flops(
    method: str,
    *,
    n_latents: int,
    n_features: int,
    n_iter: int | None = None,
    k: int | None = None,
    nonneg: bool = False,
    restart: bool = True,
    hidden: int | None = None,
    phase: Literal["inference", "training"] = "inference",
    n_samples: int | None = None,
    n_steps: int | None = None,
    learn_decoder: bool = True,
) -> int:
    """FLOPs of ``method``: per sample for inference, in total for training (module docstring).

    Args:
      method: a solver (``"matmul"``, ``"ista"``, ``"fista"``, ``"omp"``, ``"matching_pursuit"``),
        an encoder (``"sae"``, ``"topk"``, ``"jumprelu"``, ``"mlp"``, ``"lista"``, ``"adam_codes"``),
        or ``"alternating"`` dictionary learning (training only).
      n_latents, n_features: ``N`` and ``M``.
      n_iter: iterations (ISTA, FISTA, matching pursuit, Adam code steps) or unrolled steps (LISTA).
      k: atoms (OMP).  hidden: hidden width (MLP).
      nonneg, restart: as passed to the solver.
      phase: ``"inference"`` (per sample) or ``"training"`` (encoders only; total over
        ``n_samples * n_steps``, full-batch steps).
      learn_decoder: training also updates the (normalised) decoder.
    Returns:
      FLOPs, an ``int``.

    Example::

        flops("fista", n_latents=16, n_features=8, n_iter=100)
        flops("sae", n_latents=16, n_features=8)                                   # 4MN + N = 528
        flops("mlp", n_latents=16, n_features=8, hidden=32, phase="training", n_samples=1024, n_steps=40_000)
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    if phase not in ("inference", "training"):
        raise ValueError(f"`phase` must be 'inference' or 'training', got {phase!r}")
    if method == "alternating":
        if phase != "training":
            raise ValueError("method 'alternating' (dictionary learning) has only phase='training'")
        samples = positive_int("n_samples", _needed("n_samples", n_samples, method))
        steps = positive_int("n_steps", _needed("n_steps", n_steps, method))
        inner = fista_flops(n, m, n_iter=_needed("n_iter", n_iter, method), nonneg=True)
        return steps * (samples * (inner + 2 * n * n + 2 * n * m) + n * (2 * n * m + 6 * m))
    if method in ENCODER_METHODS:
        if phase == "inference":
            return _encoder_flops(method, n, m, hidden, n_iter)
        samples = positive_int("n_samples", _needed("n_samples", n_samples, method))
        steps = positive_int("n_steps", _needed("n_steps", n_steps, method))
        return _training_flops_per_sample_step(method, n, m, hidden, n_iter, learn_decoder) * samples * steps
    if phase != "inference":
        raise ValueError(f"`phase='training'` is defined for encoders {ENCODER_METHODS}, not {method!r}")
    if method == "matmul":
        return 2 * m * n
    if method == "ista":
        return ista_flops(n, m, n_iter=_needed("n_iter", n_iter, method), nonneg=nonneg)
    if method == "fista":
        return fista_flops(n, m, n_iter=_needed("n_iter", n_iter, method), nonneg=nonneg, restart=restart)
    if method == "matching_pursuit":
        return matching_pursuit_flops(n, m, n_iter=_needed("n_iter", n_iter, method))
    if method == "omp":
        return omp_flops(n, m, k=_needed("k", k, method))
    if method == "homotopy":
        raise ValueError(
            "`method` 'homotopy' has no closed-form count (it depends on each sample's path): use "
            "jaxsparse.solvers.homotopy(..., return_info=True), whose info.flops is per sample"
        )
    raise ValueError(f"`method` must be one of {SOLVER_METHODS + ENCODER_METHODS}; got {method!r}")


def _needed(arg: str, value, method: str):
    if value is None:
        raise ValueError(f"`{arg}` is required for method {method!r}")
    return value

"""Analytic FLOPs: one dispatcher, :func:`flops`, over the solvers' and encoders' own counts.

One multiply-add counts as 2 FLOPs; elementwise ops, comparisons and square roots as 1.
``N`` = n_latents, ``M`` = n_features. Counts follow what our implementations execute.

Each solver's count lives beside it, with its formula in its docstring, and :func:`flops` only
dispatches to it: ``ista``/``fista`` -> :func:`jaxsparse.solvers.proximal.ista_flops` /
:func:`~jaxsparse.solvers.proximal.fista_flops`, ``omp`` -> :func:`jaxsparse.solvers.omp.omp_flops`,
``matching_pursuit`` -> :func:`jaxsparse.solvers.matching_pursuit.matching_pursuit_flops`, and
``matmul`` (one ``x D^T`` product) is ``2MN``. ``homotopy``'s cost depends on the path each sample
takes, so it has no closed form here: ``homotopy(..., return_info=True)`` reports it per sample
(:func:`jaxsparse.solvers.homotopy.homotopy_flops` per pass).

Each encoder's count lives beside it in the same way: ``sae``/``topk``/``jumprelu``/``mlp``/``lista``
-> :func:`jaxsparse.models.encoders.encoder_flops` (inference, decoding included, as paper 1 counts)
and :func:`~jaxsparse.models.encoders.encoder_training_flops` (``phase="training"``; the SAE's in
:mod:`jaxsparse.models.sae`); ``adam_codes`` (paper 1's ITO, ``n_iter`` Adam steps) ->
:func:`jaxsparse.models.sparse_coding.fit_codes_flops` and, for training,
:func:`~jaxsparse.models.sparse_coding.sparse_coding_training_flops`; ``alternating`` dictionary
learning (training only; ``n_iter`` FISTA iterations per outer step, ``n_steps`` outer steps) ->
:func:`jaxsparse.models.dictionary_learning.dictionary_learning_flops`.

Per-dictionary set-up (the Gram matrix ``D D^T``, the spectral norm) is excluded: it is paid once
per dictionary and amortised over the batch. ``tests/test_solvers.py`` and
``tests/test_models_encoders.py`` check every solver's and encoder's count against XLA's own cost
analysis of the compiled program.

Training costs (paper 1): ``(forward + backward + update) * samples * steps``.
"""

from __future__ import annotations

from typing import Literal

from jaxsparse._checks import positive_int
from jaxsparse.models.dictionary_learning import dictionary_learning_flops
from jaxsparse.models.encoders import ENCODERS, encoder_flops, encoder_training_flops
from jaxsparse.models.sparse_coding import fit_codes_flops, sparse_coding_training_flops
from jaxsparse.solvers.matching_pursuit import matching_pursuit_flops
from jaxsparse.solvers.omp import omp_flops
from jaxsparse.solvers.proximal import fista_flops, ista_flops

ENCODER_METHODS = ENCODERS + ("adam_codes",)
SOLVER_METHODS = ("matmul", "ista", "fista", "omp", "matching_pursuit")


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
        inner = positive_int("n_iter", _needed("n_iter", n_iter, method))
        return dictionary_learning_flops(n, m, n_samples=samples, n_iter=steps, inner_iter=inner, nonneg=True)
    if method in ENCODER_METHODS:
        if phase == "inference":
            if method == "adam_codes":
                return fit_codes_flops(n, m, n_steps=positive_int("n_iter", _needed("n_iter", n_iter, method)))
            return encoder_flops(method, n, m, hidden=hidden, n_iter=n_iter)
        samples = positive_int("n_samples", _needed("n_samples", n_samples, method))
        steps = positive_int("n_steps", _needed("n_steps", n_steps, method))
        if method == "adam_codes":
            return sparse_coding_training_flops(n, m, n_samples=samples, n_steps=steps, learn_decoder=learn_decoder)
        return encoder_training_flops(method, n, m, hidden=hidden, n_iter=n_iter, n_samples=samples, n_steps=steps,
                                      learn_decoder=learn_decoder)
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

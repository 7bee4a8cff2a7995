"""Sparse inference ``x -> z``: ``solver(dictionary, x, *, <hyperparameters>) -> z``.

Dictionaries are ``[n_latents, n_features]`` with unit-norm rows; ``x ≈ z @ dictionary``.
Each solver's FLOPs count per sample sits beside it (``<solver>_flops``; homotopy reports its own
per sample with ``return_info=True``); ``jaxsparse.eval.flops(method, ...)`` dispatches to them.
``over_devices(solver)`` splits a solver's batch over devices (on CPU: one per core, see
:mod:`jaxsparse.solvers.devices`); ``over_threads(solver)`` runs blocks of it side by side from host threads on one CPU device.
"""

from jaxsparse.solvers.devices import over_devices, over_threads
from jaxsparse.solvers.homotopy import HomotopyInfo, homotopy, homotopy_flops
from jaxsparse.solvers.matching_pursuit import matching_pursuit, matching_pursuit_flops
from jaxsparse.solvers.omp import omp, omp_flops
from jaxsparse.solvers.prox import kth_largest, soft_threshold, top_k
from jaxsparse.solvers.proximal import (
    fista, fista_flops, ista, ista_flops, lasso_objective, lipschitz_constant, proximal_gradient,
    proximal_gradient_flops,
)

__all__ = [
    "HomotopyInfo", "fista", "fista_flops", "homotopy", "homotopy_flops", "ista", "ista_flops",
    "lasso_objective", "lipschitz_constant", "matching_pursuit", "matching_pursuit_flops", "omp", "omp_flops", "over_devices", "over_threads",
    "proximal_gradient", "proximal_gradient_flops", "soft_threshold", "top_k", "kth_largest",
]

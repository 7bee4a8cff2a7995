"""Sparse inference ``x -> z``: ``solver(dictionary, x, *, <hyperparameters>) -> z``.

Dictionaries are ``[n_latents, n_features]`` with unit-norm rows; ``x ≈ z @ dictionary``.
"""

from jaxsparse.solvers.homotopy import homotopy
from jaxsparse.solvers.matching_pursuit import matching_pursuit
from jaxsparse.solvers.omp import omp
from jaxsparse.solvers.prox import soft_threshold, top_k
from jaxsparse.solvers.proximal import fista, ista, lasso_objective, lipschitz_constant, proximal_gradient

__all__ = [
    "fista", "homotopy", "ista", "lasso_objective", "lipschitz_constant", "matching_pursuit", "omp",
    "proximal_gradient", "soft_threshold", "top_k",
]

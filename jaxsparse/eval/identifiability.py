"""Linear identifiability: how well an affine map of the learned features predicts the true latents.

Paper: Reizinger et al. (ICLR 2025), "Cross-entropy is all you need to invert the data generating
process" — fit a linear regression from learned to true latents on half of fresh samples, score
R² on the other half, and check orthogonality of the map by its singular values (following
Zimmermann et al. 2021, "Contrastive learning inverts the data generating process").
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.eval._arrays import host_array, same_n_samples


def linear_r2(z_true: Any, features: Any, test_fraction: float = 0.5, *, seed: int = 0) -> dict[str, Any]:
    """Held-out R² of an ordinary-least-squares map (with intercept) from ``features`` to ``z_true``.

    A permutation of the samples drawn from ``np.random.default_rng(seed)`` puts its first
    ``n_test = ceil(test_fraction * n_samples)`` samples in the test part and the rest in the
    training part. On the training part (``X = features``, ``Y = z_true``, bars are training means)::

        W = argmin_W ||(X - X̄) W - (Y - Ȳ)||_F²   (minimum-norm solution if rank-deficient)
        b = Ȳ - X̄ W

    and on the test part, with ``Ŷ = X W + b`` and ``Ȳ_test`` the test mean of each latent::

        R²_i = 1 - sum_n (Y[n,i] - Ŷ[n,i])² / sum_n (Y[n,i] - Ȳ_test[i])²
        R²   = (1/n_true) sum_i R²_i

    This is scikit-learn's ``LinearRegression`` then ``r2_score(..., multioutput="uniform_average")``;
    as there, a latent that is constant on the test part scores 1 if predicted exactly, else 0.

    Args:
      z_true: ``[n_samples, n_true]`` ground-truth latents (float, int or bool).
      features: ``[n_samples, n_features]`` learned representation.
      test_fraction: share of the samples held out for scoring, in (0, 1).
      seed: seed (int >= 0) of the train/test permutation.
    Returns:
      ``{"r2": float, "r2_per_latent": [n_true], "pearson_per_latent": [n_true], "weights":
      [n_features, n_true], "bias": [n_true], "singular_values": [min(n_features, n_true)]}``;
      ``pearson_per_latent`` is the test-part Pearson correlation of ``Ŷ[:, i]`` with ``Y[:, i]``
      (0 where either is constant) with ``z_true ≈ features @ weights + bias``;
      singular values (descending) of ``weights`` all equal means the map is a scaled orthogonal one.

    Example::

      z = np.random.default_rng(0).normal(size=(1000, 5))
      linear_r2(z, z @ np.random.default_rng(1).normal(size=(5, 5)))["r2"]  # 1.0
    """
    z_true = host_array("z_true", z_true, ndim=2, allow_int=True)
    features = host_array("features", features, ndim=2)
    same_n_samples("z_true", z_true, "features", features)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, numbers.Real):
        raise TypeError(f"`test_fraction` must be a real number in (0, 1), got {test_fraction!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"`test_fraction` must be in the open interval (0, 1), got {test_fraction!r}")
    seed = positive_int("seed", seed, minimum=0)
    n_samples = z_true.shape[0]
    n_test = int(np.ceil(test_fraction * n_samples))
    if n_test < 2 or n_samples - n_test < 2:
        raise ValueError(
            f"`test_fraction`={test_fraction} splits {n_samples} samples into {n_samples - n_test} "
            f"training and {n_test} test samples; each part needs at least 2"
        )
    order = np.random.default_rng(seed).permutation(n_samples)
    test, train = order[:n_test], order[n_test:]

    x_mean, y_mean = features[train].mean(axis=0), z_true[train].mean(axis=0)
    weights = np.linalg.lstsq(features[train] - x_mean, z_true[train] - y_mean, rcond=None)[0]
    bias = y_mean - x_mean @ weights

    y_test = z_true[test]
    y_hat = features[test] @ weights + bias
    ss_res = np.sum((y_test - y_hat) ** 2, axis=0)
    ss_tot = np.sum((y_test - y_test.mean(axis=0)) ** 2, axis=0)
    constant = ss_tot == 0
    r2_per_latent = np.where(constant, (ss_res == 0).astype(np.float64), 1.0 - ss_res / np.where(constant, 1.0, ss_tot))
    return {
        "r2": float(r2_per_latent.mean()),
        "r2_per_latent": r2_per_latent,
        "pearson_per_latent": _pearson(y_test, y_hat),
        "weights": weights,
        "bias": bias,
        "singular_values": np.linalg.svd(weights, compute_uv=False),
    }


def _pearson(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    """Column-wise Pearson correlation of ``y`` and ``y_hat`` ``[n, k]``; 0 where a column is constant."""
    a, b = y - y.mean(axis=0), y_hat - y_hat.mean(axis=0)
    den = np.sqrt(np.sum(a * a, axis=0) * np.sum(b * b, axis=0))
    return np.where(den > 0, np.sum(a * b, axis=0) / np.where(den > 0, den, 1.0), 0.0)

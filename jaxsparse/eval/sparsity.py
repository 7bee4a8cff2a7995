"""Sparsity and reconstruction metrics of codes: L0, support F1, FVU, dead latents.

Codes are ``z: [..., n_latents]`` (every leading axis is a sample axis); an entry is *active* when
``|z| > threshold``. Signals are ``x: [..., n_features]``. Every formula is stated exactly in its
docstring and is a mean over samples, so none of them scales with the batch size (SAE libraries
have changed their FVU/explained-variance formulas several times and once let them scale with
the evaluation batch size).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxsparse.eval._arrays import host_array, same_shape, threshold_value


def l0(z: Any, *, threshold: float = 0.0) -> float:
    """Mean number of active latents per sample.

    ``L0 = (1/n_samples) sum_n #{i : |z[n, i]| > threshold}``, ``n`` running over all leading axes.

    Args:
      z: ``[..., n_latents]`` codes (float, int or bool); a 1-D array is one sample.
      threshold: activity threshold, a finite number >= 0.
    Returns:
      The mean L0 as a float, in ``[0, n_latents]``.

    Example::

      l0(np.array([[0.0, 2.0, -1.0], [0.0, 0.0, 3.0]]))  # 1.5
    """
    threshold = threshold_value(threshold)
    z = host_array("z", z, allow_int=True)
    return float(np.mean(np.sum(np.abs(z) > threshold, axis=-1)))


def dead_fraction(z: Any, *, threshold: float = 0.0) -> float:
    """Fraction of latents never active in the given batch.

    ``dead = (1/n_latents) #{i : |z[n, i]| <= threshold for every sample n}``. Whether a latent
    counts as dead depends on the batch: score it on a large, fixed evaluation set.

    Args:
      z: ``[..., n_latents]`` codes (float, int or bool).
      threshold: activity threshold, a finite number >= 0.
    Returns:
      The dead fraction as a float in ``[0, 1]``.

    Example::

      dead_fraction(np.array([[0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]))  # 1/3
    """
    threshold = threshold_value(threshold)
    z = host_array("z", z, allow_int=True)
    active = np.abs(z.reshape(-1, z.shape[-1])) > threshold
    return float(np.mean(~np.any(active, axis=0)))


def support_f1(z_true: Any, z_hat: Any, *, threshold: float = 0.0) -> dict[str, float]:
    """Precision, recall and F1 of the estimated support, micro-averaged over all entries.

    The true support is ``z_true != 0`` (ground truth is exactly sparse); the estimated support is
    ``|z_hat| > threshold``. Counting over every entry of every sample::

        TP = #{true and estimated}, FP = #{estimated, not true}, FN = #{true, not estimated}
        precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 TP / (2 TP + FP + FN)

    with ``0/0 := 1`` (nothing to find and nothing claimed is a perfect score), as scikit-learn's
    ``f1_score(..., average="micro", zero_division=1.0)`` on the flattened supports.

    The latents must already be aligned: for learned codes, permute the columns first with the
    matching from ``mcc``, e.g. ``z_hat[:, mcc(z_true, z_hat)["matching"]]``.

    Args:
      z_true: ``[..., n_latents]`` ground-truth codes (float, int or bool).
      z_hat: estimated codes of the same shape, columns aligned with ``z_true``.
      threshold: activity threshold for ``z_hat``, a finite number >= 0.
    Returns:
      ``{"f1": float, "precision": float, "recall": float}``.

    Example::

      support_f1(np.array([[1.0, 0.0, 2.0]]), np.array([[0.5, 0.1, 0.0]]))  # all three 0.5

    Used to score support recovery of sparse inference (e.g. OMP vs an SAE, O'Neill et al. 2025).
    """
    threshold = threshold_value(threshold)
    z_true = host_array("z_true", z_true, allow_int=True)
    z_hat = host_array("z_hat", z_hat, allow_int=True)
    same_shape("z_true", z_true, "z_hat", z_hat)
    true, estimated = z_true != 0, np.abs(z_hat) > threshold
    tp = int(np.sum(true & estimated))
    fp = int(np.sum(~true & estimated))
    fn = int(np.sum(true & ~estimated))
    return {"f1": _ratio(2 * tp, 2 * tp + fp + fn), "precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn)}


def fvu(x: Any, x_hat: Any) -> float:
    """Fraction of variance unexplained by a reconstruction, over the whole batch.

    With samples ``n`` running over all leading axes and ``x̄`` the per-feature mean over samples::

        FVU = sum_n ||x[n] - x_hat[n]||² / sum_n ||x[n] - x̄||²

    Both sums run over the same samples, so FVU is a ratio of two means and does not change when
    the batch is duplicated. ``1 - FVU`` is the explained variance. (Not the mean of per-sample or
    per-feature ratios, and not normalised by the total second moment ``sum_n ||x[n]||²``.)

    Args:
      x: ``[..., n_features]`` signals, at least two distinct samples.
      x_hat: ``[..., n_features]`` reconstructions, the shape of ``x``.
    Returns:
      FVU as a float >= 0 (0 is perfect; 1 is no better than predicting the mean).

    Example::

      fvu(np.array([[0.0, 0.0], [2.0, 2.0]]), np.array([[0.0, 1.0], [2.0, 2.0]]))  # 1/4

    Used for SAEs, e.g. O'Neill et al. (2025); Gao et al. (2024) "Scaling and evaluating sparse
    autoencoders" report the same normalised MSE.
    """
    x = host_array("x", x, min_ndim=2)
    x_hat = host_array("x_hat", x_hat, min_ndim=2)
    same_shape("x", x, "x_hat", x_hat)
    x, x_hat = x.reshape(-1, x.shape[-1]), x_hat.reshape(-1, x.shape[-1])
    total = np.sum((x - x.mean(axis=0)) ** 2)
    if total == 0:
        raise ValueError("`x` must vary across samples: all its samples are equal, so FVU is undefined")
    return float(np.sum((x - x_hat) ** 2) / total)


def _ratio(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` with ``0/0 := 1``."""
    return 1.0 if denominator == 0 else numerator / denominator

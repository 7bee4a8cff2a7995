"""Mean correlation coefficient (MCC): one-to-one matching of true and learned latents or atoms.

Both metrics build a similarity matrix ``S[i, j] >= 0`` between true item ``i`` and learned item
``j``, pick the injective map ``pi`` from true to learned items that maximises ``sum_i S[i, pi(i)]``
(the linear assignment problem, solved exactly by ``scipy.optimize.linear_sum_assignment``), and
report the mean matched similarity over the true items. Extra learned items (``n_learned >
n_true``, e.g. an overcomplete SAE) stay unmatched and cost nothing. Fewer learned than true items
is refused: pad the learned side with zero columns/rows (similarity 0) to score missing items as 0.

Papers: latent MCC with Pearson correlation and dictionary MCC with cosine similarity as in
O'Neill, Gumran & Klindt (ICML 2025); MCC with Spearman correlation as in Klindt et al. (ICLR 2021,
SlowVAE); the metric goes back to Hyvärinen & Morioka (2016) and Khemakhem et al. (2020, iVAE).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.optimize

from jaxsparse.eval._arrays import host_array, same_n_samples

CorrelationMethod = Literal["pearson", "spearman"]


def mcc(z_true: Any, z_hat: Any, method: CorrelationMethod = "pearson") -> dict[str, Any]:
    """Mean correlation coefficient between true and learned latents, matched one-to-one.

    With ``A = z_true`` and ``B = z_hat`` (for ``method="spearman"``, each column replaced by its
    ranks, ties averaged, as ``scipy.stats.rankdata``)::

        rho[i, j] = sum_n (A[n,i] - mean(A[:,i])) (B[n,j] - mean(B[:,j]))
                    / sqrt(sum_n (A[n,i] - mean(A[:,i]))^2 * sum_n (B[n,j] - mean(B[:,j]))^2)
        MCC       = max over injective pi of (1/n_true) sum_i |rho[i, pi(i)]|

    A constant column (a dead latent, zero variance) has ``rho = 0`` with everything, not NaN.

    Args:
      z_true: ``[n_samples, n_true]`` ground-truth latents (float, int or bool).
      z_hat: ``[n_samples, n_learned]`` learned latents, ``n_learned >= n_true``.
      method: ``"pearson"`` (O'Neill et al. 2025) or ``"spearman"`` (Klindt et al. 2021, SlowVAE).
    Returns:
      ``{"mcc": float, "matching": int array [n_true] (the learned latent matched to each true
      latent), "correlations": float array [n_true] (the matched |rho|)}``.

    Example::

      z = np.random.default_rng(0).normal(size=(100, 3))
      mcc(z, -2.0 * z[:, [2, 0, 1]])  # {"mcc": 1.0, "matching": [1, 2, 0], ...}
    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"`method` must be 'pearson' or 'spearman', got {method!r}")
    z_true = host_array("z_true", z_true, ndim=2, allow_int=True)
    z_hat = host_array("z_hat", z_hat, ndim=2, allow_int=True)
    same_n_samples("z_true", z_true, "z_hat", z_hat)
    _check_at_least("z_hat", z_hat.shape[1], "latents (columns)", "z_true", z_true.shape[1])
    if z_true.shape[0] < 2:
        raise ValueError(f"`z_true` must have at least 2 samples to correlate, got shape {z_true.shape}")
    if method == "spearman":
        import scipy.stats  # here: scipy.stats costs ~0.5 s at import

        z_true = scipy.stats.rankdata(z_true, axis=0)
        z_hat = scipy.stats.rankdata(z_hat, axis=0)
    corr = _standardised(z_true).T @ _standardised(z_hat)
    return _match(np.abs(corr))


def dictionary_mcc(d_true: Any, d_hat: Any) -> dict[str, Any]:
    """Mean |cosine similarity| between true and learned dictionary atoms, matched one-to-one.

    With atoms as rows (``x ≈ z @ dictionary``)::

        cos[i, j] = <d_true[i], d_hat[j]> / (||d_true[i]|| ||d_hat[j]||)   (0 if either atom is 0)
        MCC       = max over injective pi of (1/n_true) sum_i |cos[i, pi(i)]|

    The absolute value makes a sign-flipped atom count as recovered (its code flips sign too).

    Args:
      d_true: ``[n_true, n_features]`` ground-truth dictionary.
      d_hat: ``[n_learned, n_features]`` learned dictionary, ``n_learned >= n_true``.
    Returns:
      ``{"mcc": float, "matching": int array [n_true] (the learned atom matched to each true
      atom), "correlations": float array [n_true] (the matched |cos|)}`` — the keys of ``mcc``.

    Example::

      d = np.random.default_rng(0).normal(size=(16, 8))
      dictionary_mcc(d, -d[::-1])["mcc"]  # 1.0

    Paper: dictionary MCC of O'Neill, Gumran & Klindt (ICML 2025).
    """
    d_true = host_array("d_true", d_true, ndim=2)
    d_hat = host_array("d_hat", d_hat, ndim=2)
    if d_hat.shape[1] != d_true.shape[1]:
        raise ValueError(
            f"`d_hat` must have n_features={d_true.shape[1]} columns like `d_true` {d_true.shape}, got {d_hat.shape}"
        )
    _check_at_least("d_hat", d_hat.shape[0], "atoms (rows)", "d_true", d_true.shape[0])
    unit_true = _unit_columns(d_true.T, np.all(d_true == 0, axis=1))
    unit_hat = _unit_columns(d_hat.T, np.all(d_hat == 0, axis=1))
    return _match(np.abs(unit_true.T @ unit_hat))


def _check_at_least(name_hat: str, n_hat: int, what: str, name_true: str, n_true: int) -> None:
    if n_hat < n_true:
        raise ValueError(
            f"`{name_hat}` must have at least as many {what} as `{name_true}` (n_learned >= n_true), "
            f"got {n_hat} < {n_true}; pad `{name_hat}` with zeros to score the missing ones as 0"
        )


def _unit_columns(v: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """``v`` with each column scaled to unit Euclidean norm, and the columns flagged in ``zero`` set to 0."""
    norms = np.where(zero, 1.0, np.linalg.norm(v, axis=0))
    return np.where(zero, 0.0, v / norms)


def _standardised(z: np.ndarray) -> np.ndarray:
    """Centred, unit-norm columns of ``z [n_samples, n]``, so that ``A.T @ B`` is Pearson's rho.

    Constant columns become 0. Constancy is tested exactly (all entries equal), since centring a
    constant column in floating point can leave round-off whose "correlation" would be noise.
    """
    return _unit_columns(z - z.mean(axis=0), np.all(z == z[:1], axis=0))


_ROUND_OFF = 1e-9  # |rho| and |cos| of unit float64 columns exceed 1 by a few ulps at most


def _match(similarity: np.ndarray) -> dict[str, Any]:
    """Hungarian matching of rows (true) to columns (learned) maximising the total similarity.

    ``similarity`` holds absolute correlations or cosines, so ``0 <= S <= 1`` up to round-off: values
    above 1 by round-off are set to 1; anything larger is a bug upstream and raises, not clipped.
    """
    excess = float(np.max(similarity)) - 1.0
    if excess > _ROUND_OFF or not np.all(similarity >= 0):
        raise RuntimeError(
            f"similarity must lie in [0, 1] (absolute correlations/cosines); got max {1.0 + excess!r}, "
            f"min {float(np.min(similarity))!r}: a normalisation bug, not round-off"
        )
    similarity = np.minimum(similarity, 1.0)
    rows, cols = scipy.optimize.linear_sum_assignment(similarity, maximize=True)
    matched = similarity[rows, cols]  # rows come back as 0..n_true-1, in order
    return {"mcc": float(matched.mean()), "matching": cols.astype(np.int64), "correlations": matched}

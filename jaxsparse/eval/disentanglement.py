"""Disentanglement metrics of disentanglement_lib: MIG, modularity, explicitness, DCI, SAP, BetaVAE, FactorVAE.

Each metric follows the definition in disentanglement_lib (Locatello et al., ICML 2019,
google-research/disentanglement_lib, ``evaluation/metrics/``) and the settings of its published
study (``config/unsupervised_study_v1/metric_configs``), including its known quirks, which each
docstring names. Codes are ``[n_samples, n_codes]`` (posterior means), factors are
``[n_samples, n_factors]`` of integer-valued ground-truth factors; everything runs on host in
NumPy/scikit-learn.

The first five take arrays. disentanglement_lib's study draws ``num_train=10000`` training and
``num_test=5000`` test samples for DCI, SAP and modularity/explicitness and ``10000`` for MIG; the
SlowVAE evaluation (Klindt et al. 2021, bethgelab/slow_disentanglement ``metric_configs``) used the
same except 100000 samples for MIG and for modularity/explicitness' training set. Pass arrays of
those sizes to reproduce their numbers. The last two (BetaVAE, FactorVAE) draw their own
data through three callables::

    sample_factors(rng: np.random.Generator, n: int) -> int array [n, n_factors]
        n independent draws of the ground-truth factors (uniform over the factor grid for dSprites).
    render(factors: int array [n, n_factors]) -> observations [n, ...]
        the observation of each factor combination (e.g. 64x64 sprites).
    encode(observations [n, ...]) -> codes [n, n_codes]
        the representation, i.e. the posterior means of a VAE.

``render`` and ``encode`` are always called on at most ``ENCODE_BATCH`` rows at a time, so memory
stays bounded whatever ``num_train``.

Scikit-learn models: DCI uses ``GradientBoostingClassifier()`` (its defaults); SAP
``LinearSVC(C=0.01, class_weight="balanced")``; explicitness and BetaVAE ``LogisticRegression()``
with its defaults (lbfgs, multinomial, C=1, ``max_iter=100``), the same model as in scikit-learn
0.23.1, which the SlowVAE evaluation pinned. lbfgs often stops at 100 iterations before its
tolerance on 10k samples; the published numbers come from exactly that truncated fit, so
``_fit_logistic`` keeps it and silences that one ``ConvergenceWarning`` (scikit-learn 0.20/0.21, used
for disentanglement_lib's own 2019 study, meant liblinear one-vs-rest instead: explicitness differs
by a few hundredths between the two, BetaVAE accuracy hardly).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.eval._arrays import host_array, same_n_samples

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

# scikit-learn and scipy.stats are imported inside the functions that use them: at module level they
# added about 1.4 s to every `import jaxsparse` (and to each `jaxsparse run` worker process).

ENCODE_BATCH = 2048
"""Most observations passed to one call of ``render``/``encode`` by the BetaVAE and FactorVAE scores."""

PRUNE_THRESHOLD = 0.05
"""FactorVAE drops code dimensions whose standard deviation over the data is below this
(disentanglement_lib's ``prune_dims.threshold`` in its published configs)."""


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _codes(name: str, codes: Any) -> np.ndarray:
    return host_array(name, codes, ndim=2, allow_int=True)


def _factors(name: str, factors: Any, *, integer: bool = True) -> np.ndarray:
    factors = host_array(name, factors, ndim=2, allow_int=True)
    if not integer:
        return factors
    if not np.all(factors == np.round(factors)):
        raise ValueError(f"`{name}` must hold integer-valued (discrete) factors, got non-integer values")
    return factors.astype(np.int64)


def _not_constant(name: str, factors: np.ndarray, why: str) -> None:
    constant = np.flatnonzero(np.all(factors == factors[:1], axis=0))
    if constant.size:
        raise ValueError(f"`{name}` column(s) {constant.tolist()} take a single value: {why}")


def _at_least(name: str, count: int, what: str, minimum: int, why: str) -> None:
    if count < minimum:
        raise ValueError(f"`{name}` must have at least {minimum} {what}, got {count}: {why}")


def _train_test(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, *,
                integer: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    codes_train = _codes("codes_train", codes_train)
    factors_train = _factors("factors_train", factors_train, integer=integer)
    codes_test = _codes("codes_test", codes_test)
    factors_test = _factors("factors_test", factors_test, integer=integer)
    same_n_samples("codes_train", codes_train, "factors_train", factors_train)
    same_n_samples("codes_test", codes_test, "factors_test", factors_test)
    if codes_test.shape[1] != codes_train.shape[1]:
        raise ValueError(f"`codes_test` must have as many codes (columns) as `codes_train` ({codes_train.shape[1]}), "
                         f"got shape {codes_test.shape}")
    if factors_test.shape[1] != factors_train.shape[1]:
        raise ValueError(f"`factors_test` must have as many factors (columns) as `factors_train` "
                         f"({factors_train.shape[1]}), got shape {factors_test.shape}")
    return codes_train, factors_train, codes_test, factors_test


# --------------------------------------------------------------------------------------------
# Discretisation and mutual information (disentanglement_lib's utils.py)
# --------------------------------------------------------------------------------------------


def histogram_discretize(codes: Any, *, n_bins: int = 20) -> np.ndarray:
    """Discretise each code dimension into ``n_bins`` equal-width bins over its own range.

    For each column ``c``, with ``e_0 < ... < e_{n_bins}`` the edges of ``np.histogram(c, n_bins)``
    (``n_bins`` equal bins from ``min(c)`` to ``max(c)``), the label is
    ``np.digitize(c, [e_0, ..., e_{n_bins - 1}])`` in ``1..n_bins``: the last edge is dropped, so
    the maximum falls in bin ``n_bins`` (disentanglement_lib's ``_histogram_discretize``). A
    constant column gets a single label. The edges depend on the extremes, so one outlier squeezes
    the rest of a column into few bins (a known weakness of MIG/modularity kept as published).

    Args:
      codes: ``[n_samples, n_codes]`` real codes.
      n_bins: number of bins per dimension, >= 2 (disentanglement_lib: 20).
    Returns:
      ``int64 [n_samples, n_codes]`` bin labels in ``1..n_bins``.
    """
    codes = _codes("codes", codes)
    n_bins = positive_int("n_bins", n_bins, minimum=2)
    out = np.empty(codes.shape, dtype=np.int64)
    for i in range(codes.shape[1]):
        edges = np.histogram(codes[:, i], n_bins)[1]
        out[:, i] = np.digitize(codes[:, i], edges[:-1])
    return out


def discrete_mutual_info(labels: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``m[i, j] = I(labels[:, i]; factors[:, j])`` in nats, from empirical joint frequencies.

    ``I(a; b) = sum_{u,v} p(u,v) log(p(u,v) / (p(u) p(v)))`` as ``sklearn.metrics.mutual_info_score``
    computes it (natural log), the estimator disentanglement_lib uses (no bias correction).
    """
    import sklearn.metrics
    m = np.empty((labels.shape[1], factors.shape[1]))
    for i in range(labels.shape[1]):
        for j in range(factors.shape[1]):
            m[i, j] = sklearn.metrics.mutual_info_score(factors[:, j], labels[:, i])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """``h[j] = H(factors[:, j]) = I(f_j; f_j)`` in nats (empirical, natural log)."""
    import sklearn.metrics
    return np.array([sklearn.metrics.mutual_info_score(f, f) for f in factors.T])


def _discrete_mi(codes: Any, factors: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    codes = _codes("codes", codes)
    factors = _factors("factors", factors)
    same_n_samples("codes", codes, "factors", factors)
    n_bins = positive_int("n_bins", n_bins, minimum=2)
    return discrete_mutual_info(histogram_discretize(codes, n_bins=n_bins), factors), factors


# --------------------------------------------------------------------------------------------
# Array metrics
# --------------------------------------------------------------------------------------------


def mig(codes: Any, factors: Any, *, n_bins: int = 20) -> float:
    """Mutual information gap: per factor, the normalised gap between its two most informative codes.

    With ``c_i`` the histogram-discretised code ``i`` (``histogram_discretize``, ``n_bins`` bins),
    ``f_j`` factor ``j``, empirical mutual information ``I`` and entropy ``H`` in nats, and
    ``i*_j = argmax_i I(c_i; f_j)``::

        MIG = (1/n_factors) sum_j [ I(c_{i*_j}; f_j) - max_{i != i*_j} I(c_i; f_j) ] / H(f_j)

    Kept from disentanglement_lib (``mig.py``, "discrete_mig"): codes are discretised by
    ``np.histogram`` edges per dimension (not the paper's estimator of I from the encoder's
    posterior), ``I`` and ``H`` are plug-in estimates from ``sklearn.metrics.mutual_info_score``
    (natural log; no bias correction, so random codes score slightly above 0), and factors with more
    than ``n_bins`` values cannot be resolved fully. A constant factor (``H = 0``) is refused here
    (disentanglement_lib divides by zero).

    Args:
      codes: ``[n_samples, n_codes]`` codes (posterior means), ``n_codes >= 2``;
        disentanglement_lib uses 10000 samples.
      factors: ``[n_samples, n_factors]`` integer-valued factors, none constant.
      n_bins: histogram bins per code dimension, >= 2 (disentanglement_lib: 20).
    Returns:
      MIG in [0, 1] as a float.

    Example::

      f = np.random.default_rng(0).integers(0, 5, size=(1000, 3))
      mig(2.0 * f[:, [2, 0, 1]] + 1.0, f)  # 1.0

    Paper: Chen, Li, Grosse & Duvenaud (NeurIPS 2018), "Isolating sources of disentanglement in
    VAEs"; implementation as in disentanglement_lib (Locatello et al., ICML 2019).
    """
    m, factors = _discrete_mi(codes, factors, n_bins)
    _at_least("codes", m.shape[0], "code dimensions (columns)", 2, "MIG takes the gap between the two best codes")
    _not_constant("factors", factors, "its entropy is 0 and MIG divides by it")
    top = np.sort(m, axis=0)[::-1]
    return float(np.mean((top[0] - top[1]) / discrete_entropy(factors)))


def modularity(codes: Any, factors: Any, *, n_bins: int = 20) -> float:
    """Modularity: how much each code's mutual information concentrates on a single factor.

    With ``m[i, j] = I(c_i; f_j)`` as in ``mig`` (histogram-discretised codes, nats) and
    ``theta_i = max_j m[i, j]``::

        delta_i = (sum_j m[i, j]^2 - theta_i^2) / (theta_i^2 (n_factors - 1))
        score_i = 1 - delta_i            (score_i = 0 when theta_i = 0)
        modularity = (1/n_codes) sum_i score_i

    i.e. the squared deviation of the MI row from its ideal template (``theta_i`` at the best factor,
    0 elsewhere), normalised by ``theta_i^2 (n_factors - 1)``. A code that depends on one factor
    only scores 1; one with equal MI about all factors scores 0.

    Kept from disentanglement_lib (``modularity_explicitness.modularity``): the ``(n_factors - 1)``
    normalisation (so ``n_factors >= 2`` is required); codes with zero MI about every factor
    (dead/collapsed dimensions, or constant ones, which get a single histogram bin) score 0 and still
    count in the mean; MI from histogram discretisation with ``n_bins`` bins and plug-in estimates,
    so independent noise codes still score well above 0 (their small, noisy MI rows are rarely
    balanced across factors). Constant factors are allowed (their MI is 0).

    Args:
      codes: ``[n_samples, n_codes]`` codes (disentanglement_lib: 10000 training samples).
      factors: ``[n_samples, n_factors]`` integer-valued factors, ``n_factors >= 2``.
      n_bins: histogram bins per code dimension, >= 2 (disentanglement_lib: 20).
    Returns:
      modularity in [0, 1] as a float.

    Example::

      f = np.random.default_rng(0).integers(0, 5, size=(1000, 3))
      modularity(f[:, [0, 0, 1, 2]], f)  # 1.0

    Paper: Ridgeway & Mozer (NeurIPS 2018), "Learning deep disentangled embeddings with the
    F-statistic loss"; implementation as in disentanglement_lib.
    """
    m, _ = _discrete_mi(codes, factors, n_bins)
    _at_least("factors", m.shape[1], "factors (columns)", 2, "modularity normalises by (n_factors - 1)")
    squared = m**2
    best = squared.max(axis=1)
    alive = best > 0
    delta = np.divide(squared.sum(axis=1) - best, best * (m.shape[1] - 1), out=np.zeros_like(best), where=alive)
    return float(np.mean(np.where(alive, 1.0 - delta, 0.0)))


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """``LogisticRegression()`` (defaults) fitted as published: lbfgs stopped at 100 iterations if need be.

    Only the ``ConvergenceWarning`` of that documented truncation is silenced (module docstring).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression().fit(x, y)


def explicitness(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any) -> float:
    """Explicitness: test ROC-AUC of a logistic regression from all codes to each factor's value.

    Codes are standardised with the training mean and standard deviation (ddof 0). For each factor
    ``j`` a multinomial logistic regression (``LogisticRegression()``: C=1, lbfgs, at most 100
    iterations; module docstring) is fitted on the training codes; on the test codes its class
    probabilities (softmax) score::

        AUC_j = (1/|K_j|) sum_{k in K_j} ROC-AUC(1[f_j = k], p(f_j = k | c))
        explicitness = (1/n_factors) sum_j AUC_j

    with ``K_j`` the training classes that occur in the test set (a class's one-vs-rest AUC needs
    both positives and negatives). This is disentanglement_lib's macro ROC-AUC on a multi-label
    binarisation of the test labels ("explicitness_score_test").

    Kept from disentanglement_lib: the AUC (not accuracy), the scaler fitted on training codes, the
    classifier's defaults (and its truncated fit). Changed where it errs:
    disentanglement_lib binarises test labels by the classes present in the *test* set, which fails,
    or silently misaligns columns, whenever train and test classes differ; here columns are the
    training classes and test samples of unseen classes count as negatives for every class. A
    constant code column (zero training spread) is left unscaled instead of divided by zero.

    Cost (10-d codes, factors of 3, 6, 40, 32, 32 values): 15 s of CPU time for 10000/5000 samples,
    62 s for SlowVAE's 100000/5000 (lbfgs on 100+ classes in all).

    Args:
      codes_train: ``[n_train, n_codes]`` codes (disentanglement_lib: 10000 samples; SlowVAE 100000).
      factors_train: ``[n_train, n_factors]`` integer-valued factors, none constant.
      codes_test: ``[n_test, n_codes]`` codes (disentanglement_lib: 5000 samples).
      factors_test: ``[n_test, n_factors]`` integer-valued factors.
    Returns:
      mean test ROC-AUC in [0, 1] as a float (0.5 is chance).

    Example::

      f = np.random.default_rng(0).integers(0, 3, size=(2000, 2))
      explicitness(f[:1000], f[:1000], f[1000:], f[1000:])  # 1.0

    Paper: Ridgeway & Mozer (NeurIPS 2018); implementation as in disentanglement_lib.
    """
    import sklearn.metrics
    codes_train, factors_train, codes_test, factors_test = _train_test(codes_train, factors_train, codes_test,
                                                                       factors_test)
    _not_constant("factors_train", factors_train, "a classifier needs at least two classes")
    mean, std = codes_train.mean(axis=0), codes_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (codes_train - mean) / std, (codes_test - mean) / std
    aucs = []
    for j in range(factors_train.shape[1]):
        model = _fit_logistic(x_train, factors_train[:, j])
        proba = model.predict_proba(x_test)
        per_class = []
        for k, cls in enumerate(model.classes_):
            positive = factors_test[:, j] == cls
            if 0 < positive.sum() < positive.size:
                per_class.append(sklearn.metrics.roc_auc_score(positive, proba[:, k]))
        if not per_class:
            raise ValueError(f"`factors_test` column {j} has no training class with both positive and negative "
                             "test samples: its ROC-AUC is undefined")
        aucs.append(np.mean(per_class))
    return float(np.mean(aucs))


def dci_from_importance(importance: Any) -> dict[str, float]:
    """DCI disentanglement and completeness from an importance matrix ``R[i, j]`` (code i, factor j).

    With ``R~ = R + 1e-11`` (disentanglement_lib adds this before normalising, so all-zero rows and
    columns become uniform), ``P[i, j] = R~[i, j] / sum_j R~[i, j]`` and
    ``Q[i, j] = R~[i, j] / sum_i R~[i, j]``::

        D_i = 1 + sum_j P[i, j] log P[i, j] / log(n_factors)     (1 - entropy in base n_factors)
        C_j = 1 + sum_i Q[i, j] log Q[i, j] / log(n_codes)
        disentanglement = sum_i rho_i D_i,   rho_i = sum_j R[i, j] / sum_ij R[i, j]
        completeness    = sum_j  w_j C_j,     w_j = sum_i R[i, j] / sum_ij R[i, j]

    The weights use ``R`` without the offset; when ``R`` is all zeros they are uniform
    (disentanglement_lib's ``disentanglement``/``completeness``).

    Args:
      importance: ``[n_codes, n_factors]`` non-negative importances, both sizes >= 2.
    Returns:
      ``{"disentanglement": float, "completeness": float}``, each in [0, 1].

    Example::

      dci_from_importance(np.eye(3))  # {"disentanglement": 1.0, "completeness": 1.0} (to 1e-9)

    Paper: Eastwood & Williams (ICLR 2018); implementation as in disentanglement_lib.
    """
    import scipy.stats
    importance = host_array("importance", importance, ndim=2, allow_int=True)
    if np.any(importance < 0):
        raise ValueError("`importance` must be non-negative")
    n_codes, n_factors = importance.shape
    _at_least("importance", n_codes, "rows (codes)", 2, "completeness is an entropy in base n_codes")
    _at_least("importance", n_factors, "columns (factors)", 2, "disentanglement is an entropy in base n_factors")
    per_code = 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=n_factors)
    per_factor = 1.0 - scipy.stats.entropy(importance + 1e-11, base=n_codes)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    return {
        "disentanglement": float(np.sum(per_code * weights.sum(axis=1) / weights.sum())),
        "completeness": float(np.sum(per_factor * weights.sum(axis=0) / weights.sum())),
    }


def _gbt_importance(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
                    factors_test: np.ndarray, random_state: int | None,
                    n_estimators: int = 100) -> tuple[np.ndarray, float, float]:
    """Importance matrix ``[n_codes, n_factors]`` of per-factor boosted trees, mean train/test accuracy."""
    from sklearn.ensemble import GradientBoostingClassifier
    n_factors = factors_train.shape[1]
    importance = np.zeros((codes_train.shape[1], n_factors))
    acc_train, acc_test = np.zeros(n_factors), np.zeros(n_factors)
    for j in range(n_factors):
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=random_state)
        model.fit(codes_train, factors_train[:, j])
        importance[:, j] = np.abs(model.feature_importances_)
        acc_train[j] = np.mean(model.predict(codes_train) == factors_train[:, j])
        acc_test[j] = np.mean(model.predict(codes_test) == factors_test[:, j])
    return importance, float(acc_train.mean()), float(acc_test.mean())


def dci(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, *,
        random_state: int | None = None, n_estimators: int = 100) -> dict[str, float]:
    """DCI: disentanglement, completeness and informativeness from gradient-boosted trees.

    For each factor ``j`` a ``GradientBoostingClassifier()`` (scikit-learn defaults: 100 stages,
    depth 3, learning rate 0.1, log-loss) classifies the factor's value from all codes. Its
    ``feature_importances_`` form column ``j`` of the importance matrix ``R [n_codes, n_factors]``,
    scored by ``dci_from_importance``; informativeness is the classification accuracy, averaged
    over factors::

        informativeness_{train,test} = (1/n_factors) sum_j mean_n 1[model_j(c_n) = f_{n,j}]

    Kept from disentanglement_lib (``dci.py``): importances from gradient boosting (impurity-based,
    not the paper's Lasso/random-forest weights); factors treated as classes (a 40-valued
    orientation is a 40-class problem, so one boosting stage fits 40 trees: the slow part);
    informativeness reported as *accuracy* (the paper's is a prediction *error*; disentanglement_lib
    names its variables "err" but returns accuracy); the 1e-11 offset of ``dci_from_importance``.

    Cost: about 100 x (number of classes) trees per factor on ``n_train`` samples. With
    disentanglement_lib's 10000/5000 samples, 10-d codes and dSprites-sized factors (3, 6, 40, 32,
    32 values) it measured 463 s of CPU time (625 s wall on a shared 2-core machine); the 40- and
    32-valued factors take most of it. Pass fewer samples for quick checks.

    Args:
      codes_train: ``[n_train, n_codes]`` codes, ``n_codes >= 2`` (disentanglement_lib: 10000).
      factors_train: ``[n_train, n_factors]`` integer-valued factors, none constant, ``n_factors >= 2``.
      codes_test: ``[n_test, n_codes]`` codes (disentanglement_lib: 5000).
      factors_test: ``[n_test, n_factors]`` integer-valued factors.
      random_state: seed of the boosting models (tie-breaking between equally good splits);
        ``None`` as in disentanglement_lib, which leaves them unseeded.
      n_estimators: boosting stages per factor (scikit-learn's and disentanglement_lib's 100; fewer
        only for smoke tests: the cost is proportional).
    Returns:
      ``{"disentanglement", "completeness", "informativeness_train", "informativeness_test"}``:
      floats in [0, 1].

    Example::

      f = np.random.default_rng(0).integers(0, 3, size=(400, 2))
      dci(f[:200], f[:200], f[200:], f[200:], random_state=0)["disentanglement"]  # ~1.0

    Paper: Eastwood & Williams (ICLR 2018), "A framework for the quantitative evaluation of
    disentangled representations"; implementation as in disentanglement_lib.
    """
    codes_train, factors_train, codes_test, factors_test = _train_test(codes_train, factors_train, codes_test,
                                                                       factors_test)
    _at_least("codes_train", codes_train.shape[1], "code dimensions (columns)", 2,
              "completeness is an entropy in base n_codes")
    _at_least("factors_train", factors_train.shape[1], "factors (columns)", 2,
              "disentanglement is an entropy in base n_factors")
    _not_constant("factors_train", factors_train, "a classifier needs at least two classes")
    if random_state is not None:
        random_state = positive_int("random_state", random_state, minimum=0)
    n_estimators = positive_int("n_estimators", n_estimators)
    importance, acc_train, acc_test = _gbt_importance(codes_train, factors_train, codes_test, factors_test,
                                                      random_state, n_estimators)
    scores = dci_from_importance(importance)
    scores["informativeness_train"] = acc_train
    scores["informativeness_test"] = acc_test
    return scores


def sap(codes_train: Any, factors_train: Any, codes_test: Any, factors_test: Any, *,
        continuous_factors: bool = False) -> float:
    """Separated attribute predictability: per factor, the gap between its two most predictive codes.

    A score matrix ``S [n_codes, n_factors]`` rates how well code ``i`` alone predicts factor ``j``::

        discrete   (continuous_factors=False): S[i, j] = test accuracy of
                   LinearSVC(C=0.01, class_weight="balanced") fitted on (c_i, f_j) of the training set
        continuous (continuous_factors=True):  S[i, j] = cov(c_i, f_j)^2 / (var(c_i) var(f_j)) on the
                   training set (ddof 1), and 0 when var(c_i) <= 1e-12
        SAP = (1/n_factors) sum_j (largest S[:, j] - second largest S[:, j])

    Kept from disentanglement_lib (``sap_score.py``): ``continuous_factors=False`` as in its
    published configs; the discrete score is plain test accuracy (chance is not 0, and a constant or
    useless code still scores the majority-class rate, which compresses the gaps); the SVM is a
    one-dimensional one-vs-rest linear classifier with a strong penalty (C=0.01), so even a perfect
    code of a factor with many ordered values (e.g. 32 positions) is classified far from perfectly;
    the continuous score ignores the test set. The SVM solves liblinear's primal problem
    (``dual=False``, what scikit-learn's ``dual="auto"`` picks here): the same strictly convex
    objective the dual solver of disentanglement_lib's days minimised, without its 1000-iteration
    ConvergenceWarning. A constant factor is refused (one class; zero variance).

    Args:
      codes_train: ``[n_train, n_codes]`` codes, ``n_codes >= 2`` (disentanglement_lib: 10000).
      factors_train: ``[n_train, n_factors]`` factors: integer-valued unless ``continuous_factors``.
      codes_test: ``[n_test, n_codes]`` codes (disentanglement_lib: 5000; unused if continuous).
      factors_test: ``[n_test, n_factors]`` factors.
      continuous_factors: score by squared correlation instead of classification.
    Returns:
      SAP in [0, 1] as a float.

    Example::

      f = np.random.default_rng(0).integers(0, 2, size=(1000, 2))
      sap(f[:500], f[:500], f[500:], f[500:])  # ~0.5 (1 - the 0.5 accuracy of the useless code)

    Paper: Kumar, Sattigeri & Balakrishnan (ICLR 2018), "Variational inference of disentangled
    latent concepts from unlabeled observations"; implementation as in disentanglement_lib.
    """
    from sklearn.svm import LinearSVC
    if not isinstance(continuous_factors, bool):
        raise TypeError(f"`continuous_factors` must be a bool, got {type(continuous_factors).__name__}")
    codes_train, factors_train, codes_test, factors_test = _train_test(
        codes_train, factors_train, codes_test, factors_test, integer=not continuous_factors)
    _at_least("codes_train", codes_train.shape[1], "code dimensions (columns)", 2,
              "SAP takes the gap between the two best codes")
    n_codes, n_factors = codes_train.shape[1], factors_train.shape[1]
    score = np.zeros((n_codes, n_factors))
    if continuous_factors:
        _at_least("codes_train", codes_train.shape[0], "samples (rows)", 2, "variances use ddof=1")
        _not_constant("factors_train", factors_train, "its variance is 0")
        for i in range(n_codes):
            for j in range(n_factors):
                cov = np.cov(codes_train[:, i], factors_train[:, j], ddof=1)
                if cov[0, 0] > 1e-12:
                    score[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1])
    else:
        _not_constant("factors_train", factors_train, "a classifier needs at least two classes")
        for i in range(n_codes):
            for j in range(n_factors):
                svm = LinearSVC(C=0.01, class_weight="balanced", dual=False)
                svm.fit(codes_train[:, i:i + 1], factors_train[:, j])
                score[i, j] = np.mean(svm.predict(codes_test[:, i:i + 1]) == factors_test[:, j])
    top = np.sort(score, axis=0)
    return float(np.mean(top[-1] - top[-2]))


# --------------------------------------------------------------------------------------------
# Sampling metrics (BetaVAE, FactorVAE)
# --------------------------------------------------------------------------------------------


def _generator(key_or_seed: Any) -> np.random.Generator:
    """A NumPy generator from an int seed >= 0 or a single JAX PRNG key (typed or raw uint32)."""
    if isinstance(key_or_seed, numbers.Integral) and not isinstance(key_or_seed, bool):
        return np.random.default_rng(positive_int("key_or_seed", key_or_seed, minimum=0))
    if isinstance(key_or_seed, np.ndarray) and key_or_seed.ndim == 0 and np.issubdtype(key_or_seed.dtype, np.integer):
        return _generator(int(key_or_seed))
    if isinstance(key_or_seed, jax.Array):
        if jax.dtypes.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
            if key_or_seed.ndim != 0:
                raise ValueError(f"`key_or_seed` must be a single PRNG key, got a key array of shape "
                                 f"{key_or_seed.shape}")
            key_or_seed = jax.random.key_data(key_or_seed)
        elif key_or_seed.ndim == 0 and np.issubdtype(key_or_seed.dtype, np.integer):
            return _generator(int(key_or_seed))
        elif key_or_seed.dtype != np.uint32 or key_or_seed.ndim != 1:
            raise ValueError(f"`key_or_seed` must be an int seed or a single JAX PRNG key, got an array of "
                             f"dtype {key_or_seed.dtype} and shape {key_or_seed.shape}")
        return np.random.default_rng(np.asarray(key_or_seed, dtype=np.uint32).ravel().tolist())
    raise TypeError(f"`key_or_seed` must be an int seed or a JAX PRNG key, got {type(key_or_seed).__name__}")


def _sample(sample_factors: Callable, rng: np.random.Generator, n: int, n_factors: int | None) -> np.ndarray:
    factors = np.asarray(sample_factors(rng, n))
    if factors.ndim != 2 or factors.shape[0] != n:
        raise ValueError(f"`sample_factors` must return an array of shape [n, n_factors] when asked for n={n} "
                         f"draws, got shape {factors.shape}")
    if n_factors is not None and factors.shape[1] != n_factors:
        raise ValueError(f"`sample_factors` returned {factors.shape[1]} factors, earlier {n_factors}")
    if not (np.issubdtype(factors.dtype, np.integer)
            or (np.issubdtype(factors.dtype, np.floating) and np.all(factors == np.round(factors)))):
        raise ValueError(f"`sample_factors` must return integer-valued factors, got dtype {factors.dtype}")
    return factors.astype(np.int64)


def _represent(render: Callable, encode: Callable, factors: np.ndarray) -> np.ndarray:
    """``encode(render(factors))`` in slices of at most ``ENCODE_BATCH`` rows -> float64 ``[n, n_codes]``."""
    parts = []
    for start in range(0, factors.shape[0], ENCODE_BATCH):
        chunk = factors[start:start + ENCODE_BATCH]
        codes = np.asarray(encode(render(chunk)))
        if codes.ndim != 2 or codes.shape[0] != chunk.shape[0]:
            raise ValueError(f"`encode` must return codes of shape [{chunk.shape[0]}, n_codes] for "
                             f"{chunk.shape[0]} observations, got shape {codes.shape}")
        if parts and codes.shape[1] != parts[0].shape[1]:
            raise ValueError(f"`encode` returned {codes.shape[1]} codes, earlier {parts[0].shape[1]}")
        if not any(np.issubdtype(codes.dtype, kind) for kind in (np.floating, np.integer, np.bool_)):
            raise ValueError(f"`encode` must return real codes, got dtype {codes.dtype}")
        if not np.all(np.isfinite(codes)):
            raise ValueError("`encode` returned NaN or infinite codes")
        parts.append(codes.astype(np.float64))
    return np.concatenate(parts)


def _points_per_chunk(batch_size: int, pairs: int) -> int:
    """Points drawn per round: about 8 x ``ENCODE_BATCH`` observations' worth of factors (small ints)."""
    return max(1, (8 * ENCODE_BATCH) // (pairs * batch_size))


def _sizes(batch_size: Any, num_train: Any, num_eval: Any, min_batch: int) -> tuple[int, int, int]:
    return (positive_int("batch_size", batch_size, minimum=min_batch), positive_int("num_train", num_train),
            positive_int("num_eval", num_eval))


def _beta_vae_points(encode: Callable, sample_factors: Callable, render: Callable, rng: np.random.Generator,
                     batch_size: int, num_points: int, n_factors: int) -> tuple[np.ndarray, np.ndarray]:
    features, labels = [], []
    per_chunk = _points_per_chunk(batch_size, 2)
    for start in range(0, num_points, per_chunk):
        p = min(per_chunk, num_points - start)
        index = rng.integers(n_factors, size=p)
        first = _sample(sample_factors, rng, p * batch_size, n_factors)
        second = _sample(sample_factors, rng, p * batch_size, n_factors)
        rows, cols = np.arange(p * batch_size), np.repeat(index, batch_size)
        second[rows, cols] = first[rows, cols]
        codes = _represent(render, encode, np.concatenate([first, second]))
        diff = np.abs(codes[: p * batch_size] - codes[p * batch_size:])
        features.append(diff.reshape(p, batch_size, -1).mean(axis=1))
        labels.append(index)
    return np.concatenate(features), np.concatenate(labels)


def beta_vae_score(encode: Callable, sample_factors: Callable, render: Callable, key_or_seed: Any, *,
                   batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000) -> dict[str, float]:
    """BetaVAE score: accuracy of a linear classifier naming the factor held fixed within pairs.

    One point: draw a factor index ``k`` uniformly, two batches ``f^1, f^2`` of ``batch_size``
    factor draws with ``f^2[:, k] = f^1[:, k]``, and the feature::

        z_b = (1/batch_size) sum_l |encode(render(f^1_l)) - encode(render(f^2_l))|   (label k)

    ``num_train`` such points train a logistic regression (``LogisticRegression()``: multinomial,
    C=1, lbfgs, at most 100 iterations; module docstring) and it is scored by accuracy on them and on ``num_eval`` fresh points. Chance is
    ``1/n_factors``; a representation whose codes each track one factor scores 1.

    Kept from disentanglement_lib (``beta_vae.py``, "beta_vae_sklearn"): a point is a *batch* of
    ``batch_size`` pairs (so the defaults encode 2 x 64 x 15000 = 1.92M observations); features are
    the raw mean absolute differences (not standardised); a logistic regression instead of the
    paper's linear classifier trained with Adagrad. Not kept: its Python loop of one ``encode`` call
    per point; here factors are drawn for many points at once and rendered/encoded in slices of at
    most ``ENCODE_BATCH``, so results equal disentanglement_lib's in distribution, not draw for draw.

    Args:
      encode: ``observations [n, ...] -> codes [n, n_codes]`` (posterior means); module docstring.
      sample_factors: ``(rng: np.random.Generator, n) -> int array [n, n_factors]``, ``n_factors >= 2``.
      render: ``factors [n, n_factors] -> observations [n, ...]``.
      key_or_seed: int seed >= 0 or a JAX PRNG key; it seeds one ``np.random.Generator`` (from the
        key's data words) that draws everything, so a seed gives the same score every time.
      batch_size: pairs per point (disentanglement_lib: 64).
      num_train: training points (disentanglement_lib: 10000).
      num_eval: evaluation points (disentanglement_lib: 5000).
    Returns:
      ``{"train_accuracy": float, "eval_accuracy": float}``.

    Example::

      sample = lambda rng, n: rng.integers(0, 32, size=(n, 4))
      ident = lambda x: np.asarray(x, float)
      beta_vae_score(ident, sample, ident, 0, num_train=500, num_eval=200)  # eval_accuracy 1.0

    Paper: Higgins et al. (ICLR 2017), "beta-VAE: learning basic visual concepts with a constrained
    variational framework"; implementation as in disentanglement_lib.
    """
    batch_size, num_train, num_eval = _sizes(batch_size, num_train, num_eval, 1)
    rng = _generator(key_or_seed)
    n_factors = _sample(sample_factors, rng, 1, None).shape[1]
    _at_least("sample_factors", n_factors, "factors (columns)", 2, "the score classifies which factor is fixed")
    x_train, y_train = _beta_vae_points(encode, sample_factors, render, rng, batch_size, num_train, n_factors)
    if np.unique(y_train).size < 2:
        raise ValueError(f"`num_train`={num_train} drew a single fixed factor; a classifier needs at least two")
    model = _fit_logistic(x_train, y_train)
    x_eval, y_eval = _beta_vae_points(encode, sample_factors, render, rng, batch_size, num_eval, n_factors)
    return {
        "train_accuracy": float(np.mean(model.predict(x_train) == y_train)),
        "eval_accuracy": float(np.mean(model.predict(x_eval) == y_eval)),
    }


def _factor_vae_votes(encode: Callable, sample_factors: Callable, render: Callable, rng: np.random.Generator,
                      batch_size: int, num_points: int, n_factors: int, scale: np.ndarray,
                      active: np.ndarray) -> np.ndarray:
    """``votes[k, d]``: points with factor ``k`` fixed whose least-varying active code is the d-th active one."""
    votes = np.zeros((n_factors, active.size), dtype=np.int64)
    per_chunk = _points_per_chunk(batch_size, 1)
    for start in range(0, num_points, per_chunk):
        p = min(per_chunk, num_points - start)
        index = rng.integers(n_factors, size=p)
        factors = _sample(sample_factors, rng, p * batch_size, n_factors).reshape(p, batch_size, n_factors)
        points = np.arange(p)
        factors[points, :, index] = factors[points, 0, index][:, None]
        codes = _represent(render, encode, factors.reshape(p * batch_size, n_factors))
        codes = codes.reshape(p, batch_size, -1)[:, :, active]
        local = np.var(codes, axis=1, ddof=1)
        np.add.at(votes, (index, np.argmin(local / scale, axis=1)), 1)
    return votes


def factor_vae_score(encode: Callable, sample_factors: Callable, render: Callable, key_or_seed: Any, *,
                     batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                     num_variance_estimate: int = 10000) -> dict[str, float | int]:
    """FactorVAE score: majority-vote accuracy of "least-varying normalised code -> fixed factor".

    First the global variance ``s_d^2`` (ddof 1) of each code dimension over
    ``num_variance_estimate`` samples; dimensions with ``s_d < PRUNE_THRESHOLD`` (0.05) are dropped
    as collapsed. One point: draw a factor index ``k``, a batch of ``batch_size`` factor draws, set
    factor ``k`` of all to its value in the first draw, encode, and vote::

        d* = argmin over active d of var_l(z_{l,d}) / s_d^2     (ddof 1 within the batch)
        votes[k, d*] += 1

    The classifier maps each active code ``d`` to its majority factor ``argmax_k votes_train[k, d]``
    (ties: lowest k). Accuracy is the fraction of votes that agree with it::

        accuracy = sum_d votes[classifier(d), d] / sum_kd votes[k, d]

    on the ``num_train`` training points and on ``num_eval`` fresh points.

    Kept from disentanglement_lib (``factor_vae.py``): a point is a batch of ``batch_size``
    observations; global variances of posterior means, estimated on fresh samples; pruning on the
    standard deviation with threshold 0.05 (its published ``prune_dims.threshold``); ``0`` accuracies
    when no dimension is active; ``argmin`` ties to the first dimension. Changed: disentanglement_lib
    reports ``num_active_dims = len(mask)``, i.e. all dimensions; here it is the number of dimensions
    kept. As in ``beta_vae_score``, points are drawn many at a time and rendered/encoded in slices
    of at most ``ENCODE_BATCH``.

    Args:
      encode, sample_factors, render: as in ``beta_vae_score`` (module docstring).
      key_or_seed: int seed >= 0 or a JAX PRNG key (seeds one ``np.random.Generator``).
      batch_size: observations per point, >= 2 (disentanglement_lib: 64).
      num_train: training points (disentanglement_lib: 10000).
      num_eval: evaluation points (disentanglement_lib: 5000).
      num_variance_estimate: samples for the global variances, >= 2 (disentanglement_lib: 10000).
    Returns:
      ``{"train_accuracy": float, "eval_accuracy": float, "num_active_dims": int}``.

    Example::

      sample = lambda rng, n: rng.integers(0, 32, size=(n, 4))
      ident = lambda x: np.asarray(x, float)
      factor_vae_score(ident, sample, ident, 0, num_train=500, num_eval=200)  # accuracies 1.0

    Paper: Kim & Mnih (ICML 2018), "Disentangling by factorising"; implementation as in
    disentanglement_lib.
    """
    batch_size, num_train, num_eval = _sizes(batch_size, num_train, num_eval, 2)
    num_variance_estimate = positive_int("num_variance_estimate", num_variance_estimate, minimum=2)
    rng = _generator(key_or_seed)
    factors = _sample(sample_factors, rng, num_variance_estimate, None)
    n_factors = factors.shape[1]
    variances = np.var(_represent(render, encode, factors), axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(variances) >= PRUNE_THRESHOLD)
    if active.size == 0:
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    scale = variances[active]
    train = _factor_vae_votes(encode, sample_factors, render, rng, batch_size, num_train, n_factors, scale, active)
    classifier = np.argmax(train, axis=0)
    evaluation = _factor_vae_votes(encode, sample_factors, render, rng, batch_size, num_eval, n_factors, scale, active)
    columns = np.arange(active.size)
    return {
        "train_accuracy": float(train[classifier, columns].sum() / train.sum()),
        "eval_accuracy": float(evaluation[classifier, columns].sum() / evaluation.sum()),
        "num_active_dims": int(active.size),
    }

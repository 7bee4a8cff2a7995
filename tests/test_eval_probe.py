"""The linear probe against scikit-learn's LogisticRegression on the same objective."""

import jax
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from jaxsparse.eval import linear_probe
from jaxsparse.eval.probe import fit_logistic, predict


def _data(seed=0, n=300, d=6, k=4):
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, d)) * 1.5
    y = rng.integers(0, k, n)
    x = means[y] + rng.normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + 2.0
    return x.astype(np.float32), y


def test_matches_sklearn_logistic_regression_on_the_same_objective():
    x, y = _data()
    l2 = 1e-2
    fit = fit_logistic(x, y, n_classes=4, l2=l2, max_iter=500, tol=1e-7)
    xs = (x - x.mean(0)) / x.std(0)
    ref = LogisticRegression(C=1.0 / (len(y) * l2), tol=1e-10, max_iter=10_000).fit(xs, y)
    # softmax weights are defined up to a shift shared by the classes; the L2 term fixes it (sum_k w_k = 0)
    np.testing.assert_allclose(np.asarray(fit.w), ref.coef_.T, atol=2e-3)
    np.testing.assert_allclose(np.asarray(fit.b) - np.mean(fit.b), ref.intercept_ - ref.intercept_.mean(), atol=2e-3)
    np.testing.assert_array_equal(np.asarray(predict(fit, x)), ref.predict(xs))
    assert 0 < int(fit.iterations) < 500


def test_accuracies_and_vmap_over_runs():
    x, y = _data(1)
    scores = linear_probe(x[:200], y[:200], x[200:], y[200:])
    ref = LogisticRegression(C=1.0 / (200 * 1e-4), max_iter=10_000).fit((x[:200] - x[:200].mean(0)) / x[:200].std(0), y[:200])
    want = np.mean(ref.predict((x[200:] - x[:200].mean(0)) / x[:200].std(0)) == y[200:])
    assert abs(scores["test_accuracy"] - want) <= 0.02 and scores["train_accuracy"] >= scores["test_accuracy"] - 0.1
    stacked = jax.vmap(lambda a: fit_logistic(a, y, n_classes=4, l2=1e-2))(np.stack([x, 2 * x]))
    one = fit_logistic(2 * x, y, n_classes=4, l2=1e-2)
    np.testing.assert_allclose(stacked.w[1], one.w, atol=1e-4)  # standardisation removes the factor 2


def test_bad_arguments_name_the_argument():
    x, y = _data()
    with pytest.raises(ValueError, match="train_labels"):
        linear_probe(x, y.astype(np.float32), x, y)
    with pytest.raises(ValueError, match="test_features"):
        linear_probe(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="test_labels"):
        linear_probe(x, y, x, y[:10])
    with pytest.raises(ValueError, match="l2"):
        linear_probe(x, y, x, y, l2=0.0)

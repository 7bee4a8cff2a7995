"""linear_r2 against scikit-learn's LinearRegression + r2_score on the same split."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score

from jaxsparse.eval import linear_r2


def sklearn_reference(z_true, features, test_fraction, seed):
    """The split documented in linear_r2, then scikit-learn's fit and score."""
    n = len(z_true)
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(np.ceil(test_fraction * n))
    test, train = order[:n_test], order[n_test:]
    model = LinearRegression().fit(features[train], z_true[train])
    pred = model.predict(features[test])
    return model, r2_score(z_true[test], pred), r2_score(z_true[test], pred, multioutput="raw_values"), (z_true[test], pred)


@pytest.mark.parametrize("test_fraction,seed", [(0.5, 0), (0.3, 1), (0.77, 123)])
def test_linear_r2_equals_sklearn(rng, test_fraction, seed):
    z_true = rng.normal(size=(301, 4))
    features = np.tanh(z_true @ rng.normal(size=(4, 6))) + 0.2 * rng.normal(size=(301, 6)) + 3.0
    model, r2, r2_raw, pearson = sklearn_reference(z_true, features, test_fraction, seed)
    out = linear_r2(z_true, features, test_fraction, seed=seed)
    assert isinstance(out["r2"], float) and 0.3 < out["r2"] < 0.99
    np.testing.assert_allclose(out["r2"], r2, atol=1e-10)
    np.testing.assert_allclose(out["r2_per_latent"], r2_raw, atol=1e-10)
    y, pred = pearson
    np.testing.assert_allclose(out["pearson_per_latent"], [np.corrcoef(y[:, i], pred[:, i])[0, 1] for i in range(4)],
                               atol=1e-10)
    np.testing.assert_allclose(out["weights"], model.coef_.T, atol=1e-8)
    np.testing.assert_allclose(out["bias"], model.intercept_, atol=1e-8)
    np.testing.assert_allclose(out["singular_values"], np.linalg.svd(model.coef_, compute_uv=False), atol=1e-8)


def test_linear_r2_edge_cases_match_sklearn(rng):
    # Rank-deficient features (a duplicated column: minimum-norm solution) and an integer latent
    # that is constant on the whole data (sklearn's r2_score convention: 0 unless predicted exactly).
    z_true = np.concatenate([rng.integers(0, 5, size=(100, 2)), np.full((100, 1), 2)], axis=1)
    base = z_true[:, :2] + 0.5 * rng.normal(size=(100, 2))
    features = np.concatenate([base, base[:, :1]], axis=1)
    model, r2, r2_raw, _ = sklearn_reference(z_true.astype(float), features, 0.5, 0)
    out = linear_r2(z_true, features)
    np.testing.assert_allclose(out["r2"], r2, atol=1e-10)
    np.testing.assert_allclose(out["r2_per_latent"], r2_raw, atol=1e-10)
    np.testing.assert_allclose(out["weights"], model.coef_.T, atol=1e-8)


def test_linear_r2_one_for_invertible_linear_map(rng):
    z_true = rng.normal(size=(400, 5))
    features = z_true @ rng.normal(size=(5, 5)) - 1.0
    out = linear_r2(z_true, features)
    np.testing.assert_allclose(out["r2"], 1.0, atol=1e-12)
    np.testing.assert_allclose(out["r2_per_latent"], 1.0, atol=1e-12)


def test_singular_values_reveal_scaled_orthogonal_map(rng):
    z_true = rng.normal(size=(200, 4))
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    out = linear_r2(z_true, 3.0 * z_true @ q)  # features = 3 z Q, so weights = Q^T / 3
    np.testing.assert_allclose(out["singular_values"], 1 / 3, rtol=1e-10)


def test_split_is_deterministic(rng):
    z_true = rng.normal(size=(100, 2))
    features = z_true + rng.normal(size=(100, 2))
    first = linear_r2(z_true, features, seed=7)
    assert linear_r2(z_true, features, seed=7)["r2"] == first["r2"]
    assert linear_r2(z_true, features, seed=8)["r2"] != first["r2"]


def test_linear_r2_bad_inputs(rng):
    z = rng.normal(size=(20, 2))
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="`test_fraction`"):
            linear_r2(z, z, bad)
    for bad in ("half", True, None):
        with pytest.raises(TypeError, match="`test_fraction`"):
            linear_r2(z, z, bad)
    with pytest.raises(ValueError, match="`test_fraction`.*at least 2"):
        linear_r2(z, z, 0.95)
    with pytest.raises(ValueError, match="`seed`"):
        linear_r2(z, z, seed=-1)
    with pytest.raises(TypeError, match="`seed`"):
        linear_r2(z, z, seed=1.5)
    with pytest.raises(TypeError, match="`features`.*floating"):
        linear_r2(z, np.ones((20, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="`features`.*samples"):
        linear_r2(z, z[:10])
    with pytest.raises(ValueError, match="`z_true`.*dimension"):
        linear_r2(z[:, 0], z)
    with pytest.raises(ValueError, match="`features`.*empty"):
        linear_r2(z, np.zeros((20, 0)))
    with pytest.raises(ValueError, match="`z_true`.*NaN"):
        linear_r2(np.full((20, 2), np.nan), z)

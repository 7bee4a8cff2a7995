"""l0, dead_fraction, support_f1 and fvu: hand-worked cases and scikit-learn references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, r2_score, recall_score

from jaxsparse.eval import dead_fraction, fvu, l0, support_f1

Z = np.array([[0.0, 2.0, -1.0, 0.0], [0.0, 0.0, 3.0, 0.05], [0.0, -0.2, 0.0, 0.0]])


def test_l0_hand_computed():
    assert l0(Z) == pytest.approx((2 + 2 + 1) / 3)
    assert l0(Z, threshold=0.1) == pytest.approx((2 + 1 + 1) / 3)
    assert l0(Z, threshold=2.0) == pytest.approx(1 / 3)  # strict: |2.0| > 2.0 is not active
    assert l0(Z[0]) == 2.0  # one sample
    assert l0(np.stack([Z, Z])) == pytest.approx(5 / 3)  # leading axes are sample axes
    assert l0(Z.astype(np.int32)) == 1.0  # integer codes are cast (0.05 and -0.2 truncate to 0)
    assert l0(jnp.asarray(Z)) == pytest.approx(5 / 3)


def test_dead_fraction_hand_computed():
    assert dead_fraction(Z) == pytest.approx(1 / 4)  # latent 0 never fires
    assert dead_fraction(Z, threshold=0.1) == pytest.approx(2 / 4)  # latent 3 only reaches 0.05
    assert dead_fraction(Z, threshold=5.0) == 1.0
    assert dead_fraction(np.stack([Z, Z])) == pytest.approx(1 / 4)
    assert dead_fraction(Z != 0) == pytest.approx(1 / 4)  # bool activity masks work too


def test_support_f1_hand_computed():
    z_true = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    z_hat = np.array([[0.5, 0.1, 0.0, 0.0], [0.0, 2.0, 0.0, 0.01]])
    # threshold 0: TP = 2 (entries (0,0), (1,1)), FP = 2 ((0,1), (1,3)), FN = 1 ((0,2)).
    out = support_f1(z_true, z_hat)
    assert out == pytest.approx({"f1": 4 / 7, "precision": 2 / 4, "recall": 2 / 3})
    # threshold 0.2 drops both false positives: TP = 2, FP = 0, FN = 1.
    assert support_f1(z_true, z_hat, threshold=0.2) == pytest.approx({"f1": 4 / 5, "precision": 1.0, "recall": 2 / 3})


def test_support_f1_matches_sklearn_micro(rng):
    z_true = rng.normal(size=(50, 10)) * (rng.random((50, 10)) < 0.3)
    z_hat = z_true + 0.3 * rng.normal(size=(50, 10))
    true, est = (z_true != 0).ravel(), (np.abs(z_hat) > 0.4).ravel()
    out = support_f1(z_true, z_hat, threshold=0.4)
    np.testing.assert_allclose(out["f1"], f1_score(true, est), rtol=1e-12)
    np.testing.assert_allclose(out["precision"], precision_score(true, est), rtol=1e-12)
    np.testing.assert_allclose(out["recall"], recall_score(true, est), rtol=1e-12)


def test_support_f1_empty_supports():
    zeros, ones = np.zeros((2, 3)), np.ones((2, 3))
    assert support_f1(zeros, zeros) == {"f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert support_f1(ones, zeros) == {"f1": 0.0, "precision": 1.0, "recall": 0.0}
    assert support_f1(zeros, ones) == {"f1": 0.0, "precision": 0.0, "recall": 1.0}


def test_fvu_hand_computed():
    x = np.array([[0.0, 0.0], [2.0, 2.0]])  # mean (1, 1): total variance sum = 4
    assert fvu(x, np.array([[0.0, 1.0], [2.0, 2.0]])) == pytest.approx(1 / 4)
    assert fvu(x, x) == 0.0
    assert fvu(x, np.ones_like(x)) == pytest.approx(1.0)  # predicting the mean
    assert fvu(x, np.zeros_like(x)) == pytest.approx(8 / 4)  # not normalised by the second moment


def test_fvu_invariant_to_batch_duplication(rng):
    x = rng.normal(size=(64, 8)) + 2.0
    x_hat = x + 0.3 * rng.normal(size=(64, 8))
    value = fvu(x, x_hat)
    np.testing.assert_allclose(fvu(np.concatenate([x] * 3), np.concatenate([x_hat] * 3)), value, rtol=1e-12)
    np.testing.assert_allclose(fvu(np.stack([x, x]), np.stack([x_hat, x_hat])), value, rtol=1e-12)


def test_fvu_is_one_minus_variance_weighted_r2(rng):
    x = rng.normal(size=(100, 5)) * np.arange(1, 6)
    x_hat = x + rng.normal(size=(100, 5))
    np.testing.assert_allclose(fvu(x, x_hat), 1 - r2_score(x, x_hat, multioutput="variance_weighted"), rtol=1e-12)


def test_sparsity_bad_inputs(rng):
    z = rng.normal(size=(10, 4))
    for metric in (l0, dead_fraction):
        with pytest.raises(ValueError, match="`threshold`"):
            metric(z, threshold=-0.1)
        with pytest.raises(ValueError, match="`threshold`"):
            metric(z, threshold=np.inf)
        with pytest.raises(TypeError, match="`threshold`"):
            metric(z, threshold="0")
        with pytest.raises(ValueError, match="`z`.*empty"):
            metric(np.zeros((0, 4)))
        with pytest.raises(ValueError, match="`z`.*dimension"):
            metric(np.float64(1.0))
        with pytest.raises(ValueError, match="`z`.*NaN"):
            metric(np.full((2, 2), np.nan))
        with pytest.raises(TypeError, match="`z`.*concrete"):
            jax.jit(metric)(jnp.asarray(z))
    with pytest.raises(ValueError, match="`z_hat`.*shape"):
        support_f1(z, z[:, :3])
    with pytest.raises(ValueError, match="`threshold`"):
        support_f1(z, z, threshold=-1.0)
    with pytest.raises(TypeError, match="`z_true`.*dtype"):
        support_f1(z.astype(np.complex64), z)
    with pytest.raises(ValueError, match="`x_hat`.*shape"):
        fvu(z, z[:5])
    with pytest.raises(ValueError, match="`x`.*dimension"):
        fvu(z[0], z[0])
    with pytest.raises(TypeError, match="`x_hat`.*floating"):
        fvu(z, np.ones((10, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="`x`.*vary"):
        fvu(np.ones((10, 4)), z)
    with pytest.raises(ValueError, match="`x_hat`.*infinite"):
        fvu(z, np.full((10, 4), np.inf))

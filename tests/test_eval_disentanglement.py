"""Disentanglement metrics: hand-worked cases, ideal / permuted+rescaled / random codes, and bad input."""

import jax
import numpy as np
import pytest

from jaxsparse import eval as ev
from jaxsparse.eval import disentanglement as dis

LOG2 = np.log(2.0)
H_QUARTER = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))  # entropy (nats) of a Bernoulli(1/4)


def grid_factors(rng, n, sizes):
    return np.stack([rng.integers(0, s, size=n) for s in sizes], axis=1)


def full_factorial(*sizes, repeat=1):
    """Every combination of the factor values, ``repeat`` times: exactly independent, balanced factors."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), axis=-1).reshape(-1, len(sizes))
    return np.tile(grid, (repeat, 1))


def permuted_rescaled(factors):
    """A permuted copy of the factors with each column rescaled (signs included) and shifted."""
    perm = np.roll(np.arange(factors.shape[1]), 1)
    scale = np.array([2.5, -0.3, 7.0, -1.0, 0.8])[: factors.shape[1]]
    return factors[:, perm] * scale + 3.0


# ---------------------------------------------------------------------------------------------
# MIG
# ---------------------------------------------------------------------------------------------


def test_mig_hand_worked():
    # y1, y2: the 4 combinations of two fair bits. c1 = y1, c2 = AND(y1, y2) (rescaled), c3 = y2.
    # I(c1; y1) = I(c3; y2) = log 2, I(c1; y2) = I(c3; y1) = 0. AND is 1 with probability 1/4 and
    # determined by y1 = 0, a fair bit given y1 = 1: I(AND; y1) = H(1/4) - (1/2) log 2 (also for y2).
    # Each factor: top log 2, second I(AND; y), entropy log 2, so MIG = 1 - I(AND; y) / log 2.
    y = full_factorial(2, 2)
    codes = np.stack([y[:, 0], 5.0 * (y[:, 0] & y[:, 1]) - 2.0, y[:, 1]], axis=1)
    i_and = H_QUARTER - 0.5 * LOG2
    np.testing.assert_allclose(ev.mig(codes, y), 1.0 - i_and / LOG2, atol=1e-12)
    # Without c3, factor y2's best code is AND and its second best c1 (MI 0): MIG = 1/2 exactly.
    np.testing.assert_allclose(ev.mig(codes[:, :2], y), 0.5, atol=1e-12)


def test_mig_matches_sklearn_mutual_info_and_histogram_bins(rng):
    from sklearn.metrics import mutual_info_score

    codes = rng.normal(size=(500, 3))
    codes[:, 0] += rng.integers(0, 4, size=500)
    factors = np.stack([np.floor(codes[:, 0]).astype(int) % 4, rng.integers(0, 3, size=500)], axis=1)
    bins = np.stack([np.digitize(c, np.histogram(c, 7)[1][:-1]) for c in codes.T], axis=1)
    np.testing.assert_array_equal(dis.histogram_discretize(codes, n_bins=7), bins)
    assert bins.min() == 1 and bins.max() == 7
    m = np.array([[mutual_info_score(f, b) for f in factors.T] for b in bins.T])
    top = np.sort(m, axis=0)
    h = np.array([mutual_info_score(f, f) for f in factors.T])
    np.testing.assert_allclose(ev.mig(codes, factors, n_bins=7), np.mean((top[-1] - top[-2]) / h), atol=1e-12)


def test_mig_ideal_permuted_random(rng):
    factors = grid_factors(rng, 4000, [3, 6, 8, 5])
    ideal = ev.mig(factors, factors)
    assert ideal > 0.98
    # Histogram bins follow each column's range: an affine map (sign included) with at most n_bins
    # values per factor gives the same partitions, hence the same score.
    np.testing.assert_allclose(ev.mig(permuted_rescaled(factors), factors), ideal, atol=1e-12)
    assert ev.mig(rng.normal(size=(4000, 6)), factors) < 0.03
    assert ev.mcc(factors, factors, method="spearman")["mcc"] == pytest.approx(1.0)
    assert ev.mcc(factors, permuted_rescaled(factors), method="spearman")["mcc"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------
# Modularity
# ---------------------------------------------------------------------------------------------


def test_modularity_hand_worked():
    # All 8 combinations of three fair bits. MI rows (nats): c1 = y1 -> (log 2, 0, 0): score 1.
    # c2 = AND(y1, y2) -> (a, a, 0): delta = a^2 / (a^2 (3 - 1)) = 1/2, score 1/2.
    # c3 = XOR(y1, y2) is independent of every single factor -> (0, 0, 0): score 0 (zero-MI code).
    # c4 = y1 + 2 y2 -> (log 2, log 2, 0): score 1/2. Modularity = (1 + 1/2 + 0 + 1/2) / 4 = 1/2.
    y = full_factorial(2, 2, 2)
    codes = np.stack([y[:, 0], y[:, 0] & y[:, 1], y[:, 0] ^ y[:, 1], y[:, 0] + 2 * y[:, 1]], axis=1)
    np.testing.assert_allclose(ev.modularity(codes, y), 0.5, atol=1e-12)
    # A constant code (one histogram bin, MI 0 with everything) scores 0 and counts in the mean.
    with_dead = np.concatenate([codes[:, :1], np.full((8, 1), 4.2)], axis=1)
    np.testing.assert_allclose(ev.modularity(with_dead, y), 0.5, atol=1e-12)


def test_modularity_one_factor_per_code(rng):
    factors = grid_factors(rng, 3000, [3, 6, 8])
    codes = factors[:, [0, 2, 2, 1]] * np.array([1.0, -2.0, 0.5, 3.0])  # each code depends on one factor only
    # Independent factors still share a little plug-in MI, so "exactly one factor" is 1 up to that bias.
    assert ev.modularity(codes, factors) > 0.999
    y = full_factorial(3, 4, repeat=5)  # exactly independent factors: exactly 1
    np.testing.assert_allclose(ev.modularity(y[:, [1, 0, 1]], y), 1.0, atol=1e-12)
    np.testing.assert_allclose(ev.modularity(permuted_rescaled(y), y), 1.0, atol=1e-12)


def test_modularity_random_codes_keep_the_published_bias(rng):
    # Documented quirk: noise codes are not near 0 (their noisy MI rows are unbalanced).
    factors = grid_factors(rng, 3000, [3, 6, 8])
    assert 0.2 < ev.modularity(rng.normal(size=(3000, 6)), factors) < 0.9


# ---------------------------------------------------------------------------------------------
# Explicitness
# ---------------------------------------------------------------------------------------------


def test_explicitness_hand_worked_auc():
    # One binary factor and one code; a logistic regression on one code ranks samples by the code,
    # so the AUC is the code's own: negatives {0, 0, 1, 2}, positives {1, 2, 2, 2}.
    # P(c+ > c-) + P(c+ = c-)/2 over the 16 pairs: (2 + .5) + 3 x (3 + .5) = 13 -> 13/16.
    codes = np.array([0, 0, 1, 2, 1, 2, 2, 2], dtype=float)[:, None]
    factor = np.array([0, 0, 0, 0, 1, 1, 1, 1])[:, None]
    codes, factor = np.tile(codes, (10, 1)), np.tile(factor, (10, 1))
    np.testing.assert_allclose(ev.explicitness(codes, factor, codes, factor), 13 / 16, atol=1e-12)


def test_explicitness_ideal_permuted_random(rng):
    factors = grid_factors(rng, 2000, [2, 2, 2])
    assert ev.explicitness(factors[:1000], factors[:1000], factors[1000:], factors[1000:]) == 1.0
    factors = grid_factors(rng, 2000, [3, 6, 8])
    ideal = ev.explicitness(factors[:1000], factors[:1000], factors[1000:], factors[1000:])
    assert ideal > 0.9
    codes = permuted_rescaled(factors)  # codes are standardised: the same model up to the solver's tolerance
    np.testing.assert_allclose(ev.explicitness(codes[:1000], factors[:1000], codes[1000:], factors[1000:]), ideal,
                               atol=1e-3)
    noise = rng.normal(size=(2000, 5))
    assert abs(ev.explicitness(noise[:1000], factors[:1000], noise[1000:], factors[1000:]) - 0.5) < 0.05


def test_explicitness_train_and_test_classes_differ(rng):
    # disentanglement_lib fails here (test labels binarised by the test set's own classes).
    factors = grid_factors(rng, 600, [4, 3])
    train, test = factors[:300], factors[300:].copy()
    test[test[:, 0] == 3, 0] = 7  # an unseen class in the test set
    score = ev.explicitness(train, train, test, test)
    assert 0.5 < score <= 1.0


# ---------------------------------------------------------------------------------------------
# DCI
# ---------------------------------------------------------------------------------------------


def test_dci_from_importance_hand_worked():
    def h(p):  # entropy in nats
        p = np.asarray(p, float)
        return -np.sum(p * np.log(p))

    # Codes x factors. Row 0: P = (3/4, 1/4); row 1: (0, 1). Code weights (0.8, 0.2).
    # Column 0: Q = (1, 0), column 1: (1/2, 1/2). Factor weights (0.6, 0.4).
    out = ev.dci_from_importance([[0.6, 0.2], [0.0, 0.2]])
    np.testing.assert_allclose(out["disentanglement"], 0.8 * (1 - h([0.75, 0.25]) / LOG2) + 0.2 * 1.0, atol=1e-8)
    np.testing.assert_allclose(out["completeness"], 0.6 * 1.0 + 0.4 * 0.0, atol=1e-8)
    eye = ev.dci_from_importance(np.eye(3))
    np.testing.assert_allclose([eye["disentanglement"], eye["completeness"]], 1.0, atol=1e-8)
    ones = ev.dci_from_importance(np.ones((4, 3)))
    np.testing.assert_allclose([ones["disentanglement"], ones["completeness"]], 0.0, atol=1e-12)
    zeros = ev.dci_from_importance(np.zeros((4, 3)))  # uniform weights, uniform rows: 0
    np.testing.assert_allclose([zeros["disentanglement"], zeros["completeness"]], 0.0, atol=1e-12)
    # One code used for both factors, one unused: disentanglement 0, completeness 1.
    shared = ev.dci_from_importance([[1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose([shared["disentanglement"], shared["completeness"]], [0.0, 1.0], atol=1e-8)


def test_dci_ideal_permuted_random(rng):
    # Gradient boosting fits 100 x (number of classes) trees per factor: small factors keep this fast.
    factors = grid_factors(rng, 400, [2, 3])
    train, test = factors[:200], factors[200:]
    ideal = ev.dci(train, train, test, test, random_state=0)
    assert set(ideal) == {"disentanglement", "completeness", "informativeness_train", "informativeness_test"}
    assert ideal["disentanglement"] > 0.99 and ideal["completeness"] > 0.99
    assert ideal["informativeness_train"] == 1.0 and ideal["informativeness_test"] == 1.0
    codes = permuted_rescaled(factors)
    moved = ev.dci(codes[:200], train, codes[200:], test, random_state=0)
    for name in ideal:
        np.testing.assert_allclose(moved[name], ideal[name], atol=1e-6)
    noise = rng.normal(size=(400, 3))
    rand = ev.dci(noise[:200], train, noise[200:], test, random_state=0)
    assert rand["disentanglement"] < 0.1 and rand["completeness"] < 0.1
    assert rand["informativeness_test"] < 0.6  # chance: (1/2 + 1/3) / 2 = 0.42


# ---------------------------------------------------------------------------------------------
# SAP
# ---------------------------------------------------------------------------------------------


def test_sap_discrete_hand_worked():
    # Balanced, exactly independent bits; codes (y1, y2, constant). Any function of c1 predicts y2
    # with accuracy 1/2 exactly, as does the constant code; c1 predicts y1 perfectly. Score matrix
    # [[1, .5], [.5, 1], [.5, .5]]: SAP = mean(1 - .5, 1 - .5) = 1/2.
    y = full_factorial(2, 2, repeat=100)
    codes = np.concatenate([y, np.ones((len(y), 1))], axis=1)
    np.testing.assert_allclose(ev.sap(codes, y, codes, y), 0.5, atol=1e-12)


def test_sap_continuous_hand_worked():
    # f1 = 0..3, f2 = (0, 0, 1, 1): cov = 2/3, var f1 = 5/3, var f2 = 1/3, r^2 = 4/5. Codes
    # (f1, constant, 3 f2 + 1): factor f1 scores (1, 0, 4/5), factor f2 (4/5, 0, 1): SAP = 1/5.
    f = np.array([[0, 0], [1, 0], [2, 1], [3, 1]])
    codes = np.stack([f[:, 0], np.full(4, 2.0), 3.0 * f[:, 1] + 1.0], axis=1)
    np.testing.assert_allclose(ev.sap(codes, f, codes, f, continuous_factors=True), 0.2, atol=1e-12)
    # Continuous factors need not be integers; the test set is not used.
    np.testing.assert_allclose(ev.sap(codes, f * 0.5, codes[:2], f[:2] * 0.5, continuous_factors=True), 0.2,
                               atol=1e-12)


def test_sap_ideal_permuted_random(rng):
    factors = grid_factors(rng, 2000, [2, 3, 4])
    train, test = factors[:1000], factors[1000:]
    ideal = ev.sap(train, train, test, test)
    assert ideal > 0.4
    # The SVM is symmetric under permutations and sign flips, and its penalty stops binding once the
    # codes are spread enough: the same score...
    perm = factors[:, [2, 0, 1]] * np.array([-1.0, 2.0, 10.0])
    np.testing.assert_allclose(ev.sap(perm[:1000], train, perm[1000:], test), ideal, atol=1e-12)
    # ...but (documented quirk, C=0.01 and a penalised intercept) not under shifts or shrinking.
    assert ev.sap(train + 3.0, train, test + 3.0, test) != ideal
    assert ev.sap(0.3 * train, train, 0.3 * test, test) < ideal
    # Continuous scoring (squared correlation) is invariant to affine maps.
    shifted = permuted_rescaled(factors)
    np.testing.assert_allclose(ev.sap(shifted[:1000], train, shifted[1000:], test, continuous_factors=True),
                               ev.sap(train, train, test, test, continuous_factors=True), atol=1e-12)
    noise = rng.normal(size=(2000, 5))
    assert ev.sap(noise[:1000], train, noise[1000:], test) < 0.05


# ---------------------------------------------------------------------------------------------
# BetaVAE and FactorVAE
# ---------------------------------------------------------------------------------------------

SIZES = np.array([32, 32, 40, 6])


def sample_grid(rng, n):
    return np.stack([rng.integers(0, s, size=n) for s in SIZES], axis=1)


def identity(x):
    return np.asarray(x, dtype=np.float64)


def noise_encoder(seed, n_codes=4):
    state = np.random.default_rng(seed)
    return lambda x: state.normal(size=(len(x), n_codes))


SMALL = dict(batch_size=16, num_train=400, num_eval=300)


def test_beta_vae_ideal_permuted_random_and_hand_worked():
    ideal = ev.beta_vae_score(identity, sample_grid, identity, 0, **SMALL)
    assert ideal == {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    moved = ev.beta_vae_score(lambda x: permuted_rescaled(identity(x)), sample_grid, identity, 0, **SMALL)
    assert moved["eval_accuracy"] > 0.98
    rand = ev.beta_vae_score(noise_encoder(1), sample_grid, identity, 0, **SMALL)
    assert rand["eval_accuracy"] < 0.4  # chance 1/4
    # Hand-worked: three factors, one code = f0. Points with f0 fixed have feature 0, the others a
    # positive feature whose distribution does not depend on which of f1, f2 was fixed: the
    # classifier gets class 0 right and half of the rest, 1/3 + (2/3)(1/2) = 2/3.
    three = lambda rng, n: rng.integers(0, 32, size=(n, 3))
    only_f0 = ev.beta_vae_score(lambda x: identity(x)[:, :1], three, identity, 0, batch_size=16, num_train=600,
                                num_eval=1500)
    assert abs(only_f0["eval_accuracy"] - 2 / 3) < 0.05


def test_factor_vae_ideal_permuted_random_and_hand_worked():
    ideal = ev.factor_vae_score(identity, sample_grid, identity, 0, num_variance_estimate=2000, **SMALL)
    assert ideal == {"train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 4}
    moved = ev.factor_vae_score(lambda x: permuted_rescaled(identity(x)), sample_grid, identity, 0,
                                num_variance_estimate=2000, **SMALL)
    assert moved == ideal  # global variance normalisation: exactly invariant here
    rand = ev.factor_vae_score(noise_encoder(2), sample_grid, identity, 0, num_variance_estimate=2000, **SMALL)
    assert rand["eval_accuracy"] < 0.4 and rand["num_active_dims"] == 4
    # Collapsed dimensions (std < 0.05 over the data) are dropped before the argmin: a constant and a
    # nearly constant code would otherwise win every vote.
    tiny = np.random.default_rng(3)
    padded = lambda x: np.concatenate([np.zeros((len(x), 1)), identity(x), 0.01 * tiny.normal(size=(len(x), 1))], 1)
    assert ev.factor_vae_score(padded, sample_grid, identity, 0, num_variance_estimate=2000, **SMALL) == ideal
    # Everything collapsed: zeros, as disentanglement_lib.
    dead = ev.factor_vae_score(lambda x: np.zeros((len(x), 3)), sample_grid, identity, 0, **SMALL)
    assert dead == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    # Hand-worked: three factors, codes (f0, f1). Points with f0 or f1 fixed vote for their code;
    # points with f2 fixed split their votes, and each code's majority stays f0 or f1: accuracy 2/3.
    three = lambda rng, n: rng.integers(0, 32, size=(n, 3))
    two_codes = ev.factor_vae_score(lambda x: identity(x)[:, :2], three, identity, 0, batch_size=16, num_train=600,
                                    num_eval=1500, num_variance_estimate=2000)
    assert abs(two_codes["eval_accuracy"] - 2 / 3) < 0.05 and two_codes["num_active_dims"] == 2


def test_sampling_scores_are_seeded_and_encode_in_bounded_batches(monkeypatch):
    monkeypatch.setattr(dis, "ENCODE_BATCH", 100)
    seen = []

    def encode(x):
        seen.append(len(x))
        return identity(x) + np.sin(identity(x))  # deterministic, not identity

    kw = dict(batch_size=8, num_train=60, num_eval=40)
    for score in (ev.beta_vae_score, ev.factor_vae_score):
        first = score(encode, sample_grid, identity, 7, **kw)
        assert score(encode, sample_grid, identity, 7, **kw) == first
        # A typed key and the raw key of the same data seed the same generator.
        assert score(encode, sample_grid, identity, jax.random.key(5), **kw) == \
            score(encode, sample_grid, identity, jax.random.PRNGKey(5), **kw)
    assert max(seen) <= 100 and sum(seen) > 1000


# ---------------------------------------------------------------------------------------------
# Bad input: the error names the argument
# ---------------------------------------------------------------------------------------------

F = np.random.default_rng(0).integers(0, 3, size=(50, 3))
C = np.random.default_rng(1).normal(size=(50, 4))
NAN = C.copy()
NAN[3, 1] = np.nan
CONST = F.copy()
CONST[:, 1] = 2


def bad_sample(shape=None, dtype=int):
    return lambda rng, n: np.zeros(shape or (n, 3), dtype=dtype) + (0.5 if dtype is float else 0)


BAD = [
    (ev.mig, (C[:, 0], F), {}, "`codes`"),
    (ev.mig, (C, F[:40]), {}, "`factors`"),
    (ev.mig, (NAN, F), {}, "`codes`"),
    (ev.mig, (C, F + 0.5), {}, "`factors` must hold integer"),
    (ev.mig, (C, F), {"n_bins": 1}, "`n_bins`"),
    (ev.mig, (C, F), {"n_bins": 2.5}, "`n_bins`"),
    (ev.mig, (C[:, :1], F), {}, "`codes`"),
    (ev.mig, (C, CONST), {}, "`factors` column(s) [1]"),
    (ev.modularity, (C, F[:, :1]), {}, "`factors`"),
    (ev.modularity, (C, F), {"n_bins": 0}, "`n_bins`"),
    (ev.explicitness, (C, F, C[:, :3], F), {}, "`codes_test`"),
    (ev.explicitness, (C, CONST, C, F), {}, "`factors_train`"),
    (ev.explicitness, (C, F, C, F[:, :2]), {}, "`factors_test`"),
    (ev.dci, (C, F, C, F[:30]), {}, "`factors_test`"),
    (ev.dci, (C, F * 0.5, C, F), {}, "`factors_train`"),
    (ev.dci, (C, F, C, F), {"random_state": -1}, "`random_state`"),
    (ev.dci, (C[:, :1], F, C[:, :1], F), {}, "`codes_train`"),
    (ev.dci_from_importance, (-np.eye(2),), {}, "`importance`"),
    (ev.dci_from_importance, (np.ones((1, 3)),), {}, "`importance`"),
    (ev.sap, (C, F, C, F), {"continuous_factors": "no"}, "`continuous_factors`"),
    (ev.sap, (C, F, NAN, F), {}, "`codes_test`"),
    (ev.sap, (C, CONST, C, F), {"continuous_factors": True}, "`factors_train`"),
    (ev.beta_vae_score, (identity, sample_grid, identity, "seed"), {}, "`key_or_seed`"),
    (ev.beta_vae_score, (identity, sample_grid, identity, -1), {}, "`key_or_seed`"),
    (ev.beta_vae_score, (identity, sample_grid, identity, jax.random.split(jax.random.key(0))), {}, "`key_or_seed`"),
    (ev.beta_vae_score, (identity, sample_grid, identity, 0), {"batch_size": 0}, "`batch_size`"),
    (ev.beta_vae_score, (identity, sample_grid, identity, 0), {"num_train": 0}, "`num_train`"),
    (ev.beta_vae_score, (identity, lambda rng, n: rng.integers(0, 3, size=(n, 1)), identity, 0), {},
     "`sample_factors`"),
    (ev.beta_vae_score, (identity, bad_sample((4, 3)), identity, 0), {}, "`sample_factors`"),
    (ev.beta_vae_score, (identity, bad_sample(dtype=float), identity, 0), {}, "`sample_factors`"),
    (ev.factor_vae_score, (identity, sample_grid, identity, 0), {"batch_size": 1}, "`batch_size`"),
    (ev.factor_vae_score, (identity, sample_grid, identity, 0), {"num_eval": -3}, "`num_eval`"),
    (ev.factor_vae_score, (identity, sample_grid, identity, 0), {"num_variance_estimate": 1},
     "`num_variance_estimate`"),
    (ev.factor_vae_score, (lambda x: identity(x)[1:], sample_grid, identity, 0), {}, "`encode`"),
    (ev.factor_vae_score, (lambda x: identity(x) * np.nan, sample_grid, identity, 0), {}, "`encode`"),
]


@pytest.mark.parametrize("fn,args,kwargs,match", BAD, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(fn, args, kwargs, match):
    with pytest.raises((ValueError, TypeError)) as info:
        fn(*args, **kwargs)
    assert match in str(info.value)

"""mcc and dictionary_mcc against brute force over all matchings, with numpy/scipy/sklearn similarities."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from sklearn.metrics.pairwise import cosine_similarity

from jaxsparse.eval import dictionary_mcc, mcc


def brute_force(similarity):
    """Best mean similarity over every injective map rows -> columns, and the map achieving it."""
    n_true, n_learned = similarity.shape
    best = max(itertools.permutations(range(n_learned), n_true), key=lambda p: similarity[range(n_true), p].sum())
    return similarity[range(n_true), best].mean(), np.array(best)


def reference_abs_corr(z_true, z_hat, method):
    n_true = z_true.shape[1]
    if method == "pearson":
        full = np.corrcoef(z_true, z_hat, rowvar=False)
    else:
        full = scipy.stats.spearmanr(z_true, z_hat).statistic
    return np.abs(full[:n_true, n_true:])


def mixed_latents(rng, n_samples, n_true, n_learned):
    """Learned latents that are noisy mixtures of the true ones, so the matching is not trivial."""
    z_true = rng.laplace(size=(n_samples, n_true))
    mixing = rng.normal(size=(n_true, n_learned))
    z_hat = z_true @ mixing + 0.5 * rng.normal(size=(n_samples, n_learned))
    return z_true, np.tanh(z_hat)  # tanh: Pearson and Spearman differ


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("n_true,n_learned", [(4, 4), (3, 5)])
def test_mcc_equals_brute_force(rng, method, n_true, n_learned):
    for _ in range(5):
        z_true, z_hat = mixed_latents(rng, 200, n_true, n_learned)
        similarity = reference_abs_corr(z_true, z_hat, method)
        expected, best = brute_force(similarity)
        out = mcc(z_true, z_hat, method=method)
        assert isinstance(out["mcc"], float)
        np.testing.assert_allclose(out["mcc"], expected, rtol=1e-12)
        np.testing.assert_array_equal(out["matching"], best)
        np.testing.assert_allclose(out["correlations"], similarity[range(n_true), best], rtol=1e-12)


def test_spearman_ties_match_scipy(rng):
    z_true = rng.integers(0, 4, size=(300, 3))  # integer factors with many ties
    z_hat = z_true[:, [1, 2, 0]] + rng.normal(scale=2.0, size=(300, 3))
    similarity = reference_abs_corr(z_true, z_hat, "spearman")
    out = mcc(z_true, z_hat, method="spearman")
    np.testing.assert_allclose(out["mcc"], brute_force(similarity)[0], rtol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_mcc_one_for_permuted_rescaled_copy(rng, method):
    z_true = rng.normal(size=(500, 6))
    perm = rng.permutation(6)
    scales = np.array([2.0, -0.5, 3.0, -1.0, 0.1, -7.0])
    z_hat = z_true[:, perm] * scales + scales  # also shifted
    extra = rng.normal(size=(500, 4))  # unmatched learned latents cost nothing
    out = mcc(z_true, np.concatenate([z_hat, extra], axis=1), method=method)
    np.testing.assert_allclose(out["mcc"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(out["correlations"], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(out["matching"], np.argsort(perm))  # the inverse permutation
    np.testing.assert_array_equal(perm[out["matching"]], np.arange(6))


def test_spearman_invariant_to_monotone_maps(rng):
    z_true = rng.normal(size=(400, 3))
    z_hat = np.stack([np.exp(z_true[:, 2]), -(z_true[:, 0] ** 3), z_true[:, 1]], axis=1)
    assert mcc(z_true, z_hat, method="spearman")["mcc"] == pytest.approx(1.0, rel=1e-12)
    assert mcc(z_true, z_hat, method="pearson")["mcc"] < 0.95


def test_constant_columns_give_zero_not_nan(rng):
    z_true = rng.normal(size=(100, 3))
    z_true[:, 1] = 0.1  # constant true latent; 0.1 is not exactly representable, so centring leaves round-off
    z_hat = np.concatenate([z_true[:, [2, 0]], np.zeros((100, 1)), np.full((100, 1), 3.3)], axis=1)  # dead latents
    for method in ("pearson", "spearman"):
        out = mcc(z_true, z_hat, method=method)
        assert np.all(np.isfinite(out["correlations"]))
        np.testing.assert_allclose(out["correlations"], [1.0, 0.0, 1.0], atol=1e-12)
        np.testing.assert_allclose(out["mcc"], 2 / 3, rtol=1e-12)
        np.testing.assert_array_equal(out["matching"][[0, 2]], [1, 0])


def test_mcc_accepts_jax_and_integer_codes(rng):
    z_true = rng.integers(0, 3, size=(50, 2))
    z_hat = jnp.asarray(z_true[:, ::-1], dtype=jnp.float32)
    out = mcc(z_true, z_hat)
    np.testing.assert_allclose(out["mcc"], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out["matching"], [1, 0])
    assert out["matching"].dtype == np.int64


def test_mcc_bad_inputs(rng):
    z = rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match="`method`"):
        mcc(z, z, method="kendall")
    with pytest.raises(ValueError, match="`z_true`"):
        mcc(z[:, 0], z)
    with pytest.raises(ValueError, match="`z_hat`"):
        mcc(z, z[None])
    with pytest.raises(ValueError, match="`z_hat`.*samples"):
        mcc(z, z[:10])
    with pytest.raises(ValueError, match="`z_hat`.*at least as many"):
        mcc(z, z[:, :2])
    with pytest.raises(ValueError, match="`z_true`.*empty"):
        mcc(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="`z_true`.*at least 2 samples"):
        mcc(z[:1], z[:1])
    bad = z.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="`z_hat`.*NaN"):
        mcc(z, bad)
    with pytest.raises(TypeError, match="`z_true`.*dtype"):
        mcc(z.astype(np.complex128), z)
    with pytest.raises(TypeError, match="`z_hat`.*array"):
        mcc(z, "latents")
    with pytest.raises(TypeError, match="`z_true`.*concrete"):
        jax.jit(lambda a: mcc(a, a)["mcc"])(jnp.asarray(z))


def test_dictionary_mcc_one_for_permuted_sign_flipped_copy(rng):
    d_true = rng.normal(size=(16, 8))
    d_true /= np.linalg.norm(d_true, axis=1, keepdims=True)
    perm = rng.permutation(16)
    signs = rng.choice([-1.0, 1.0], size=(16, 1))
    d_hat = np.concatenate([d_true[perm] * signs * 2.5, rng.normal(size=(8, 8))])  # 8 extra atoms
    out = dictionary_mcc(d_true, d_hat)
    np.testing.assert_allclose(out["mcc"], 1.0, rtol=1e-12)
    np.testing.assert_array_equal(out["matching"], np.argsort(perm))


@pytest.mark.parametrize("n_true,n_learned", [(4, 4), (3, 5)])
def test_dictionary_mcc_equals_brute_force(rng, n_true, n_learned):
    for _ in range(5):
        d_true = rng.normal(size=(n_true, 6))
        d_hat = rng.normal(size=(n_learned, n_true)) @ d_true + 0.3 * rng.normal(size=(n_learned, 6))
        similarity = np.abs(cosine_similarity(d_true, d_hat))
        expected, best = brute_force(similarity)
        out = dictionary_mcc(d_true, d_hat)
        np.testing.assert_allclose(out["mcc"], expected, rtol=1e-12)
        np.testing.assert_array_equal(out["matching"], best)
        np.testing.assert_allclose(out["correlations"], similarity[range(n_true), best], rtol=1e-12)


def test_dictionary_mcc_zero_atom_gives_zero(rng):
    d_true = np.eye(3, 4)
    d_hat = np.concatenate([np.zeros((1, 4)), np.eye(3, 4)[[1, 0]]])  # one true atom lost
    out = dictionary_mcc(d_true, d_hat)
    np.testing.assert_allclose(out["correlations"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(out["matching"], [2, 1, 0])


def test_dictionary_mcc_bad_inputs(rng):
    d = rng.normal(size=(5, 4))
    with pytest.raises(ValueError, match="`d_hat`.*n_features"):
        dictionary_mcc(d, d[:, :3])
    with pytest.raises(ValueError, match="`d_hat`.*at least as many"):
        dictionary_mcc(d, d[:4])
    with pytest.raises(ValueError, match="`d_true`.*dimension"):
        dictionary_mcc(d[0], d)
    with pytest.raises(TypeError, match="`d_true`.*floating"):
        dictionary_mcc(np.ones((5, 4), dtype=np.int32), d)
    with pytest.raises(ValueError, match="`d_hat`.*infinite"):
        dictionary_mcc(d, np.where(d > 0, np.inf, d))


def test_mcc_hand_worked_greedy_trap():
    """Two latents, three samples, correlations worked by hand; the best single pair (0.982) is not
    in the optimal matching, so a greedy matcher would give (9/sqrt(84) + 1/2) / 2 = 0.741."""
    z_true = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])    # u = (0, 1, 2), v = (1, 0, 0)
    z_hat = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 1.0]])     # h0 = (0, 1, 3), h1 = (0, 0, 1)
    # Pearson: rho(u,h0) = 9/sqrt(84), rho(u,h1) = sqrt(3)/2, rho(v,h0) = -2/sqrt(7), rho(v,h1) = -1/2.
    out = mcc(z_true, z_hat, method="pearson")
    np.testing.assert_array_equal(out["matching"], [1, 0])
    np.testing.assert_allclose(out["correlations"], [np.sqrt(3) / 2, 2 / np.sqrt(7)], rtol=1e-12)
    np.testing.assert_allclose(out["mcc"], (np.sqrt(3) / 2 + 2 / np.sqrt(7)) / 2, rtol=1e-12)  # 0.81096
    # Spearman (ranks, ties averaged): rho_s(u,h0) = 1, rho_s(u,h1) = sqrt(3)/2, rho_s(v,h0) = -sqrt(3)/2,
    # rho_s(v,h1) = -1/2, so the swap (sqrt(3)) beats the identity (1.5).
    out = mcc(z_true, z_hat, method="spearman")
    np.testing.assert_array_equal(out["matching"], [1, 0])
    np.testing.assert_allclose(out["mcc"], np.sqrt(3) / 2, rtol=1e-12)
    # One latent: 9/sqrt(84) = 0.98198, below 1 without any clipping involved.
    np.testing.assert_allclose(mcc(z_true[:, :1], z_hat[:, :1])["mcc"], 9 / np.sqrt(84), rtol=1e-12)


def test_similarity_above_one_is_an_error_not_clipped(monkeypatch):
    """Only round-off above 1 is absorbed; an unnormalised similarity raises instead of reading as 1."""
    import jaxsparse.eval.matching as matching

    out = matching._match(np.array([[1.0 + 1e-13, 0.2], [0.1, 0.5]]))
    np.testing.assert_allclose(out["correlations"], [1.0, 0.5])
    assert out["mcc"] <= 1.0
    with pytest.raises(RuntimeError, match="normalisation bug"):
        matching._match(np.array([[1.5, 0.0], [0.0, 1.0]]))
    # A broken standardisation (centred, not unit-norm) is caught through the public metric.
    monkeypatch.setattr(matching, "_standardised", lambda z: z - z.mean(axis=0))
    z = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(RuntimeError, match="normalisation bug"):
        mcc(z, 3.0 * z)

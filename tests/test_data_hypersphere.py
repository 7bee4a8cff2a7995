"""jaxsparse.data.hypersphere: vMF sampling against closed forms and scipy, clusters, invertible mixing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxsparse.data import hypersphere
from jaxsparse.data.hypersphere import (
    cluster_centres,
    clustered_latents,
    condition_numbers,
    mixing_apply,
    mixing_init,
    mixing_inverse,
    uniform_sphere,
    vmf,
)

N = 20_000  # samples per statistical check: one size, so each d compiles once
KEY = jax.random.key(0)


def mean_resultant_length(d, kappa):
    """A_d(κ) = I_{d/2}(κ) / I_{d/2-1}(κ), with exponentially scaled Bessel functions (float64)."""
    kappa = np.asarray(kappa, np.float64)
    return special.ive(d / 2, kappa) / special.ive(d / 2 - 1, kappa)


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def random_direction(d, seed):
    return unit(np.random.default_rng(seed).normal(size=d)).astype(np.float32)


# -------------------------------------------------------------------------------- vMF statistics


@pytest.mark.parametrize("d", [2, 3, 5, 10, 20])
def test_mean_resultant_length_matches_bessel_ratio(d):
    mu = random_direction(d, d)
    # d = 5 goes through the per-row path (mu of shape [n, d]), which clustered_latents uses.
    mu_arg = np.broadcast_to(mu, (N, d)) if d == 5 else mu
    for kappa in (1.0, 10.0, 50.0, 1000.0):  # kappa is traced: one compile per d
        x = np.asarray(vmf(jax.random.key(d), mu_arg, kappa, N), np.float64)
        a = mean_resultant_length(d, kappa)
        assert abs(np.linalg.norm(x.mean(0)) - a) < 1e-2
        # E[x] = A_d(κ) mu componentwise (standard error <= 1/sqrt(N) = 0.007 per component), and
        # 1 - E[mu.x] to a few percent even where A_d(κ) ≈ 1 (κ = 1000: 1 - A ≈ (d-1)/2000; the
        # relative standard error of the mean of 1 - w is about sqrt(2/(d-1)/N) <= 1%).
        np.testing.assert_allclose(x.mean(0), a * mu, atol=0.03)
        np.testing.assert_allclose(np.mean(1 - x @ unit(mu)), 1 - a, rtol=0.05)


def tangent_basis(mu):
    """Two orthonormal vectors spanning the plane orthogonal to a unit mu in R^3."""
    q, _ = np.linalg.qr(np.stack([mu, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], axis=1).astype(np.float64))
    return q[:, 1], q[:, 2]


@pytest.mark.parametrize("kappa", [0.5, 5.0, 50.0])
def test_d3_matches_scipy_vonmises_fisher_in_distribution(kappa):
    mu = random_direction(3, 3)
    x = np.asarray(vmf(jax.random.key(11), mu, kappa, N), np.float64)
    ref = stats.vonmises_fisher(unit(mu), kappa).rvs(N, random_state=np.random.default_rng(3))
    w, w_ref = x @ unit(mu), ref @ unit(mu)
    e1, e2 = tangent_basis(unit(mu))
    angle, angle_ref = np.arctan2(x @ e2, x @ e1), np.arctan2(ref @ e2, ref @ e1)
    assert stats.ks_2samp(w, w_ref).pvalue > 1e-3
    assert stats.ks_2samp(angle, angle_ref).pvalue > 1e-3
    # d = 3 has a closed-form CDF of w = mu.x, F(w) = (exp(κ(w-1)) - exp(-2κ)) / (1 - exp(-2κ)),
    # and the tangent angle is uniform.
    cdf = lambda t: (np.exp(kappa * (t - 1)) - np.exp(-2 * kappa)) / -np.expm1(-2 * kappa)  # noqa: E731
    assert stats.kstest(w, cdf).pvalue > 1e-3
    assert stats.kstest(angle, stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue > 1e-3


def test_d2_is_the_von_mises_circle_and_d10_matches_scipy():
    # d = 2: the angle to mu is von Mises(0, κ); Wood's proposal is Beta(1/2, 1/2) here.
    kappa = 2.0
    mu = random_direction(2, 2)
    x = np.asarray(vmf(jax.random.key(2), mu, kappa, N), np.float64)
    theta = np.arctan2(mu[0] * x[:, 1] - mu[1] * x[:, 0], x @ unit(mu))
    assert stats.kstest(theta, stats.vonmises(kappa).cdf).pvalue > 1e-3
    # d = 10: w = mu.x against scipy's sampler.
    mu = random_direction(10, 10)
    x = np.asarray(vmf(jax.random.key(3), mu, 20.0, N), np.float64)
    ref = stats.vonmises_fisher(unit(mu), 20.0).rvs(N, random_state=np.random.default_rng(4))
    assert stats.ks_2samp(x @ unit(mu), ref @ unit(mu)).pvalue > 1e-3


def test_kappa_zero_is_uniform_and_uniform_sphere():
    # Archimedes: on S^2 the height mu.x of a uniform point is Uniform(-1, 1).
    mu = random_direction(3, 3)
    x = np.asarray(vmf(jax.random.key(5), mu, 0.0, N), np.float64)
    assert stats.kstest(x @ unit(mu), stats.uniform(-1, 2).cdf).pvalue > 1e-3
    u = np.asarray(uniform_sphere(jax.random.key(6), N, 3), np.float64)
    assert u.shape == (N, 3)
    assert stats.kstest(u[:, 2], stats.uniform(-1, 2).cdf).pvalue > 1e-3
    # d = 10: vMF(κ = 0) and uniform_sphere agree on every coordinate; E[u] = 0, E[u uᵀ] = I/d.
    mu = random_direction(10, 10)
    x = np.asarray(vmf(jax.random.key(7), mu, 0, N))
    u = np.asarray(uniform_sphere(jax.random.key(8), N, 10), np.float64)
    for j in range(10):
        assert stats.ks_2samp(x[:, j], u[:, j]).pvalue > 1e-3
    np.testing.assert_allclose(u.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(u.T @ u / N, np.eye(10) / 10, atol=0.01)


@pytest.mark.parametrize("d", [2, 3, 10])
def test_samples_are_unit_norm_with_the_input_dtype(d):
    mu = random_direction(d, d)
    for kappa in (0.0, 3.0, 1e3):
        x = vmf(KEY, mu, kappa, N)
        assert x.shape == (N, d) and x.dtype == jnp.float32
        np.testing.assert_allclose(np.linalg.norm(np.asarray(x, np.float64), axis=-1), 1, atol=1e-6)
    # An unnormalised mu is normalised.
    np.testing.assert_allclose(vmf(KEY, 3 * mu, 3.0, N), vmf(KEY, mu, 3.0, N), atol=1e-6)
    if d == 3:  # a single sample (36 proposals)
        x = np.asarray(vmf(KEY, mu, 3.0, 1), np.float64)
        assert x.shape == (1, 3) and abs(np.linalg.norm(x) - 1) < 1e-6


@pytest.mark.parametrize("d", [3, 10])
def test_large_kappa_is_finite_and_concentrated(d):
    mu = random_direction(d, d)
    kappa = 1e5
    x = np.asarray(vmf(KEY, mu, kappa, N), np.float64)
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1, atol=1e-6)
    # 1 - mu.x is of order (d-1)/(2κ) = 1e-5..5e-5: read it off |x - mu|^2 / 2, not off mu.x in float32.
    half_sq = 0.5 * np.sum((x - mu.astype(np.float64)) ** 2, axis=-1)
    np.testing.assert_allclose(half_sq.mean(), 1 - mean_resultant_length(d, kappa), rtol=0.03)
    # Far beyond any practical concentration the samples sit on mu.
    x = np.asarray(vmf(KEY, mu, 1e30, N))
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x, np.broadcast_to(mu, x.shape), atol=1e-6)


def test_enough_proposals_for_woods_acceptance_rate():
    from jaxsparse.data.hypersphere import ACCEPT_BOUND, n_proposals

    # Wood's acceptance probability (NumPy Monte Carlo) stays above the bound the sampler assumes;
    # its minimum, about 0.656, is reached at d = 2 for large κ.
    rng = np.random.default_rng(0)
    for d in (2, 3, 10, 100):
        for kappa in (0.0, 1.0, 10.0, 1e2, 1e4):
            m = d - 1
            b = m / (2 * kappa + np.hypot(2 * kappa, m))
            a = 2 * b / (1 + b)
            z = rng.beta(m / 2, m / 2, 20_000)
            v = 2 * b * z / (1 - (1 - b) * z)
            log_ratio = kappa * (a - v) + m * (np.log(a + v - a * v) - np.log(a * (2 - a)))
            rate = np.mean(log_ratio >= np.log(rng.uniform(size=z.size)))
            assert rate > ACCEPT_BOUND + 0.04, (d, kappa, rate)
    # n_proposals(n) is the smallest M with P(Binomial(M, 0.6) < n) <= 1e-14.
    for n in (1, 7, 1024, N):
        m = n_proposals(n)
        assert stats.binom.cdf(n - 1, m, ACCEPT_BOUND) <= 1e-14 < stats.binom.cdf(n - 1, m - 1, ACCEPT_BOUND)
    assert n_proposals(1) == 36 and n_proposals(1024) < 2 * 1024 and n_proposals(N) < 1.75 * N


# -------------------------------------------------------------------------------- jit / vmap / keys


def test_jit_vmap_and_key_determinism():
    d, n, kappa = 3, N, 10.0
    mus = np.stack([random_direction(d, s) for s in (3, 4, 5, 6)])
    mus[1] = -np.eye(d)[0]  # mu = -e_1 and e_1 take both branches of the Householder sign
    mus[2] = np.eye(d)[0]
    keys = jax.random.split(KEY, 4)
    eager = np.stack([vmf(k, m, kappa, n) for k, m in zip(keys, mus)])
    # jit of vmap over keys and mu, kappa traced: the same samples.
    sample = jax.jit(jax.vmap(lambda k, m, kap: vmf(k, m, kap, n), in_axes=(0, 0, None)))
    batched = sample(keys, jnp.asarray(mus), kappa)
    np.testing.assert_allclose(batched, eager, atol=1e-6)
    # Each batch concentrates around its own mu.
    cos = np.einsum("bnd,bd->bn", np.asarray(batched, np.float64), mus).mean(axis=1)
    np.testing.assert_allclose(cos, mean_resultant_length(d, kappa), atol=0.01)
    # Same key, same samples; other keys, other samples.
    np.testing.assert_array_equal(vmf(keys[0], mus[0], kappa, n), eager[0])
    assert not np.allclose(vmf(keys[1], mus[0], kappa, n), eager[0])
    np.testing.assert_array_equal(uniform_sphere(KEY, N, d), uniform_sphere(KEY, N, d))


# -------------------------------------------------------------------------------- clusters


def test_clustered_latents_and_one_sample_per_row():
    d, k, kappa = 5, 7, 10.0
    a = mean_resultant_length(d, kappa)
    # vmf with mu of shape [n, d]: one sample around each row.
    rows = np.random.default_rng(1).normal(size=(N, d)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=-1, keepdims=True)
    x = np.asarray(vmf(KEY, rows, kappa, N), np.float64)
    assert x.shape == (N, d)
    np.testing.assert_allclose(np.mean(np.sum(x * np.asarray(rows), -1)), a, atol=0.01)
    centres = cluster_centres(jax.random.key(1), k, d)
    assert centres.shape == (k, d)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(centres, np.float64), axis=-1), 1, atol=1e-6)
    z, labels = clustered_latents(jax.random.key(2), centres, kappa, N)
    assert z.shape == (N, d) and labels.shape == (N,) and labels.dtype == jnp.int32
    z, labels, c64 = np.asarray(z, np.float64), np.asarray(labels), np.asarray(centres, np.float64)
    assert stats.chisquare(np.bincount(labels, minlength=k)).pvalue > 1e-3
    # Each sample scatters around its own centre: E[c_y . z] = A_d(κ), and per cluster the mean
    # vector is A_d(κ) c_j.
    np.testing.assert_allclose(np.mean(np.sum(z * c64[labels], -1)), a, atol=0.01)
    for j in range(k):
        np.testing.assert_allclose(z[labels == j].mean(0), a * c64[j], atol=0.03)
    # csi's labels: instance index i uniform over n_indices, cluster i mod K.
    idx = np.random.default_rng(0).integers(0, 10240, N)
    z2, l2 = clustered_latents(jax.random.key(4), centres, kappa, N, labels=idx % k)
    np.testing.assert_array_equal(l2, idx % k)
    np.testing.assert_allclose(np.mean(np.sum(np.asarray(z2, np.float64) * c64[idx % k], -1)), a, atol=0.01)
    # Traceable under jit and vmap with kappa and labels traced (value checks skipped on tracers).
    f = jax.vmap(lambda key, kap, lab: clustered_latents(key, centres, kap, N, labels=lab), in_axes=(0, None, None))
    out = jax.eval_shape(jax.jit(f), jax.random.split(KEY, 2), kappa, jnp.asarray(idx % k))
    assert out[0].shape == (2, N, d) and out[1].shape == (2, N)


# -------------------------------------------------------------------------------- invertible mixing


def reference_mixing(params, z, slope=0.2):
    """cl-ica's nn.Sequential(Linear, LeakyReLU, ..., Linear), bias-free, in numpy float64."""
    h = np.asarray(z, np.float64)
    for i, w in enumerate(params):
        h = h @ np.asarray(w, np.float64)
        if i < len(params) - 1:
            h = np.where(h >= 0, h, slope * h)
    return h


def uniform_pool_conditions(d, n, seed=0):
    """Condition numbers of n matrices with Uniform(-1, 1) entries and unit-norm rows (numpy)."""
    w = np.random.default_rng(seed).uniform(-1, 1, (n, d, d))
    w /= np.linalg.norm(w, axis=-1, keepdims=True)
    return np.linalg.cond(w)


N_CANDIDATES = 2_000  # candidate matrices per layer in the tests (default 10,000): one compile, fast


@pytest.fixture(scope="module")
def mixing10():
    """A default mixing for d = 10 (4 layers, lower-quartile conditioning), drawn once."""
    return mixing_init(jax.random.key(0), 10, n_candidates=N_CANDIDATES)


def test_mixing_is_the_cl_ica_mlp_and_its_inverse_is_exact(mixing10):
    d, params = 10, mixing10
    assert isinstance(params, list) and len(params) == 4
    for w in params:
        assert w.shape == (d, d) and w.dtype == jnp.float32
        np.testing.assert_allclose(np.linalg.norm(np.asarray(w, np.float64), axis=-1), 1, atol=1e-6)
    z = uniform_sphere(jax.random.key(1), N, d)
    x = mixing_apply(params, z)
    np.testing.assert_allclose(x, reference_mixing(params, z), rtol=1e-5, atol=1e-5)
    # Nonlinear: g(-z) != -g(z).
    assert not np.allclose(mixing_apply(params, -np.asarray(z)), -x, atol=1e-3)
    # float32 round trip: the forward pass's rounding (~1e-7 |x|) is amplified by up to the product
    # of the condition numbers (~1e4 here) and 1/slope per activation; measured max error 1.8e-4.
    np.testing.assert_allclose(mixing_inverse(params, x), z, atol=1e-3)
    # float64: exact to 1e-10; leading batch axes kept.
    with jax.enable_x64(True):
        p64 = [np.asarray(w, np.float64) for w in params]
        z64 = np.asarray(z, np.float64).reshape(100, N // 100, d)
        x64 = mixing_apply(p64, z64)
        assert x64.shape == (100, N // 100, d) and x64.dtype == jnp.float64
        np.testing.assert_allclose(mixing_inverse(p64, x64), z64, atol=1e-10)
    # Other slopes and depths (one layer: purely linear).
    p1 = [params[0]]
    np.testing.assert_allclose(mixing_apply(p1, z), np.asarray(z) @ np.asarray(p1[0]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixing_inverse(params, mixing_apply(params, z, slope=0.5), slope=0.5), z, atol=1e-3)


def test_mixing_condition_numbers_are_bounded(mixing10):
    d, params = 10, mixing10
    pool = uniform_pool_conditions(d, 10_000)
    # Default: every layer at most the lower quartile of the uniform matrices' condition numbers.
    cond = np.asarray(condition_numbers(params), np.float64)
    np.testing.assert_allclose(cond, [np.linalg.cond(np.asarray(w, np.float64)) for w in params], rtol=1e-4)
    assert np.all(cond <= 1.05 * np.quantile(pool, 0.25)), (cond, np.quantile(pool, 0.25))
    # csi's setting (ratio 0: the best of the pool) is far better conditioned.
    # (The best of 2,000 exceeds the 0.5% quantile with probability 0.995^2000 = 4e-5.)
    p0 = mixing_init(jax.random.key(0), d, cond_threshold_ratio=0.0, n_candidates=N_CANDIDATES)
    best = np.asarray(condition_numbers(p0))
    assert np.all(best <= np.quantile(pool, 0.005)), (best, np.quantile(pool, 0.005))
    assert not np.allclose(p0[0], params[0])  # same pool, another pick
    # Deterministic for a key; traceable under jit and vmap over keys.
    again = mixing_init(jax.random.key(0), d, n_layers=4, n_candidates=N_CANDIDATES)
    for wa, wb in zip(params, again):
        np.testing.assert_array_equal(wa, wb)
    stacked = jax.eval_shape(jax.jit(jax.vmap(lambda k: mixing_init(k, d))), jax.random.split(KEY, 3))
    assert len(stacked) == 4 and stacked[0].shape == (3, d, d)
    z = jax.ShapeDtypeStruct((7, d), jnp.float32)
    assert jax.eval_shape(jax.jit(lambda p, z: mixing_inverse(p, mixing_apply(p, z))), params, z).shape == (7, d)


# -------------------------------------------------------------------------------- bad arguments


MU3 = np.asarray([0.0, 0.0, 1.0], np.float32)
CENTRES = np.eye(3, dtype=np.float32)
PARAMS = [np.eye(3, dtype=np.float32)] * 2


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda: uniform_sphere(KEY, 10, 1), ValueError, "`d`"),
        (lambda: uniform_sphere(KEY, 0, 3), ValueError, "`n`"),
        (lambda: uniform_sphere(KEY, 10, 3.0), TypeError, "`d`"),
        (lambda: uniform_sphere(KEY, 10, 3, dtype=np.int32), TypeError, "`dtype`"),
        (lambda: cluster_centres(KEY, 0, 3), ValueError, "`n_clusters`"),
        (lambda: cluster_centres(KEY, 5, 1), ValueError, "`d`"),
        (lambda: vmf(KEY, MU3, -1.0, 10), ValueError, "`kappa`"),
        (lambda: vmf(KEY, MU3, float("nan"), 10), ValueError, "`kappa`"),
        (lambda: vmf(KEY, MU3, np.ones(2), 10), TypeError, "`kappa`"),
        (lambda: vmf(KEY, MU3, 1.0, 0), ValueError, "`n`"),
        (lambda: vmf(KEY, MU3, 1.0, 2.5), TypeError, "`n`"),
        (lambda: vmf(KEY, np.ones((2, 3)), 1.0, 10), ValueError, "`mu`"),
        (lambda: vmf(KEY, np.ones((1, 2, 3)), 1.0, 10), ValueError, "`mu`"),
        (lambda: vmf(KEY, np.ones(1), 1.0, 10), ValueError, "`mu`"),
        (lambda: vmf(KEY, np.zeros(3), 1.0, 10), ValueError, "`mu`"),
        (lambda: vmf(KEY, np.asarray([0, 0, 1]), 1.0, 10), TypeError, "`mu`"),
        (lambda: vmf(KEY, np.asarray([0.0, np.nan, 1.0]), 1.0, 10), ValueError, "`mu`"),
        (lambda: clustered_latents(KEY, MU3, 1.0, 10), ValueError, "`centres`"),
        (lambda: clustered_latents(KEY, np.ones((3, 1)), 1.0, 10), ValueError, "`centres`"),
        (lambda: clustered_latents(KEY, CENTRES, -0.5, 10), ValueError, "`kappa`"),
        (lambda: clustered_latents(KEY, CENTRES, 1.0, 0), ValueError, "`n`"),
        (lambda: clustered_latents(KEY, CENTRES, 1.0, 4, labels=np.asarray([0, 1, 2, 3])), ValueError, "`labels`"),
        (lambda: clustered_latents(KEY, CENTRES, 1.0, 4, labels=np.zeros(3, np.int32)), ValueError, "`labels`"),
        (lambda: clustered_latents(KEY, CENTRES, 1.0, 2, labels=np.zeros(2)), TypeError, "`labels`"),
        (lambda: mixing_init(KEY, 1), ValueError, "`d`"),
        (lambda: mixing_init(KEY, 3, n_layers=0), ValueError, "`n_layers`"),
        (lambda: mixing_init(KEY, 3, cond_threshold_ratio=1.5), ValueError, "`cond_threshold_ratio`"),
        (lambda: mixing_init(KEY, 3, cond_threshold_ratio="low"), TypeError, "`cond_threshold_ratio`"),
        (lambda: mixing_init(KEY, 3, n_candidates=0), ValueError, "`n_candidates`"),
        (lambda: mixing_apply(PARAMS, np.ones((5, 4))), ValueError, "`z`"),
        (lambda: mixing_apply(PARAMS, np.ones((5, 3)), slope=0.0), ValueError, "`slope`"),
        (lambda: mixing_apply(PARAMS, np.ones((5, 3)), slope=-0.2), ValueError, "`slope`"),
        (lambda: mixing_apply([np.eye(3), np.ones((3, 4))], np.ones((5, 3))), ValueError, r"`params\[1\]`"),
        (lambda: mixing_apply(np.eye(3), np.ones((5, 3))), TypeError, "`params`"),
        (lambda: mixing_inverse(PARAMS, np.ones((5, 2))), ValueError, "`x`"),
        (lambda: mixing_inverse(PARAMS, np.ones((5, 3), np.int32)), TypeError, "`x`"),
        (lambda: condition_numbers([]), TypeError, "`params`"),
    ],
)
def test_bad_arguments_name_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()


def test_module_is_exported():
    import jaxsparse.data

    assert jaxsparse.data.hypersphere is hypersphere
    assert "hypersphere" in jaxsparse.data.__all__

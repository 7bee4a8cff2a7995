"""Solvers: one shared table of checks for every solver, plus each solver's oracle test."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import Lasso, orthogonal_mp

from jaxsparse.data import random_dictionary, sparse_coding_data
from jaxsparse.solvers import (
    fista, homotopy, ista, lasso_objective, matching_pursuit, omp, soft_threshold, top_k,
)

SOLVERS = {
    "ista": functools.partial(ista, lam=0.01, n_iter=3000, nonneg=True),
    "fista": functools.partial(fista, lam=0.01, n_iter=300, nonneg=True),
    "fista_norestart": functools.partial(fista, lam=0.01, n_iter=600, nonneg=True, restart=False),
    "homotopy": functools.partial(homotopy, lam=0.01, nonneg=True),
    "omp": functools.partial(omp, k=3),
    "matching_pursuit": functools.partial(matching_pursuit, n_iter=60, nonneg=True),
}


def _problem(seed=0, n_samples=64, n_latents=16, n_features=8, k=3):
    return sparse_coding_data(jax.random.key(seed), n_samples, n_latents, n_features, k)


# ---------------------------------------------------------------- shared table
@pytest.mark.parametrize("name", SOLVERS)
def test_converges_on_known_problem(name):
    # Orthonormal dictionary (every solver is exact up to the l1 shrinkage), 2-sparse codes.
    d = jnp.linalg.qr(jax.random.normal(jax.random.key(2), (8, 8)))[0]
    x, z, _ = sparse_coding_data(jax.random.key(3), 64, 8, 8, 2, dictionary=d)
    solver = SOLVERS[name] if name != "omp" else functools.partial(omp, k=2)
    z_hat = solver(d, x)
    np.testing.assert_allclose(z_hat, z, atol=0.011)  # shrinkage lam = 0.01 at most


@pytest.mark.parametrize("name", SOLVERS)
def test_no_recompile_jit_vmap_dtype(name):
    solver = SOLVERS[name]
    x, _, d = _problem()
    z1 = solver(d, x)
    assert z1.shape == (64, 16) and z1.dtype == jnp.float32
    before = _cache_size(name)
    z2 = solver(d, x + 0.0)
    assert _cache_size(name) == before
    np.testing.assert_array_equal(z1, z2)
    # under jit
    np.testing.assert_allclose(jax.jit(solver)(d, x), z1, rtol=1e-5, atol=1e-6)
    # under vmap over a leading axis of dictionaries (seeds)
    ds = jax.vmap(lambda k: random_dictionary(k, 16, 8))(jax.random.split(jax.random.key(1), 3))
    zs = jax.vmap(solver, in_axes=(0, None))(ds, x)
    assert zs.shape == (3, 64, 16)
    np.testing.assert_allclose(zs[1], solver(ds[1], x), rtol=1e-4, atol=1e-5)


def _cache_size(name):
    import sys

    module = {"omp": "omp", "matching_pursuit": "matching_pursuit", "homotopy": "homotopy"}.get(name, "proximal")
    module = sys.modules[f"jaxsparse.solvers.{module}"]
    fn = {"omp": "_omp", "matching_pursuit": "_matching_pursuit", "homotopy": "_homotopy"}.get(
        name, "_proximal_gradient"
    )
    return getattr(module, fn)._cache_size()


@pytest.mark.parametrize("name", SOLVERS)
def test_float64_kept(name):
    with jax.enable_x64(True):
        x, _, d = sparse_coding_data(jax.random.key(0), 8, 16, 8, 3, dtype=jnp.float64)
        assert SOLVERS[name](d, x).dtype == jnp.float64


@pytest.mark.parametrize("name", SOLVERS)
def test_batch_axes(name):
    x, _, d = _problem()
    z = SOLVERS[name](d, x)
    z3 = SOLVERS[name](d, x.reshape(4, 16, 8))
    assert z3.shape == (4, 16, 16)
    np.testing.assert_allclose(z3.reshape(64, 16), z, rtol=1e-4, atol=1e-5)
    z1 = SOLVERS[name](d, x[0])
    assert z1.shape == (16,)
    np.testing.assert_allclose(z1, z[0], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- oracles
def _sklearn_lasso_objective(d, x, lam, nonneg):
    """Reference optimum of 0.5||x - zD||^2 + lam||z||_1 via sklearn Lasso(alpha = lam / M)."""
    m = d.shape[1]
    model = Lasso(alpha=lam / m, fit_intercept=False, positive=nonneg, tol=1e-12, max_iter=200_000)
    coef = model.fit(d.T, x).coef_
    return 0.5 * np.sum((x - coef @ d) ** 2) + lam * np.abs(coef).sum()


@pytest.mark.parametrize("nonneg", [False, True])
@pytest.mark.parametrize(
    "solver",
    [
        functools.partial(fista, n_iter=1500),
        functools.partial(ista, n_iter=20000),
        functools.partial(homotopy, fallback_iters=1),  # exact path: no fallback needed here
    ],
    ids=["fista", "ista", "homotopy"],
)
def test_lasso_matches_sklearn(solver, nonneg):
    """20 random problems (each its own dictionary, via vmap): objective within 1e-5 relative."""
    rng = np.random.default_rng(0)
    n_problems, n_latents, n_features, lam = 20, 24, 10, 0.1
    with jax.enable_x64(True):
        d = rng.normal(size=(n_problems, n_latents, n_features))
        d /= np.linalg.norm(d, axis=-1, keepdims=True)
        x = rng.normal(size=(n_problems, n_features))
        z = jax.vmap(lambda di, xi: solver(di, xi, lam=lam, nonneg=nonneg))(d, x)
        ours = np.asarray(jax.vmap(lambda di, xi, zi: lasso_objective(di, xi, zi, lam))(d, x, z))
    ref = np.array([_sklearn_lasso_objective(d[i], x[i], lam, nonneg) for i in range(n_problems)])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    if nonneg:
        assert np.all(np.asarray(z) >= 0)


def test_lasso_float32_matches_sklearn():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(32, 12)); d /= np.linalg.norm(d, axis=1, keepdims=True)
    x = rng.normal(size=(20, 12))
    lam = 0.05
    z = fista(jnp.asarray(d, jnp.float32), jnp.asarray(x, jnp.float32), lam=lam, n_iter=2000, nonneg=True)
    z = np.asarray(z, np.float64)
    ours = 0.5 * np.sum((x - z @ d) ** 2, 1) + lam * np.abs(z).sum(1)
    ref = np.array([_sklearn_lasso_objective(d, x[i], lam, True) for i in range(20)])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


@pytest.mark.parametrize("nonneg", [False, True])
def test_homotopy_exact_in_float32(nonneg):
    """Benchmark-like problem (noisy 8-sparse codes, N=128, M=32): exact to float32 rounding."""
    x, _, d = sparse_coding_data(jax.random.key(0), 256, 128, 32, 6, noise=0.01)
    lam = 0.05
    z = np.asarray(homotopy(d, x, lam=lam, nonneg=nonneg, max_active=24), np.float64)
    x64, d64 = np.asarray(x, np.float64), np.asarray(d, np.float64)
    ours = 0.5 * np.sum((x64 - z @ d64) ** 2, 1) + lam * np.abs(z).sum(1)
    ref = np.array([_sklearn_lasso_objective(d64, x64[i], lam, nonneg) for i in range(256)])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_homotopy_gradient_is_implicit_derivative():
    """The final Newton step differentiates like the Lasso solution: compare with long-run FISTA."""
    with jax.enable_x64(True):
        x, _, d = sparse_coding_data(jax.random.key(4), 6, 20, 10, 3, dtype=jnp.float64, noise=0.05)
        target = jax.random.normal(jax.random.key(5), (6, 20), jnp.float64)
        loss = lambda solve: lambda d, x, lam: jnp.sum((solve(d, x, lam=lam) - target) ** 2)  # noqa: E731
        ours = jax.grad(loss(homotopy), argnums=(0, 1, 2))(d, x, 0.05)
        ref = jax.grad(loss(functools.partial(fista, n_iter=3000)), argnums=(0, 1, 2))(d, x, 0.05)
        for g, r in zip(ours, ref):
            np.testing.assert_allclose(g, r, rtol=1e-6, atol=1e-8)


def test_homotopy_falls_back_when_out_of_slots():
    """max_active smaller than the solution's support: those samples are finished by FISTA."""
    x, _, d = sparse_coding_data(jax.random.key(1), 64, 64, 16, 8, noise=0.01)
    lam = 0.01
    z_small = homotopy(d, x, lam=lam, max_active=4, fallback_iters=3000)
    z_full = homotopy(d, x, lam=lam)
    assert int(jnp.max(jnp.sum(z_full != 0, -1))) > 4
    obj = lambda z: np.asarray(lasso_objective(d, x, z, lam))  # noqa: E731
    np.testing.assert_allclose(obj(z_small), obj(z_full), rtol=1e-5)


@pytest.mark.parametrize("k", [2, 6])
def test_omp_matches_sklearn(k):
    """Support and coefficients equal scikit-learn's orthogonal_mp: 2 x 10 random problems."""
    rng = np.random.default_rng(k)
    n_problems, n_latents, n_features = 10, 30, 12
    d = rng.normal(size=(n_problems, n_latents, n_features))
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    x = rng.normal(size=(n_problems, 8, n_features))
    ref = np.stack([orthogonal_mp(d[i].T, x[i].T, n_nonzero_coefs=k).T for i in range(n_problems)])
    solve = jax.vmap(functools.partial(omp, k=k))
    with jax.enable_x64(True):
        z = np.asarray(solve(jnp.asarray(d), jnp.asarray(x)))
    np.testing.assert_array_equal(z != 0, ref != 0)
    np.testing.assert_allclose(z, ref, rtol=1e-8, atol=1e-10)
    z32 = np.asarray(solve(jnp.asarray(d, jnp.float32), jnp.asarray(x, jnp.float32)))
    np.testing.assert_array_equal(z32 != 0, ref != 0)
    np.testing.assert_allclose(z32, ref, rtol=1e-3, atol=1e-4)


def test_omp_stops_on_exact_fit():
    """k larger than the true sparsity: once the residual is zero, the extra steps add no atom."""
    x, z, d = _problem(n_samples=256)
    z3, z6 = omp(d, x, k=3), omp(d, x, k=6)
    exact = np.asarray(jnp.linalg.norm(z3 @ d - x, axis=-1) < 1e-5)
    assert exact.sum() > 100
    np.testing.assert_array_equal(np.asarray(z6 != 0)[exact], np.asarray(z != 0)[exact])
    np.testing.assert_allclose(np.asarray(z6)[exact], np.asarray(z3)[exact], atol=1e-5)


def test_omp_warm_start_seeds_the_support():
    """A warm start seeds OMP's selection with init's support (values unused); OMP depends only on its
    selected set, so seeding with its own output or its first atoms reproduces the cold run."""
    x, z, d = _problem(n_samples=256)
    xn = x + 0.05 * jax.random.normal(jax.random.key(9), x.shape)
    z2, z3, z5 = (omp(d, xn, k=k) for k in (2, 3, 5))
    np.testing.assert_allclose(omp(d, xn, k=3, init=z3), z3, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(omp(d, xn, k=5, init=-3.0 * z2), z5, rtol=1e-4, atol=1e-5)  # first 2 atoms
    np.testing.assert_array_equal(omp(d, xn, k=3, init=jnp.zeros_like(z3)), z3)
    # Noiseless data seeded with the true support: least squares on it gives the true codes, also
    # where cold OMP picks a wrong atom; an init with N nonzeros seeds its k largest.
    z_true_seeded = omp(d, x, k=3, init=z + 1e-3)
    np.testing.assert_allclose(z_true_seeded, z, atol=1e-4)
    assert np.any(np.abs(np.asarray(omp(d, x, k=3)) - np.asarray(z)).max(-1) > 1e-2)
    with pytest.raises(ValueError, match="`init`"):
        omp(d, x, k=3, init=z[:, :5])


def test_exact_support_recovery_paper1():
    """Noiseless paper-1 data (N=16, M=8, K=3, non-negative, 4096 samples, seed 0). Measured:

    - OMP (k=3) finds the exact support of 0.675 of the samples (greedy errors on the rest);
    - FISTA (nonneg, lam=0.001, 3000 iterations, converged): the nonzero pattern equals the true
      support on 0.406 only (the Lasso optimum keeps small extra coefficients), but thresholded
      at 0.01 it is exact on 0.929.
    """
    x, z, d = sparse_coding_data(jax.random.key(0), 4096)
    true_support = np.asarray(z) > 0
    z_omp = np.asarray(omp(d, x, k=3))
    z_fista = np.asarray(fista(d, x, lam=0.001, n_iter=3000, nonneg=True))
    rate = lambda support: np.mean(np.all(support == true_support, axis=1))  # noqa: E731
    rate_omp, rate_fista, rate_fista_thr = rate(z_omp != 0), rate(z_fista > 0), rate(z_fista > 0.01)
    print(f"exact support recovery: OMP {rate_omp:.3f}, FISTA {rate_fista:.3f} (> 0.01: {rate_fista_thr:.3f})")
    assert rate_omp == pytest.approx(0.675, abs=0.01)
    assert rate_fista == pytest.approx(0.406, abs=0.01)
    assert rate_fista_thr == pytest.approx(0.929, abs=0.01)


def test_fista_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        x, _, d = sparse_coding_data(jax.random.key(4), 4, 12, 6, 2, dtype=jnp.float64)
        target = jax.random.normal(jax.random.key(5), (4, 12), jnp.float64)

        def loss(d, x, lam):
            z = fista(d, x, lam=lam, n_iter=50, nonneg=False)
            return jnp.sum((z - target) ** 2)

        grads = jax.grad(loss, argnums=(0, 1, 2))(d, x, 0.05)
        eps = 1e-6
        rng = np.random.default_rng(0)
        for arg, g in zip(range(3), grads):
            args = [d, x, 0.05]
            direction = rng.normal(size=np.shape(args[arg]))
            plus, minus = list(args), list(args)
            plus[arg] = args[arg] + eps * direction
            minus[arg] = args[arg] - eps * direction
            fd = (loss(*plus) - loss(*minus)) / (2 * eps)
            np.testing.assert_allclose(np.sum(np.asarray(g) * direction), fd, rtol=1e-5)


def test_vmap_over_8_dictionaries_equals_loop():
    keys = jax.random.split(jax.random.key(7), 8)
    xs, _, ds = jax.vmap(lambda k: sparse_coding_data(k, 32))(keys)
    for solver in (SOLVERS["fista"], SOLVERS["omp"]):
        batched = jax.vmap(solver)(ds, xs)
        looped = jnp.stack([solver(ds[i], xs[i]) for i in range(8)])
        np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-6)


def test_warm_start_at_optimum_stays():
    x, _, d = _problem()
    z_star = fista(d, x, lam=0.05, n_iter=2000)
    z_warm = fista(d, x, lam=0.05, n_iter=5, init=z_star)
    np.testing.assert_allclose(z_warm, z_star, atol=1e-5)
    obj = lambda z: float(jnp.mean(lasso_objective(d, x, z, 0.05)))  # noqa: E731
    assert obj(fista(d, x, lam=0.05, n_iter=5, init=z_star * 0.9)) < obj(z_star * 0.9)


def test_prox_operators_by_hand():
    v = jnp.array([-2.0, -0.5, 0.0, 0.3, 1.5])
    np.testing.assert_allclose(soft_threshold(v, 0.5), [-1.5, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(soft_threshold(v, 0.5, nonneg=True), [0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(top_k(v, 2), [-2.0, 0.0, 0.0, 0.0, 1.5])
    np.testing.assert_allclose(top_k(v, 2, nonneg=True), [0.0, 0.0, 0.0, 0.3, 1.5])


def test_lasso_objective_by_hand():
    d = jnp.eye(2, 3)
    x = jnp.array([1.0, 2.0, 3.0])
    z = jnp.array([1.0, -1.0])
    # residual (0, 3, 3): 0.5 * 18 = 9; l1 = 2 -> 9 + 0.5 * 2 = 10
    assert float(lasso_objective(d, x, z, 0.5)) == pytest.approx(10.0)


# ---------------------------------------------------------------- bad input
BAD_CASES = [
    (lambda d, x: fista(d[:, :5], x, lam=0.1), ValueError, "`x`"),
    (lambda d, x: fista(d, x.at[0, 0].set(jnp.nan), lam=0.1), ValueError, "`x`"),
    (lambda d, x: fista(d.at[0, 0].set(jnp.inf), x, lam=0.1), ValueError, "`dictionary`"),
    (lambda d, x: fista(d, x, lam=-0.1), ValueError, "`lam`"),
    (lambda d, x: ista(d, x, lam=0.1, n_iter=0), ValueError, "`n_iter`"),
    (lambda d, x: fista(d, x, lam=0.1, n_iter=2.5), TypeError, "`n_iter`"),
    (lambda d, x: fista(d, x.astype(jnp.int32), lam=0.1), TypeError, "`x`"),
    (lambda d, x: fista(d, x[:0], lam=0.1), ValueError, "`x`"),
    (lambda d, x: fista(d[None], x, lam=0.1), ValueError, "`dictionary`"),
    (lambda d, x: fista(d, x, lam=0.1, init=jnp.zeros((3, 16))), ValueError, "`init`"),
    (lambda d, x: omp(d, x, k=0), ValueError, "`k`"),
    (lambda d, x: omp(d, x, k=17), ValueError, "`k`"),
    (lambda d, x: omp(d, x, k=9), ValueError, "`k`"),
    (lambda d, x: omp(d, x[:, :3], k=3), ValueError, "`x`"),
    (lambda d, x: matching_pursuit(d, x, n_iter=-1), ValueError, "`n_iter`"),
    (lambda d, x: homotopy(d, x, lam=0.1, max_active=0), ValueError, "`max_active`"),
    (lambda d, x: homotopy(d, x, lam=-1.0), ValueError, "`lam`"),
    (lambda d, x: homotopy(d.astype(jnp.int32), x, lam=0.1), TypeError, "`dictionary`"),
    (lambda d, x: lasso_objective(d, x, jnp.zeros((64, 15)), 0.1), ValueError, "`init`|`z`"),
]


@pytest.mark.parametrize("case,error,match", BAD_CASES)
def test_bad_input_named(case, error, match):
    x, _, d = _problem()
    with pytest.raises(error, match=match):
        case(d, x)

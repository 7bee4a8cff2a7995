"""Solvers: one shared table of checks for every solver, plus each solver's oracle test.

Every solver in ``SOLVERS`` runs through the same checks: it converges on a known problem (the
Lasso solvers reach scikit-learn's Lasso objective on a coherent, overcomplete dictionary; the
greedy ones recover exactly sparse codes where exact recovery is guaranteed), does not recompile
on a second call, works under ``jit`` and under ``vmap`` over a leading axis of dictionaries (equal
to a Python loop), keeps float32 and float64, handles batch axes, and its analytic FLOPs agree with
XLA's cost analysis. Oracle tests per solver follow.
"""

import functools
import sys
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core
import numpy as np
import pytest
import scipy.linalg
from sklearn.linear_model import Lasso, orthogonal_mp

from jaxsparse import solvers
from jaxsparse.data import sparse_coding_data
from jaxsparse.solvers import (
    fista, homotopy, ista, lasso_objective, matching_pursuit, omp, soft_threshold, top_k,
)

LAM = 0.05


def _module(name):
    return sys.modules[f"jaxsparse.solvers.{name}"]


def _problem(seed=0, n_samples=64, n_latents=16, n_features=8, k=3):
    return sparse_coding_data(jax.random.key(seed), n_samples, n_latents, n_features, k)


# ---------------------------------------------------------------- known problems
def coherent_dictionary(seed=0, n_latents=32, n_features=12, shared=1.5):
    """Overcomplete Gaussian atoms plus a shared direction: mutual coherence 0.93, mean |<d_i, d_j>| 0.58."""
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(n_latents, n_features)) + shared * rng.normal(size=n_features)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _sklearn_lasso(d, x, lam, nonneg):
    """scikit-learn's Lasso codes for signals ``x [B, M]`` (``alpha = lam / M``), float64."""
    model = Lasso(alpha=lam / d.shape[1], fit_intercept=False, positive=nonneg, tol=1e-12, max_iter=200_000)
    return np.atleast_2d(model.fit(d.T, np.asarray(x, np.float64).T).coef_)


def _objective(d, x, z, lam):
    """Lasso objective per sample in float64 NumPy."""
    z = np.asarray(z, np.float64)
    return 0.5 * np.sum((np.asarray(x, np.float64) - z @ d) ** 2, axis=-1) + lam * np.abs(z).sum(-1)


@functools.lru_cache(maxsize=None)
def _lasso_problem():
    d = coherent_dictionary()
    rng = np.random.default_rng(1)
    z = np.where(rng.uniform(size=(64, 32)) < 0.1, np.abs(rng.normal(size=(64, 32))), 0.0)
    x = z @ d + 0.05 * rng.normal(size=(64, 12))
    return d, x, _objective(d, x, _sklearn_lasso(d, x, LAM, True), LAM)


def lasso_known(solve):
    """Coherent overcomplete dictionary, noisy sparse codes: scikit-learn's objective to 1e-5.

    One ISTA step from zero is far from optimal here (median 3.6 times the optimum), unlike on an
    orthonormal dictionary, where it is exact.
    """
    d, x, ref = _lasso_problem()
    d32, x32 = jnp.asarray(d, jnp.float32), jnp.asarray(x, jnp.float32)
    assert np.median(_objective(d, x, ista(d32, x32, lam=LAM, n_iter=1, nonneg=True), LAM) / ref) > 2
    z = solve(d32, x32)
    assert z.dtype == jnp.float32 and np.all(np.asarray(z) >= 0)
    np.testing.assert_allclose(_objective(d, x, z, LAM), ref, rtol=1e-5)


def union_of_bases(m=16):
    """Identity and normalised Hadamard atoms, ``[2m, m]``: mutual coherence ``mu = 1/sqrt(m)``."""
    return np.concatenate([np.eye(m), scipy.linalg.hadamard(m) / np.sqrt(m)])


def greedy_known(solve):
    """Noiseless 2-sparse codes on a union of two bases (mu = 0.25): mu (2k - 1) < 1 guarantees that
    OMP and matching pursuit select only true atoms (Tropp 2004), so both recover the codes."""
    d = union_of_bases()
    rng = np.random.default_rng(0)
    z = np.zeros((64, 32))
    for row in z:
        row[rng.choice(32, 2, replace=False)] = rng.choice([-1.0, 1.0], 2) * rng.uniform(0.5, 1.5, 2)
    z_hat = solve(jnp.asarray(d, jnp.float32), jnp.asarray(z @ d, jnp.float32))
    np.testing.assert_allclose(z_hat, z, atol=1e-5)


# ---------------------------------------------------------------- FLOPs against XLA's cost analysis
def xla_flops_per_sample(fn, *args, batch):
    cost = jax.jit(fn).lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return cost["flops"] / batch


_BATCH = 4096  # amortises the per-dictionary set-up in XLA's count


def prox_xla(accelerate, restart):
    """One iteration (XLA counts a loop body once) against ``proximal_gradient_flops(n_iter=1)``."""
    def pairs(n, m):
        d, x = jnp.ones((n, m)), jnp.ones((_BATCH, m))
        core = functools.partial(_module("proximal")._proximal_gradient, n_iter=1, nonneg=True,
                                 accelerate=accelerate, restart=restart)
        ours = solvers.proximal_gradient_flops(n, m, n_iter=1, nonneg=True, accelerate=accelerate, restart=restart)
        return [("iteration", ours, xla_flops_per_sample(lambda d, x: core(d, x, 0.1, None), d, x, batch=_BATCH))]
    return pairs


def omp_xla(n, m):
    d, x = jnp.ones((n, m)), jnp.ones((_BATCH, m))
    xla = xla_flops_per_sample(lambda d, x: _module("omp")._omp(d, x, 2), d, x, batch=_BATCH)
    return [("k=2", solvers.omp_flops(n, m, k=2), xla)]


def matching_pursuit_xla(n, m):
    d, x = jnp.ones((n, m)), jnp.ones((_BATCH, m))
    core = functools.partial(_module("matching_pursuit")._matching_pursuit, n_iter=1, nonneg=False)
    xla = xla_flops_per_sample(lambda d, x: core(d, x, None), d, x, batch=_BATCH)
    return [("iteration", solvers.matching_pursuit_flops(n, m, n_iter=1), xla)]


def homotopy_xla(n, m, slots=16, nonneg=True):
    """Each piece of a pass: the start (cold and warm), one path step (cold and warm), the finish."""
    h = _module("homotopy")
    d, x, gram, lam = jnp.ones((n, m)), jnp.ones((_BATCH, m)), jnp.ones((n, n)), jnp.float32(0.1)
    out = []
    for warm in (False, True):
        init = jnp.ones((_BATCH, n)) if warm else None
        start = functools.partial(h._start, max_active=slots, nonneg=nonneg)
        xla = xla_flops_per_sample(lambda d, g, x, i: start(d, g, x, lam, i), d, gram, x, init, batch=_BATCH)
        ours = h._start_flops(n, m, slots, nonneg=nonneg, seeds=1 if warm else None)  # XLA counts a loop body once
        out.append((f"start warm={warm}", ours, xla))
        state = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), jax.eval_shape(start, d, gram, x, lam, init))
        step = functools.partial(h._step, max_steps=8, nonneg=nonneg)
        xla = xla_flops_per_sample(lambda s, d, g: step(s, d, g, lam), state, d, gram, batch=_BATCH)
        out.append((f"path step warm={warm}", h._step_flops(n, m, slots, nonneg=nonneg, warm=warm), xla))
    xla = xla_flops_per_sample(lambda d, x, s: h._finish(d, x, lam, s, nonneg), d, x, state, batch=_BATCH)
    out.append(("finish", h._finish_flops(n, m, slots, nonneg=nonneg), xla))
    return out


class Case(NamedTuple):
    solve: Callable     # (dictionary, x) -> z with the table's hyperparameters
    core: str           # "module.function": the jitted core whose compile cache is checked
    known: Callable     # (solve) -> None, asserts convergence on a known problem
    xla: Callable       # (n, m) -> [(piece, our FLOPs, XLA's FLOPs)] per sample


SOLVERS = {
    "ista": Case(functools.partial(ista, lam=LAM, n_iter=10_000, nonneg=True), "proximal._proximal_gradient",
                 lasso_known, prox_xla(False, False)),
    "fista": Case(functools.partial(fista, lam=LAM, n_iter=1000, nonneg=True), "proximal._proximal_gradient",
                  lasso_known, prox_xla(True, True)),
    "fista_norestart": Case(functools.partial(fista, lam=LAM, n_iter=2000, nonneg=True, restart=False),
                            "proximal._proximal_gradient", lasso_known, prox_xla(True, False)),
    "homotopy": Case(functools.partial(homotopy, lam=LAM, nonneg=True), "homotopy._homotopy", lasso_known,
                     homotopy_xla),
    "omp": Case(functools.partial(omp, k=2), "omp._omp", greedy_known, omp_xla),
    "matching_pursuit": Case(functools.partial(matching_pursuit, n_iter=50), "matching_pursuit._matching_pursuit",
                             greedy_known, matching_pursuit_xla),
}


def _cache_size(case):
    module, fn = case.core.split(".")
    return getattr(_module(module), fn)._cache_size()


# ---------------------------------------------------------------- shared table
@pytest.mark.parametrize("name", SOLVERS)
def test_converges_on_known_problem(name):
    case = SOLVERS[name]
    case.known(case.solve)


@pytest.mark.parametrize("name", SOLVERS)
def test_no_recompile_jit_vmap_dtype(name):
    case = SOLVERS[name]
    solve = case.solve
    x, _, d = _problem()
    z1 = solve(d, x)
    assert z1.shape == (64, 16) and z1.dtype == jnp.float32
    before = _cache_size(case)
    z2 = solve(d, x + 0.0)
    assert _cache_size(case) == before
    np.testing.assert_array_equal(z1, z2)
    np.testing.assert_allclose(jax.jit(solve)(d, x), z1, rtol=1e-5, atol=1e-6)
    # vmap over a leading axis of dictionaries (and their signals), as seeds are batched: equal to a loop
    keys = jax.random.split(jax.random.key(7), 3)
    xs, _, ds = jax.vmap(lambda k: sparse_coding_data(k, 32))(keys)
    batched = jax.jit(jax.vmap(solve))(ds, xs)
    assert batched.shape == (3, 32, 16) and batched.dtype == jnp.float32
    looped = np.stack([solve(ds[i], xs[i]) for i in range(3)])
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-5)
    # one signal set shared by several dictionaries
    zs = jax.vmap(solve, in_axes=(0, None))(ds, x)
    np.testing.assert_allclose(zs[2], solve(ds[2], x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SOLVERS)
def test_float64_kept(name):
    with jax.enable_x64(True):
        x, _, d = sparse_coding_data(jax.random.key(0), 8, 16, 8, 3, dtype=jnp.float64)
        assert SOLVERS[name].solve(d, x).dtype == jnp.float64


@pytest.mark.parametrize("name", SOLVERS)
def test_batch_axes(name):
    solve = SOLVERS[name].solve
    x, _, d = _problem()
    z = solve(d, x)
    z3 = solve(d, x.reshape(4, 16, 8))
    assert z3.shape == (4, 16, 16)
    np.testing.assert_allclose(z3.reshape(64, 16), z, rtol=1e-4, atol=1e-5)
    z1 = solve(d, x[0])
    assert z1.shape == (16,)
    np.testing.assert_allclose(z1, z[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", SOLVERS)
@pytest.mark.parametrize("n_latents,n_features", [(256, 64), (64, 64)])
def test_flops_agree_with_xla_cost_analysis(name, n_latents, n_features):
    """The solver's own FLOPs function against XLA's count of the compiled program, piece by piece."""
    for piece, ours, xla in SOLVERS[name].xla(n_latents, n_features):
        assert ours == pytest.approx(xla, rel=0.1), f"{name} {piece}: ours {ours}, XLA {xla:.0f}"


# ---------------------------------------------------------------- oracles
@pytest.mark.parametrize("nonneg", [False, True])
@pytest.mark.parametrize(
    "solver",
    [
        functools.partial(fista, n_iter=1500),
        functools.partial(ista, n_iter=20000),
        functools.partial(homotopy, return_info=True),
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
        if isinstance(z, tuple):  # homotopy: the exact path, no FISTA fallback
            z, info = z
            assert not np.any(info.fallback) and np.all(info.converged)
        ours = np.asarray(jax.vmap(lambda di, xi, zi: lasso_objective(di, xi, zi, lam))(d, x, z))
    ref = np.array([_objective(d[i], x[i], _sklearn_lasso(d[i], x[i], lam, nonneg)[0], lam) for i in range(n_problems)])
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    if nonneg:
        assert np.all(np.asarray(z) >= 0)


@pytest.mark.parametrize("nonneg", [pytest.param(False, marks=pytest.mark.slow), True])  # False: -m slow (CI time)
def test_homotopy_exact_in_float32(nonneg):
    """Benchmark-like problem (noisy 6-sparse codes, N=128, M=32): exact to float32 rounding."""
    x, _, d = sparse_coding_data(jax.random.key(0), 256, 128, 32, 6, noise=0.01)
    lam = 0.05
    z, info = homotopy(d, x, lam=lam, nonneg=nonneg, max_active=24, return_info=True)
    x64, d64 = np.asarray(x, np.float64), np.asarray(d, np.float64)
    ref = _objective(d64, x64, _sklearn_lasso(d64, x64, lam, nonneg), lam)
    np.testing.assert_allclose(_objective(d64, x64, z, lam), ref, rtol=1e-5)
    assert np.all(info.converged)
    print(f"nonneg={nonneg}: {int(info.fallback.sum())} of 256 finished by FISTA, "
          f"path steps mean {float(info.path_steps.mean()):.1f}, FLOPs mean {float(info.flops.mean()):.3g}")


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


def _kkt_residual_numpy(d, x, z, lam, nonneg):
    """Largest violation of the Lasso optimality conditions, computed independently in float64."""
    d, x, z = (np.asarray(a, np.float64) for a in (d, x, z))
    c = (x - z @ d) @ d.T
    if nonneg:
        viol = np.where(z > 0, np.abs(c - lam), np.maximum(c - lam, 0.0))
    else:
        viol = np.where(z != 0, np.abs(c - lam * np.sign(z)), np.maximum(np.abs(c) - lam, 0.0))
    return viol.max(-1)


def test_homotopy_falls_back_when_out_of_slots_and_says_so():
    """max_active smaller than the solution's support: those samples are finished by FISTA, and the
    info says which, what it cost and whether FISTA converged."""
    x, _, d = sparse_coding_data(jax.random.key(1), 64, 64, 16, 4, noise=0.01)
    lam = 0.05
    z_small, info = homotopy(d, x, lam=lam, max_active=4, fallback_iters=3000, return_info=True)
    big = np.asarray(jnp.sum(z_small != 0, -1)) > 4
    assert 0 < big.sum() < 64  # measured: 56 of 64
    np.testing.assert_array_equal(info.fallback, big)  # exactly the samples whose support needs > 4 atoms
    assert np.all(info.converged)  # 3000 FISTA iterations reach the optimum
    ref = _objective(np.asarray(d, np.float64), x, _sklearn_lasso(np.asarray(d, np.float64), x, lam, False), lam)
    np.testing.assert_allclose(_objective(np.asarray(d, np.float64), x, z_small, lam), ref, rtol=1e-5)
    # The reported residual is the KKT violation at the returned codes.
    np.testing.assert_allclose(info.kkt_residual, _kkt_residual_numpy(d, x, z_small, lam, False), atol=2e-6)
    # The same samples with only 5 FISTA iterations: the fallback is reported as not converged.
    z5, info5 = homotopy(d, x, lam=lam, max_active=4, fallback_iters=5, return_info=True)
    np.testing.assert_array_equal(info5.fallback, big)
    assert not np.any(np.asarray(info5.converged)[big]) and np.all(np.asarray(info5.converged)[~big])
    assert np.all(np.asarray(info5.kkt_residual)[big] > 1e3 * np.finfo(np.float32).eps * lam)
    # FLOPs: one 4-slot pass, then (flagged) FISTA and a KKT check.
    h = _module("homotopy")
    steps = np.asarray(info5.path_steps)
    one_pass = np.array([h.homotopy_flops(64, 16, path_steps=int(s), slots=4) for s in steps])
    fallback = solvers.fista_flops(64, 16, n_iter=5) + h._kkt_flops(64, 16, nonneg=False)
    np.testing.assert_allclose(info5.flops, one_pass + big * fallback, rtol=1e-6)


def test_homotopy_info_per_sample_flops_and_steps(monkeypatch):
    """Batch shape kept; FLOPs = start + path_steps * step + finish of each pass the sample ran
    (the CPU schedule's two passes, on any backend)."""
    monkeypatch.setattr(_module("homotopy"), "default_schedule", lambda: _module("homotopy").CPU_SCHEDULE)
    x, _, d = sparse_coding_data(jax.random.key(2), 96, 64, 24, 10, noise=0.01)
    lam = 0.05  # supports of up to 24 atoms: most (72 of 96) outgrow the first pass's 16 slots
    z, info = homotopy(d, x.reshape(4, 24, 24), lam=lam, max_active=24, return_info=True)
    assert z.shape == (4, 24, 64)
    for field, dtype in zip(info._fields, (bool, np.float32, np.int32, bool, np.float32)):
        assert getattr(info, field).shape == (4, 24) and getattr(info, field).dtype == dtype, field
    info = jax.tree.map(lambda a: np.asarray(a).reshape(96), info)
    assert info.converged.all() and not info.fallback.any()
    support = np.asarray(jnp.sum(z != 0, -1)).reshape(96)
    assert (support < 16).any() and (support > 16).any()
    h = _module("homotopy")
    one_pass = lambda steps: h.homotopy_flops(64, 24, path_steps=steps, slots=16)  # noqa: E731
    two_passes = lambda steps: {one_pass(p) + h.homotopy_flops(64, 24, path_steps=steps - p, slots=24)  # noqa: E731
                                for p in range(steps + 1)}
    for i in range(96):
        steps, flops = int(info.path_steps[i]), float(info.flops[i])
        assert steps >= support[i]  # every atom of the support entered on some step
        if support[i] < 16:  # fits the first pass's 16 slots
            assert flops == pytest.approx(one_pass(steps), rel=1e-6)
        elif support[i] > 16:  # outgrew them: a 16-slot pass, then a 24-slot pass, steps split between them
            assert min(abs(flops - f) / f for f in two_passes(steps)) < 1e-6
    # Hand count of one cold step, N=4, M=2, S=2, signed: 2MN 16 + (2S-1)M 6 + 22N 88 + argmin 4N 16
    # + 7S^2 28 + 39S 78 + 18 = 250.
    assert h._step_flops(4, 2, 2, nonneg=False, warm=False) == 250
    assert h.homotopy_flops(4, 2, path_steps=3, slots=2) - h.homotopy_flops(4, 2, path_steps=2, slots=2) == 250


def test_homotopy_schedules_give_the_same_codes():
    """The CPU schedule (16-slot first pass, compaction) and the accelerator's (one pass with all the
    slots, several steps per loop iteration) reach the same optimum; the one-pass FLOPs are one pass's."""
    h = _module("homotopy")
    x, _, d = sparse_coding_data(jax.random.key(2), 96, 64, 24, 10, noise=0.01)
    lam = jnp.asarray(0.05, jnp.float32)
    run = lambda schedule: h._homotopy(d, x, lam, None, max_active=24, max_steps=96, nonneg=False,  # noqa: E731
                                       fallback_iters=500, schedule=schedule)
    z_cpu, info_cpu = run(h.CPU_SCHEDULE)
    for schedule in (h.ACCELERATOR_SCHEDULE, h.Schedule(None, 4, 3), h.Schedule(16, 0, 2)):
        z, info = run(schedule)
        np.testing.assert_allclose(z, z_cpu, atol=2e-6)
        assert np.all(info.converged) and not np.any(info.fallback)
    z, info = run(h.ACCELERATOR_SCHEDULE)
    one_pass = [h.homotopy_flops(64, 24, path_steps=int(s), slots=24) for s in np.asarray(info.path_steps)]
    np.testing.assert_allclose(info.flops, one_pass, rtol=1e-6)
    assert np.all(info.path_steps <= info_cpu.path_steps)  # no second pass restarting the long paths
    assert h.default_schedule() == (h.CPU_SCHEDULE if jax.default_backend() == "cpu" else h.ACCELERATOR_SCHEDULE)


def test_homotopy_compacts_only_batches_worth_a_second_loop(monkeypatch):
    """Compaction (the running samples gathered into a batch of B/4) adds a loop to the program; below
    ``COMPACT_MIN_WORK`` (B M N multiply-adds per pass) it is left out. Either way the same codes."""
    h = _module("homotopy")
    x, _, d = sparse_coding_data(jax.random.key(7), 256, 32, 16, 4, noise=0.01)  # B M N = 131072
    lam = jnp.asarray(0.05, jnp.float32)

    def run():  # the unjitted body: traced afresh each time (the jitted solver would reuse its trace)
        fn = lambda d, x: h._homotopy_body(d, x, lam, None, max_active=16, max_steps=64, nonneg=True,  # noqa: E731
                                           fallback_iters=50, schedule=h.CPU_SCHEDULE)
        loops = str(jax.make_jaxpr(fn)(d, x)).count("while[")
        return jax.jit(fn)(d, x)[0], loops

    z_plain, loops_plain = run()
    monkeypatch.setattr(h, "COMPACT_MIN_WORK", 0)
    z_compact, loops_compact = run()
    assert h.COMPACT_MIN_WORK == 0 and loops_compact > loops_plain
    np.testing.assert_allclose(z_compact, z_plain, atol=2e-6)


def _dot_precisions(jaxpr) -> set:
    """The ``precision`` of every ``dot_general`` in a jaxpr and the jaxprs nested in it."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            found.add(eqn.params["precision"])
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if isinstance(inner, jax_core.Jaxpr):
                    found |= _dot_precisions(inner)
    return found


def test_homotopy_matmuls_run_at_highest_precision_whatever_the_default():
    """An exact path needs exact correlations: under a bf16 or TF32 default the solver's dots, the
    gradient's too, stay at HIGHEST. (On an H200 at JAX's default TF32, every sample of
    benchmarks/solvers.py's problem failed the KKT check and went to the FISTA fallback: 15-16 ms
    instead of 3.7 ms, `python benchmarks/gpu_kernels.py` before this fix.)"""
    x, _, d = sparse_coding_data(jax.random.key(3), 8, 16, 8, 2, noise=0.01)
    highest = jax.lax.Precision.HIGHEST
    with jax.default_matmul_precision("bfloat16"):
        solve = jax.make_jaxpr(lambda d, x: homotopy(d, x, lam=0.05))(d, x)
        grad = jax.make_jaxpr(jax.grad(lambda d: jnp.sum(homotopy(d, x, lam=0.05) ** 2)))(d)
    for jaxpr in (solve, grad):
        precisions = _dot_precisions(jaxpr.jaxpr)
        assert precisions == {(highest, highest)}, precisions


def test_homotopy_traces_at_sae_scale():
    """65 536 signals x 768 features x 16 384 atoms (issue 15's GPU size): the per-sample FLOP counts
    pass 2**31 and once failed to trace (a Python int parsed as int32). Traced only, nothing runs."""
    d = jax.ShapeDtypeStruct((16384, 768), jnp.float32)
    x = jax.ShapeDtypeStruct((65536, 768), jnp.float32)
    z, info = jax.eval_shape(lambda d, x: homotopy(d, x, lam=0.05, max_active=32, return_info=True), d, x)
    assert z.shape == (65536, 16384) and info.flops.dtype == jnp.float32


@pytest.mark.parametrize("nonneg", [pytest.param(False, marks=pytest.mark.slow), True])  # False: -m slow (CI time)
def test_homotopy_warm_start(nonneg):
    """From the solution: returned in one path step, for fewer FLOPs. From anywhere else: the same
    optimum (the warm path ends at the Lasso solution whatever its start)."""
    x, _, d = _problem()  # the table's problem (its cold compile is shared)
    run = functools.partial(homotopy, d, x, lam=LAM, nonneg=nonneg, return_info=True)
    z, info = run()
    assert info.converged.all() and not info.fallback.any()
    z_warm, info_warm = run(init=z)
    # one Newton step from the cold path's end: float32 rounding, 1.5e-6 relative measured on an AVX-512 Xeon
    np.testing.assert_allclose(z_warm, z, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(info_warm.path_steps, 1)
    assert info_warm.converged.all() and np.mean(info_warm.flops) < np.mean(info.flops)
    objective = lambda zz: _objective(np.asarray(d, np.float64), x, zz, LAM)  # noqa: E731
    rng = np.random.default_rng(0)
    starts = {
        "fista-5": fista(d, x, lam=LAM, n_iter=5, nonneg=nonneg),
        "perturbed": z + 0.1 * rng.normal(size=z.shape) * (np.asarray(z) != 0),
        "random": rng.normal(size=z.shape) * (rng.uniform(size=z.shape) < 0.3),
        "zeros": jnp.zeros_like(z),
    }
    for name, z0 in starts.items():
        z_w, info_w = run(init=jnp.asarray(z0, jnp.float32))
        assert info_w.converged.all() and not info_w.fallback.any(), name
        np.testing.assert_allclose(objective(z_w), objective(z), rtol=1e-6, err_msg=name)
        np.testing.assert_allclose(z_w, z, atol=1e-5, err_msg=name)
        print(f"warm start {name}: path steps mean {float(info_w.path_steps.mean()):.2f} "
              f"(cold {float(info.path_steps.mean()):.2f})")


@pytest.mark.parametrize("k", [2, 6, 11])  # 11: slot arrays of 1, 2, 4, 8 and 11 (omp._slot_schedule)
def test_omp_matches_sklearn(k):
    """Support and coefficients equal scikit-learn's orthogonal_mp: 3 x 10 random problems."""
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


def test_matching_pursuit_matches_numpy_reference():
    """Against a plain NumPy loop of Mallat & Zhang's update, signed and non-negative, with a warm start."""
    rng = np.random.default_rng(3)
    d = rng.normal(size=(20, 8)); d /= np.linalg.norm(d, axis=1, keepdims=True)
    x = rng.normal(size=(16, 8))
    init = np.where(rng.uniform(size=(16, 20)) < 0.2, rng.normal(size=(16, 20)), 0.0)

    def reference(x, z, n_iter, nonneg):
        z = z.copy()
        r = x - z @ d
        for _ in range(n_iter):
            c = d @ r
            j = int(np.argmax(c if nonneg else np.abs(c)))
            step = max(c[j], 0.0) if nonneg else c[j]
            z[j] += step
            r = r - step * d[j]
        return z

    with jax.enable_x64(True):
        for nonneg in (False, True):
            for z0 in (np.zeros((16, 20)), init):
                ours = np.asarray(matching_pursuit(jnp.asarray(d), jnp.asarray(x), n_iter=7, nonneg=nonneg,
                                                   init=jnp.asarray(z0)))
                ref = np.stack([reference(x[i], z0[i], 7, nonneg) for i in range(16)])
                np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.slow  # 24 s; OMP and the Lasso are checked against scikit-learn by the default tests above
def test_support_recovery_matches_references():
    """Noiseless paper-1 data (N=16, M=8, K=3, non-negative, 2048 samples, seed 0): the supports equal
    the independent references' on every sample. OMP vs scikit-learn's orthogonal_mp (float64; in
    float32 all but rounding ties); the Lasso (lam=0.001, non-negative: homotopy and converged FISTA)
    vs scikit-learn's Lasso. Measured against the true supports (printed, loose sanity bounds only):
    OMP 0.681, the Lasso's exact nonzero pattern 0.420 (it keeps small extra coefficients), > 0.01: 0.935.
    """
    x, z, d = sparse_coding_data(jax.random.key(0), 2048)  # the shape of the theory test: one compile
    x64, d64 = np.asarray(x, np.float64), np.asarray(d, np.float64)
    omp_ref = orthogonal_mp(d64.T, x64.T, n_nonzero_coefs=3).T
    with jax.enable_x64(True):
        z_omp64 = np.asarray(omp(jnp.asarray(d64), jnp.asarray(x64), k=3))
    np.testing.assert_array_equal(z_omp64 != 0, omp_ref != 0)
    z_omp = np.asarray(omp(d, x, k=3))
    assert np.mean(np.all((z_omp != 0) == (omp_ref != 0), axis=1)) >= 0.999
    lam = 0.001
    lasso_ref = _sklearn_lasso(d64, x64, lam, True)
    z_homotopy = np.asarray(homotopy(d, x, lam=lam, nonneg=True))
    z_fista = np.asarray(fista(d, x, lam=lam, n_iter=3000, nonneg=True))
    np.testing.assert_array_equal(z_homotopy > 0, lasso_ref > 0)
    np.testing.assert_array_equal(z_fista > 0, lasso_ref > 0)
    true_support = np.asarray(z) > 0
    rate = lambda support: np.mean(np.all(support == true_support, axis=1))  # noqa: E731
    rates = rate(z_omp != 0), rate(z_homotopy > 0), rate(z_homotopy > 0.01)
    print("exact support recovery: OMP {:.3f}, Lasso {:.3f} (> 0.01: {:.3f})".format(*rates))
    assert rates[0] > 0.5 and rates[2] > 0.8


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


def test_warm_start_at_optimum_stays():
    x, _, d = _problem()
    z_star = fista(d, x, lam=0.05, n_iter=2000)
    z_warm = fista(d, x, lam=0.05, n_iter=5, init=z_star)
    np.testing.assert_allclose(z_warm, z_star, atol=1e-5)
    obj = lambda z: float(jnp.mean(lasso_objective(d, x, z, 0.05)))  # noqa: E731
    assert obj(fista(d, x, lam=0.05, n_iter=5, init=z_star * 0.9)) < obj(z_star * 0.9)


def test_fista_iteration_count_as_an_array_gives_the_static_iterates_from_one_program():
    """``n_iter`` as an integer array (here traced under jit and vmap): the same codes, bit for bit, as
    the static count for every budget, cold or warm, from one compiled program; a count <= 0 runs none."""
    x, _, d = _problem()
    warm = jnp.abs(jax.random.normal(jax.random.key(3), (x.shape[0], d.shape[0]))) * 0.1
    run = jax.jit(lambda d, x, n, z0: fista(d, x, lam=0.05, n_iter=n, nonneg=True, init=z0))
    for t in (1, 3, 17):
        for z0 in (jnp.zeros_like(warm), warm):
            np.testing.assert_array_equal(run(d, x, jnp.int32(t), z0), fista(d, x, lam=0.05, n_iter=t, nonneg=True, init=z0))
    assert run._cache_size() == 1
    np.testing.assert_array_equal(run(d, x, jnp.int32(0), warm), warm)
    budgets = jnp.array([2, 5])  # vmapped over budgets: each row its own count
    rows = jax.vmap(lambda n: fista(d, x, lam=0.05, n_iter=n))(budgets)
    for row, t in zip(rows, (2, 5)):
        np.testing.assert_array_equal(row, fista(d, x, lam=0.05, n_iter=t))


def test_prox_operators_by_hand():
    v = jnp.array([-2.0, -0.5, 0.0, 0.3, 1.5])
    np.testing.assert_allclose(soft_threshold(v, 0.5), [-1.5, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(soft_threshold(v, 0.5, nonneg=True), [0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(top_k(v, 2), [-2.0, 0.0, 0.0, 0.0, 1.5])
    np.testing.assert_allclose(top_k(v, 2, nonneg=True), [0.0, 0.0, 0.0, 0.3, 1.5])


def test_kth_largest_and_top_k_equal_a_sort_with_ties_and_any_magnitude():
    from jaxsparse.solvers import kth_largest

    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(1, 200))
        k = int(rng.integers(1, n + 1))
        v = (rng.normal(size=(3, n)) * 10.0 ** rng.uniform(-40, 30)).astype(np.float32)
        if trial % 3 == 0:
            v = np.round(v * 2) / 2  # ties (and many zeros when the scale is small)
        kth = np.sort(v, axis=-1)[:, ::-1][:, k - 1:k]
        np.testing.assert_array_equal(kth_largest(v, k), kth)
        kth_abs = np.sort(np.abs(v), axis=-1)[:, ::-1][:, k - 1:k]
        np.testing.assert_array_equal(top_k(jnp.asarray(v), k), np.where(np.abs(v) >= kth_abs, v, 0))
    v64 = jnp.asarray(rng.normal(size=(2, 9)))  # other dtypes take lax.top_k: the same values
    np.testing.assert_array_equal(top_k(v64, 3, nonneg=True), np.where(v64 >= np.sort(v64)[:, -3:-2], v64, 0).clip(0))


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
    (lambda d, x: fista(d, x, lam=0.1, n_iter=jnp.array([3, 4])), TypeError, "`n_iter`"),
    (lambda d, x: fista(d, x, lam=0.1, n_iter=jnp.float32(3)), TypeError, "`n_iter`"),
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
    (lambda d, x: homotopy(d, x, lam=0.1, init=jnp.zeros((64, 15))), ValueError, "`init`"),
    (lambda d, x: omp(d, x, k=3, init=jnp.zeros((64, 16), jnp.int32)), TypeError, "`init`"),
    (lambda d, x: lasso_objective(d, x, jnp.zeros((64, 15)), 0.1), ValueError, "`init`|`z`"),
]


@pytest.mark.parametrize("case,error,match", BAD_CASES)
def test_bad_input_named(case, error, match):
    x, _, d = _problem()
    with pytest.raises(error, match=match):
        case(d, x)

"""dictionary-learning-peers: the λ mapping, the budget accounting, the verdict rule and a smoke run."""

import dataclasses
import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import solvers, train
from jaxsparse.data import sparse_coding_data
from jaxsparse.experiments import dl_peers as dlp

LAM = 0.005


@pytest.fixture(scope="module")
def problem():
    """Paper-1 data (N=16, M=8, K=3) on a random unit-norm dictionary: ``(x [256, 8], z, d [16, 8])``."""
    x, z, d = sparse_coding_data(jax.random.key(3), 256)
    return np.asarray(x, np.float64), np.asarray(z, np.float64), np.asarray(d, np.float64)


def _exact(d, x, lam):
    return np.asarray(solvers.homotopy(jnp.asarray(d, jnp.float32), jnp.asarray(x, jnp.float32), lam=lam, nonneg=True),
                      np.float64)


# ------------------------------------------------------------------------------------------- λ mapping


def test_lasso_objective_by_hand():
    d = np.array([[1.0, 0.0], [0.6, 0.8]])
    x = np.array([[1.0, 2.0]])
    z = np.array([[0.5, 2.0]])
    # x - zD = [1 - 0.5 - 1.2, 2 - 1.6] = [-0.7, 0.4]; 0.5 * 0.65 + 0.1 * 2.5
    assert dlp.lasso_objective(d, x, z, 0.1)[0] == pytest.approx(0.5 * 0.65 + 0.25)


def test_sklearn_alpha_is_our_lambda(problem):
    """scikit-learn's mini-batch objective (its batch cost) at fixed D and codes equals our per-sample
    mean objective with ``alpha = λ``, and its coder (``sparse_encode``, the call ``_minibatch_step``
    and ``transform`` make) at ``alpha = λ`` returns our exact codes at λ; ``alpha = λ / M`` does not."""
    from sklearn.decomposition import sparse_encode
    from sklearn.exceptions import ConvergenceWarning

    x, _, d = problem
    z = _exact(d, x, LAM)
    model = dlp.sklearn_model(16, d, lam=LAM, passes=1, batch_size=64, seed=0)
    assert model.alpha == LAM and model.transform_alpha == LAM and model.positive_code and not model.positive_dict
    batch_cost = (0.5 * ((x - z @ d) ** 2).sum() + model.alpha * np.sum(np.abs(z))) / x.shape[0]  # sklearn's formula
    assert batch_cost == pytest.approx(np.mean(dlp.lasso_objective(d, x, z, LAM)), rel=1e-12)
    with warnings.catch_warnings():  # coordinate descent does not always reach its duality-gap tolerance 1e-8
        warnings.simplefilter("ignore", ConvergenceWarning)
        z_sk = sparse_encode(x, d, algorithm="lasso_cd", alpha=LAM, positive=True, max_iter=10_000)
        z_wrong = sparse_encode(x, d, algorithm="lasso_cd", alpha=LAM / 8, positive=True, max_iter=10_000)
    assert np.abs(z_sk - z).max() < 2e-3
    f_sk, f = dlp.lasso_objective(d, x, z_sk, LAM), dlp.lasso_objective(d, x, z, LAM)
    assert np.all(f_sk >= f - 1e-6) and np.mean(f_sk - f) < 1e-6
    assert np.abs(z_wrong - z).max() > 1e-2


def test_sklearn_transform_is_sparse_encode(problem):
    """The peer's own transform we report equals ``MiniBatchDictionaryLearning.transform``."""
    x, _, d = problem
    model, _, _ = dlp.sklearn_fit(x, d, n_latents=16, lam=LAM, passes=1, batch_size=128, seed=0)
    z_own, _ = dlp.sklearn_transform(model, model.components_, x[:32])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(z_own, model.transform(x[:32]), atol=1e-10)


def test_spams_lambda1_is_our_lambda(problem):
    """SPAMS ``lasso(mode=2, lambda1=λ, pos=True)`` returns our exact non-negative codes at λ, and its
    objective ``0.5 ||x - Dα||^2 + lambda1 ||α||_1`` (column convention) is ours."""
    pytest.importorskip("spams")
    x, _, d = problem
    z = _exact(d, x, LAM)
    z_sp = dlp.spams_lasso(d, x, lam=LAM, threads=1)
    assert z_sp.shape == z.shape and np.all(z_sp >= 0)
    assert np.abs(z_sp - z).max() < 1e-3
    np.testing.assert_allclose(dlp.lasso_objective(d, x, z_sp, LAM), dlp.lasso_objective(d, x, z, LAM), rtol=1e-4,
                               atol=1e-9)
    spams_form = 0.5 * np.sum((x.T - d.T @ z.T) ** 2, axis=0) + LAM * np.abs(z.T).sum(axis=0)
    np.testing.assert_allclose(spams_form, dlp.lasso_objective(d, x, z, LAM), rtol=1e-12)


def test_spams_trainDL_output_checked(problem):
    """trainDL from our initial atoms returns a finite dictionary of unit-norm atoms ``[N, M]``."""
    pytest.importorskip("spams")
    x, _, d = problem
    d0 = x[:16] / np.linalg.norm(x[:16], axis=1, keepdims=True)
    raw, seconds = dlp.spams_fit(x, d0, n_latents=16, lam=LAM, iters=20, batch_size=64, threads=1)
    assert raw.shape == (16, 8) and seconds > 0
    checks = dlp.dictionary_checks(raw)
    assert checks["finite"] and checks["max_norm"] <= 1 + 1e-9
    assert dlp.dictionary_checks(np.full((2, 2), np.nan))["finite"] is False


# ---------------------------------------------------------------------------------------- budget accounting


def test_sample_visits_and_matched_budgets():
    assert dlp.sample_visits("ours", 50, n_train=1024) == 51_200
    assert dlp.sample_visits("spams", 100, n_train=1024, batch_size=512) == 51_200
    assert dlp.sample_visits("sklearn", 3, n_train=1000) == 3000
    assert dlp.sklearn_steps(3, n_train=1000, batch_size=512) == 6 and dlp.sklearn_steps(2, n_train=100, batch_size=512) == 2
    with pytest.raises(ValueError, match="batch_size"):
        dlp.sample_visits("spams", 1, n_train=8)
    with pytest.raises(ValueError, match="learner"):
        dlp.sample_visits("other", 1, n_train=8)
    c = dlp.DLPeersConfig()
    assert dlp.dl_steps(c) == (1, 2, 5, 10, 20, 50, 125, 250, 500, 1000)
    lr = c.learners
    ours = {dlp.sample_visits("ours", s, n_train=1024) for s in dlp.dl_steps(c)}
    assert {dlp.sample_visits("spams", it, n_train=1024, batch_size=lr.spams_batch_size) for it in lr.spams_iters} <= ours
    assert {dlp.sample_visits("sklearn", p, n_train=1024) for p in lr.sklearn_passes} <= ours
    assert list(dlp.build(c)) == [dlp.method_name(s) for s in reversed(dlp.dl_steps(c))]
    assert dlp.build(c)["DL/steps-0050"].steps == 50 and c.train.seeds >= 10


def test_sklearn_early_stopping_is_off_and_steps_count(problem):
    """With scikit-learn's defaults this fit stops early; ours runs every requested step, and
    ``n_steps_ * batch_size`` are the sample visits when the batch size divides the data."""
    x, _, d = problem
    passes, bs = 30, 128
    model, _, _ = dlp.sklearn_fit(x, d, n_latents=16, lam=LAM, passes=passes, batch_size=bs, seed=0)
    assert model.n_steps_ == dlp.sklearn_steps(passes, n_train=256, batch_size=bs) == 60 and model.n_iter_ == passes
    assert model.n_steps_ * bs == dlp.sample_visits("sklearn", passes, n_train=256)
    default = dlp.sklearn_model(16, d, lam=LAM, passes=passes, batch_size=bs, seed=0).set_params(
        tol=1e-3, max_no_improvement=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        default.fit(x)
    assert default.n_steps_ < 60  # the defaults would have cut the run short
    odd, _, _ = dlp.sklearn_fit(x[:200], d, n_latents=16, lam=LAM, passes=2, batch_size=128, seed=0)
    assert odd.n_steps_ == 4  # 2 passes x ceil(200 / 128); the visits are 2 x 200


# ------------------------------------------------------------------------------------------ verdict rule


def _entry(learner, method, visits, wall, mcc, dmcc):
    rows = [{"seed": s, "mcc": a, "dictionary_mcc": b} for s, (a, b) in enumerate(zip(mcc, dmcc))]
    return {"learner": learner, "method": method, "sample_visits": visits,
            "wall": {"per_seed_mean": wall, "per_seed_min": wall * 0.9}, **train.rundir.summarize(rows)}


def test_paired_difference_calls_ties():
    rng = np.random.default_rng(0)
    peer = rng.uniform(0.7, 0.9, 10)
    assert dlp.paired_difference(peer + 0.05, peer)["call"] == "higher"
    assert dlp.paired_difference(peer - 0.05, peer)["call"] == "lower"
    noisy = peer + 0.01 + rng.normal(0, 0.1, 10)  # a difference well inside the seed spread
    d = dlp.paired_difference(noisy, peer)
    assert d["call"] == "tie" and d["low"] < 0 < d["high"]
    half = 2.2621571627409915 * np.std(noisy - peer, ddof=1) / math.sqrt(10)  # t_{0.975, 9}
    assert d["high"] - d["mean"] == pytest.approx(half)
    assert dlp.paired_difference([0.9], [0.1])["call"] == "tie"  # one seed: no interval, never a win


def test_compare_picks_cheapest_budget_not_lower():
    base = np.linspace(0.6, 0.8, 6)
    ours = [_entry(dlp.OURS, "DL/steps-0001", 10, 0.1, base - 0.2, base - 0.2),
            _entry(dlp.OURS, "DL/steps-0002", 20, 0.2, base + 0.001 * np.array([1, -1, 1, -1, 1, -1]), base),
            _entry(dlp.OURS, "DL/steps-0004", 40, 0.4, base + 0.1, base + 0.1)]
    peer = [_entry(dlp.SPAMS, "SPAMS/iter-0002", 20, 1.0, base, base),
            _entry(dlp.SPAMS, "SPAMS/iter-0004", 40, 2.0, base + 0.3, base + 0.3)]
    c = dlp.compare(ours, peer)
    assert [r["mcc"]["call"] for r in c["equal_sample_visits"]] == ["tie", "lower"]
    assert c["reaches_at_equal_visits"] == {"mcc": False, "dictionary_mcc": False}
    first, second = c["wall_time_at_equal_mcc"]
    assert first["ours"] == "DL/steps-0002" and second["ours"] is None
    assert first["engine_sweep"]["speedup"] == pytest.approx(5.0) and first["engine_sweep"]["beyond_spread"]
    assert "one_fit_alone" not in first  # ours was not timed one seed at a time here
    assert c["faster_at_equal_mcc"]["engine_sweep"]["all"] is False  # one peer budget is never matched
    v = dlp.verdict(ours + peer, {dlp.SKLEARN: {"note": "not run"}})
    assert v[dlp.SKLEARN] == {"available": False, "note": "not run"} and len(v["summary"]) == 2


def test_config_errors_name_the_field():
    c = dlp.DLPeersConfig()
    with pytest.raises(train.ConfigError, match="learners.lam"):
        dataclasses.replace(c, learners=dataclasses.replace(c.learners, lam=0.0))
    with pytest.raises(train.ConfigError, match="learners.spams_iters"):
        dataclasses.replace(c, learners=dataclasses.replace(c.learners, spams_iters=(3,)))  # 3 x 512 / 1024
    with pytest.raises(train.ConfigError, match="learners.sklearn_passes"):
        dataclasses.replace(c, learners=dataclasses.replace(c.learners, sklearn_passes=()))
    with pytest.raises(train.ConfigError, match="peer_init"):
        dataclasses.replace(c, learners=dataclasses.replace(c.learners, peer_init="bogus"))
    ok = dataclasses.replace(c, learners=dataclasses.replace(c.learners, spams_iters=(3,), dl_steps=(1, 2)))
    assert dlp.dl_steps(ok) == (1, 2)


# -------------------------------------------------------------------------------------------- smoke runs


def _per_seed_counts(results):
    return {e["method"]: len(e["per_seed"]) for e in results["methods"]}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dlp") / "run"
    config = dlp.smoke()
    return config, run_dir, train.fit(dlp.NAME, config, run_dir, progress=False)


def test_smoke_run_writes_everything(smoke_run):
    config, run_dir, results = smoke_run
    for name in ("results.json", "results.md", "figures/mcc_vs_sample_visits.png", "figures/mcc_vs_wall_time.png",
                 "figures/dl_mcc_vs_flops.png"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "results.json").read_text())["experiment"] == dlp.NAME
    learners = {e["learner"] for e in results["methods"]}
    assert {dlp.OURS, dlp.SKLEARN} <= learners
    assert set(_per_seed_counts(results).values()) == {config.train.seeds}
    for e in results["methods"]:
        assert e["lam"] == LAM and e["sample_visits"] > 0 and e["wall"]["per_seed_mean"] > 0
        assert {"mcc", "dictionary_mcc"} <= set(e["mean"]) and e["checks"]["all_finite"]
        assert e["checks"]["max_norm"] <= 1 + 1e-5  # atoms in the unit ball
    ours = [e for e in results["methods"] if e["learner"] == dlp.OURS]
    assert [e["budget"]["steps"] for e in ours] == list(dlp.dl_steps(config))
    assert all(e["flops"] > 0 and e["wall"]["compile_s"] > 0 for e in ours)
    for e in ours:  # timed one seed at a time too: the same steps give the engine's dictionaries
        assert e["wall_single_seed"]["max_abs_diff_vs_engine"] < 1e-4
        assert all(r["wall_s"] > 0 for r in e["per_seed"])
    sk = [e for e in results["methods"] if e["learner"] == dlp.SKLEARN]
    for e in sk:
        assert e["own_iterations"]["n_steps_"] == [e["budget"]["n_steps"]] and "mcc_own" in e["mean"]
    text = (run_dir / "results.md").read_text()
    assert "sample visits" in text and "Verdict" in text and "n_steps_=" in text
    assert results["verdict"]["summary"] and "mean" in results and results["n_runs"] == config.train.seeds
    # ours is restorable from its method directory, one budget at a time
    _, state = train.restore(run_dir, method=ours[0]["method"])
    assert state.params["dictionary"].shape == (config.train.seeds, config.data.n_latents, config.data.n_features)


def test_smoke_run_spams_rows(smoke_run):
    pytest.importorskip("spams")
    config, _, results = smoke_run
    sp = [e for e in results["methods"] if e["learner"] == dlp.SPAMS]
    assert [e["budget"]["iter"] for e in sp] == sorted(config.learners.spams_iters)
    assert results["peers"][dlp.SPAMS]["available"] and results["peers"][dlp.SPAMS]["numThreads"] >= 1
    for e in sp:
        assert e["checks"]["all_finite"] and e["checks"]["max_norm"] <= 1 + 1e-6
        assert e["threads"]["numThreads"] == results["peers"][dlp.SPAMS]["numThreads"]
        assert abs(e["mean"]["own_objective_excess"]) < 1e-3  # SPAMS's own codes are the exact ones
    assert dlp.SPAMS in results["verdict"] and "equal_sample_visits" in results["verdict"][dlp.SPAMS]


@pytest.mark.slow  # 11 s; where SPAMS is absent (CI) the smoke fixture above already runs this path
def test_runs_without_spams(tmp_path, monkeypatch):
    """CI has no SPAMS: the experiment still runs and says so in its results."""
    monkeypatch.setattr(dlp, "spams_available", lambda: False)
    c = dlp.smoke()
    c = dataclasses.replace(c, learners=dataclasses.replace(c.learners, sklearn=False, spams_iters=(2,)))
    results = train.fit(dlp.NAME, c, tmp_path / "nospams", progress=False)
    assert results["peers"][dlp.SPAMS]["available"] is False and "not installed" in results["peers"][dlp.SPAMS]["note"]
    assert {e["learner"] for e in results["methods"]} == {dlp.OURS}
    assert "not installed" in (tmp_path / "nospams" / "results.md").read_text()
    assert any("not installed" in s for s in results["verdict"]["summary"])

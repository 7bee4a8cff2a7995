"""The amortisation-gap experiment end to end at smoke size (the full run is the README's first command)."""

import dataclasses
import json

import pytest

from jaxsparse.experiments.amortisation_gap import AmortisationGapConfig, smoke
from jaxsparse.experiments.amortisation_gap import tasks as ts
from jaxsparse import train


def _tiny():
    config = smoke()
    return dataclasses.replace(config, methods=dataclasses.replace(config.methods, encoders=("sae", "lista"), known_encoders=("sae",),
                                                                   fista_iters=(5,)))


def test_smoke_run_writes_table_figures_and_scores(tmp_path):
    results = train.fit("amortisation-gap", _tiny(), tmp_path / "ag", progress=False)
    saved = json.loads((tmp_path / "ag" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results)) and saved["n_runs"] == 2 and saved["std_ddof"] == 1
    names = {e["method"] for e in saved["methods"]}
    for expected in ["known_d/SAE", "known_d/true D + homotopy", "known_z/SAE", "unknown/LISTA-3", "unknown/SC: Adam-200",
                     "unknown/DL: homotopy", "unknown/SAE+ITO: Adam-200", "unknown/SAE+FISTA-5 (warm)"]:
        assert expected in names
    for e in saved["methods"]:
        assert len(e["per_seed"]) == 2 and e["n_runs"] == 2
        assert e["mean"]["mcc"] == pytest.approx(sum(r["mcc"] for r in e["per_seed"]) / 2)
    warm = next(e for e in saved["methods"] if e["method"] == "unknown/SAE+FISTA-5 (warm)")
    sae = next(e for e in saved["methods"] if e["method"] == "unknown/SAE")
    assert warm["inference_flops"] > sae["inference_flops"] and warm["training_flops"] == sae["training_flops"]
    exact = next(e for e in saved["methods"] if e["method"] == "known_d/true D + homotopy")
    assert exact["inference_flops"] > 0 and exact["solver_info"]["converged_fraction"] == 1.0  # the path's own count
    assert "| known_d | SAE |" in (tmp_path / "ag" / "results.md").read_text()
    figs = sorted(p.name for p in (tmp_path / "ag" / "figures").iterdir())
    assert "unknown_mcc_vs_inference_flops.png" in figs and "known_d_mcc_vs_total_flops.png" in figs
    # every trained method is an engine run of its own: restorable, and re-scored by `jaxsparse eval`
    for method in ("known_d/SAE", "known_z/SAE", "unknown/LISTA-3", "unknown/SC", "unknown/DL"):
        assert (tmp_path / "ag" / "methods" / method / "results.json").is_file(), method
    assert train.methods(tmp_path / "ag") == ["known_d/SAE", "known_z/SAE", "unknown/SAE", "unknown/LISTA-3",
                                              "unknown/SC", "unknown/DL"]
    config, state = train.restore(tmp_path / "ag", method="unknown/SAE")
    assert state.params["decoder"]["w"].shape == (2, 16, 8) and state.step.tolist() == [200, 200]
    scored = train.evaluate(tmp_path / "ag")["methods"]
    sae_run = json.loads((tmp_path / "ag" / "methods" / "unknown" / "SAE" / "results.json").read_text())
    assert sorted(scored["unknown/SAE"]) == ["100", "200"]
    assert scored["unknown/SAE"]["200"]["mean"]["mcc"] == pytest.approx(sae_run["mean"]["mcc"], rel=1e-6)
    assert scored["unknown/SAE"]["200"]["mean"]["mcc"] == pytest.approx(sae["mean"]["mcc"], rel=1e-5)
    with pytest.raises(train.RunDirError):
        train.fit("amortisation-gap", _tiny(), tmp_path / "ag", progress=False)


def test_registered_with_paper_defaults_and_overrides():
    exp = train.get("amortisation-gap")
    c = exp.config_cls()
    assert (c.data.n_latents, c.data.n_features, c.data.k, c.data.n_train, c.data.n_test) == (16, 8, 3, 1024, 1024)
    assert (c.train.steps, c.train.seeds, c.methods.steps_known, c.methods.code_steps) == (40_000, 5, 20_000, 10_000)
    assert (c.methods.lam, c.methods.lr, c.methods.code_lr, c.methods.mlp_hidden) == (0.01, 1e-3, 3e-3, (32, 256))
    grid = train.override(c, ["data.n_latents=128", "data.n_features=32", "data.k=9", "methods.mlp_hidden=32"])
    assert (grid.data.n_latents, grid.data.k, grid.methods.mlp_hidden) == (128, 9, (32,))
    with pytest.raises(train.ConfigError, match="regimes"):
        dataclasses.replace(c, methods=dataclasses.replace(c.methods, regimes=("bogus",)))
    tasks = exp.build(c)
    assert c.methods.known_mlp_hidden == (32,)  # the known regimes' MLP-256 only on request (runtime)
    assert list(tasks)[:3] == ["known_d/SAE", "known_d/MLP-32", "known_z/SAE"] and "unknown/DL" in tasks
    flops = ts.training_flops(c)  # side by side (--jobs 2), the most training FLOPs start first
    cost = {m: t.cost for m, t in tasks.items()}
    assert {m: v for m, v in cost.items() if m != "unknown/DL"} == {m: v for m, v in flops.items() if m != "unknown/DL"}
    assert max(cost, key=cost.get) == "unknown/MLP-256"
    # DL (the fewest FLOPs, but not the shortest, and analysed with Adam) trains before the known SAEs
    assert cost["unknown/DL"] > max(cost["known_d/SAE"], cost["known_z/SAE"]) and cost["unknown/DL"] < cost["unknown/SAE"]
    assert "unknown/MLP-256" in tasks and "known_d/MLP-256" not in tasks
    wide = exp.build(train.override(c, ["methods.known_mlp_hidden=32,256"]))
    assert list(wide)[:3] == ["known_d/SAE", "known_d/MLP-32", "known_d/MLP-256"]
    assert tasks["known_d/SAE"].steps == 20_000 and tasks["unknown/SAE"].steps == 40_000


def test_sources_are_per_seed_and_deterministic():
    config = _tiny()
    task = ts.build(config)["unknown/SAE"]
    sources = lambda: train.build_sweep(task, config.train.seed_values).sources()  # noqa: E731
    a, b = sources(), sources()
    assert a["x"].shape == (2, 128, 8) and a["dictionary"].shape == (2, 16, 8)
    assert bool((a["x"] == b["x"]).all()) and not bool((a["x"][0] == a["x"][1]).all())
    assert isinstance(AmortisationGapConfig().methods.regimes, tuple)


@pytest.mark.slow
def test_default_run_shows_the_issue_claims(tmp_path):
    """The full default run (`jaxsparse run amortisation-gap`): the paper's claims at this spread."""
    results = train.fit("amortisation-gap", AmortisationGapConfig(), tmp_path / "ag", progress=False)
    mcc = {(e["regime"], e["label"]): e["mean"].get("mcc") for e in results["methods"]}
    sae, sc = mcc["unknown", "SAE"], mcc["unknown", "SC: Adam-10000"]
    assert sc >= sae + 0.05                                                  # measured 0.653 vs 0.571
    assert mcc["known_d", "true D + Adam-10000"] >= 0.95 > mcc["known_d", "SAE"] + 0.2  # 0.974 vs 0.672
    assert mcc["known_d", "true D + homotopy"] >= mcc["known_d", "true D + Adam-10000"]  # exact optimum: 0.988
    sc_frontier = next(r for r in results["frontier"] if r["dictionary"] == "SC")
    assert sc_frontier["flops_ratio"] >= 100                                 # measured 927x (FISTA-10)


@pytest.mark.parametrize("regime", ["unknown", "known_d", "known_z"])
@pytest.mark.parametrize("label", ["SAE", "TopK-3", "JumpReLU", "MLP-32", "LISTA-3"])
def test_encoder_loss_is_the_same_on_transposed_activations(regime, label):
    """The feature-major loss (``apply_t``, ``x_hat^T = D^T z^T``) equals the sample-major one, value,
    metrics and gradient, up to float rounding."""
    import jax
    import numpy as np

    config = AmortisationGapConfig()
    encoder = {spec[0]: spec[2] for spec in ts.encoder_specs(config, "unknown")}[label]
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    params = {"encoder": encoder.init(k1, 8, 16), "decoder": {"w": jax.random.normal(k2, (16, 8))}}
    batch = {"x": jax.random.normal(k3, (64, 8)), "z": jax.nn.relu(jax.random.normal(k4, (64, 16))),
             "dictionary": params["decoder"]["w"] * 0.5}
    out = [jax.jit(jax.value_and_grad(lambda p: ts.encoder_loss(regime, encoder, 0.01, p, batch, k1, feature_major=fm),
                                      has_aux=True))(params) for fm in (False, True)]
    (value, aux), grads = out[0]
    (value_t, aux_t), grads_t = out[1]
    np.testing.assert_allclose(value_t, value, rtol=1e-5)
    for name in aux:
        np.testing.assert_allclose(aux_t[name], aux[name], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_t)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)

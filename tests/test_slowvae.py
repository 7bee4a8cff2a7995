"""The SlowVAE experiment (paper 6) end to end at smoke size, and its config's checks."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.slowvae import SlowVAEConfig, paper, smoke
from jaxsparse.experiments.slowvae import tasks as ts
from jaxsparse.experiments.slowvae.config import DataConfig, EvalConfig, ModelConfig


def test_smoke_run_trains_both_models_as_one_paired_grid(tmp_path):
    config = smoke()
    results = train.fit("slowvae", config, tmp_path / "sv", progress=False)
    saved = json.loads((tmp_path / "sv" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert [e["method"] for e in saved["methods"]] == ["slowvae/lap", "betavae/lap"]
    weights = {e["model"]: e["loss_weights"] for e in saved["methods"]}
    assert weights == {"slowvae": {"beta": 1.0, "gamma": 10.0}, "betavae": {"beta": 8.0, "gamma": 0.0}}
    scores = {"mcc", "mig", "modularity", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap",
              "explicitness", "beta_vae", "factor_vae"}
    for e in saved["methods"]:
        assert scores <= set(e["mean"]) and e["n_runs"] == 2
        assert all(0.0 <= e["mean"][k] <= 1.0 for k in scores), e["mean"]
    head = saved["headline"]["lap"]["mcc"]
    slow, beta = ({r["seed"]: r["mcc"] for r in e["per_seed"]} for e in saved["methods"])
    assert head["per_seed"] == pytest.approx([slow[s] - beta[s] for s in (0, 1)])
    assert head["verdict"] in ("slowvae", "betavae", "tie")
    figures = set(saved["figures"])
    assert figures == {"traversals_slowvae_lap.png", "traversals_betavae_lap.png", "correlations.png"}
    assert all((tmp_path / "sv" / "figures" / name).stat().st_size > 0 for name in figures)
    assert "| slowvae/lap |" in (tmp_path / "sv" / "results.md").read_text()
    # one engine run per transition, its models a vmapped grid [seed, model]
    assert train.methods(tmp_path / "sv") == ["lap"]
    _, state = train.restore(tmp_path / "sv", method="lap")
    assert state.step.shape == (2, 2) and np.all(np.asarray(state.step) == config.train.steps)


def test_batches_are_a_function_of_the_step():
    config = smoke()
    sample = ts.pair_sampler(config, "lap")
    source = ts.make_source(jax.random.key(3))
    a, b = ts.batch(config, sample, source, 5), ts.batch(config, sample, source, 5)
    assert a.shape == (config.data.batch_pairs, 2, 32, 32, 1) and np.array_equal(a, b)
    assert not np.array_equal(a, ts.batch(config, sample, source, 6))


def test_loss_weights_follow_the_models_order():
    config = dataclasses.replace(smoke(), model=ModelConfig(models=("betavae", "slowvae"), betavae_beta=4.0))
    w = ts.loss_weights(config)
    assert w["beta"].tolist() == [4.0, 1.0] and w["gamma"].tolist() == [0.0, 10.0]


def test_paper_setting():
    c = paper()
    assert (c.data.image_size, c.data.transitions, c.data.batch_pairs) == (64, ("lap", "loc"), 32)
    assert (c.model.beta, c.model.gamma, c.model.rate, c.model.betavae_beta, c.model.lr) == (1.0, 10.0, 6.0, 8.0, 1e-4)
    assert (c.train.steps, c.eval.n_train, c.eval.n_test, c.eval.vote_train) == (300_000, 10_000, 5_000, 10_000)


@pytest.mark.parametrize("change, field", [
    (dict(data=DataConfig(image_size=48)), "data.image_size"),
    (dict(data=DataConfig(transitions=("lap", "walk"))), "data.transitions"),
    (dict(data=DataConfig(transitions=())), "data.transitions"),
    (dict(data=DataConfig(rate_range=(5.0, 1.0))), "data.rate_range"),
    (dict(data=DataConfig(loc_k=6)), "data.loc_k"),
    (dict(data=DataConfig(batch_pairs=0)), "data.batch_pairs"),
    (dict(model=ModelConfig(models=("vae",))), "model.models"),
    (dict(model=ModelConfig(rate=0.0)), "model.rate"),
    (dict(model=ModelConfig(gamma=-1.0)), "model.gamma"),
    (dict(eval=EvalConfig(n_points=1)), "eval.n_points"),
])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(train.ConfigError, match=field.replace(".", r"\.")):
        SlowVAEConfig(**change)

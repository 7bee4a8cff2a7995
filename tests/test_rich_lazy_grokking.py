"""rich-lazy-grokking: the modular-addition split, the grid initialisation and a smoke run through the engine."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.rich_lazy import grokking as gk
from jaxsparse.models import transformer
from jaxsparse.train import ConfigError, TrainConfig

SMALL = gk.GrokConfig(p=11, train_fraction=0.5, d_model=8, n_heads=2, d_mlp=16, ratios=(0.1, 10.0),
                      train=TrainConfig(steps=30, seeds=2, log_every=10, checkpoint_every=30))


def test_split_covers_every_pair_once_with_the_modular_sum():
    data = gk.split(SMALL)
    x = np.concatenate([data["x_train"], data["x_test"]])
    y = np.concatenate([data["y_train"], data["y_test"]])
    assert len(data["x_train"]) == int(0.5 * 121) and len(x) == 121
    assert len({(a, b) for a, b, _ in x}) == 121 and np.all(x[:, 2] == 11)
    np.testing.assert_array_equal(y, (x[:, 0] + x[:, 1]) % 11)
    again = gk.split(SMALL)  # the split is the split seed's alone
    np.testing.assert_array_equal(again["x_train"], data["x_train"])
    other = gk.split(dataclasses.replace(SMALL, split_seed=1))
    assert not np.array_equal(other["x_train"], data["x_train"])


def test_first_step_reads_the_log():
    rows = [{"step": 30, "a": 0.95}, {"step": 10, "a": 0.2}, {"step": 20, "a": 0.91}, {"step": 40, "a": float("nan")}]
    assert gk.first_step(rows, "a", 0.9) == 20
    assert gk.first_step(rows, "a", 0.99) is None and gk.first_step(rows, "b", 0.0) is None


def test_config_errors_name_the_field():
    for field, value in (("p", 2), ("train_fraction", 1.0), ("ratios", (0.0,)), ("target", 0.0), ("n_heads", 3)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(SMALL, **{field: value})


def test_smoke_run_rescales_per_ratio_and_logs_held_out_accuracy(tmp_path):
    results = train.fit(gk.NAME, SMALL, tmp_path / "g", progress=False)
    saved = json.loads((tmp_path / "g" / "results.json").read_text())
    assert saved["n_runs"] == 4 and [r["ratio"] for r in saved["by_ratio"]] == [0.1, 10.0]
    assert results["experiment"] == gk.NAME and (tmp_path / "g" / "figures" / "time_to_grok.png").exists()
    rows = train.read_metrics(tmp_path / "g" / "methods" / "sweep" / "metrics.jsonl")
    assert {r["step"] for r in rows} == {10, 20, 30} and all(0 <= r["test_accuracy"] <= 1 for r in rows)
    # each grid point starts from its seed's draw, rescaled (Task.grid_init; generic test in test_train_sweep)
    task = gk.build(SMALL)["sweep"]
    drawn = task.init(jax.random.key(0), None)
    scaled = task.grid_init(drawn, {"ratio": 4.0})
    np.testing.assert_allclose(scaled["embed"]["W_E"], 2.0 * drawn["embed"]["W_E"], rtol=1e-6)
    np.testing.assert_allclose(scaled["unembed"]["W_U"], 0.5 * drawn["unembed"]["W_U"], rtol=1e-6)
    # the last logged held-out accuracy is the final parameters' (the monitor runs after the step)
    _, state = train.restore(tmp_path / "g", method="sweep")
    data = gk.split(SMALL)
    logits = jax.jit(jax.vmap(jax.vmap(transformer.apply, (0, None)), (0, None)))(state.params, data["x_test"])
    acc = np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(data["y_test"]), axis=-1)  # [seeds, ratios]
    for r in rows:
        if r["step"] == 30:
            assert abs(r["test_accuracy"] - acc[r["seed"], r["hparam"]]) < 1e-6

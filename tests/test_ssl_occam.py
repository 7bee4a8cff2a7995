"""ssl-occam: config errors, equal views per step, the BYOL teacher's EMA, and a smoke run through the engine."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments import ssl_occam
from jaxsparse.experiments.ssl_occam import tasks
from jaxsparse.train import ConfigError, init_run, make_step

TINY = dataclasses.replace(ssl_occam.smoke(), datasets=("sprites",))


def test_config_errors_name_the_field():
    for field, value in (("methods", ("diet", "moco")), ("datasets", ()), ("views_per_step", 33),
                         ("widths", (6, 8)), ("lrs", (0.0,)), ("label_smoothing", 1.0), ("n_train_digits", 1790)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(TINY, **{field: value})
    assert ssl_occam.SSLConfig().grid()[0] == (1e-3, 0.05)  # the paper's default is a grid point


def test_every_method_sends_the_same_number_of_views_through_the_backbone():
    data = tasks.dataset(TINY, "sprites")
    assert data["train_x"].shape == (128, 8, 8, 1) and set(np.unique(data["train_y"])) <= {0, 1, 2}
    for method, (n_views, per_view) in {"diet": (1, 32), "simclr": (2, 16), "byol": (2, 16)}.items():
        task = tasks.build_task(TINY, data, method)
        data_fn = jax.jit(task.data_fn)
        batch = data_fn(jax.random.key(0), jnp.int32(3))
        assert batch["views"].shape == (n_views, per_view, 8, 8, 1) and batch["idx"].shape == (per_view,)
        again = data_fn(jax.random.key(0), jnp.int32(3))
        np.testing.assert_array_equal(batch["views"], again["views"])  # a pure function of (key, step)
    digits = tasks.dataset(TINY, "digits")
    assert digits["train_x"].shape == (200, 8, 8, 1) and digits["test_x"].shape == (1597, 8, 8, 1)


def test_byol_teacher_is_the_ema_of_the_online_network_and_gets_no_gradient_step():
    data = tasks.dataset(TINY, "sprites")
    task = tasks.build_task(TINY, data, "byol")
    hp = jax.tree.map(lambda x: x[0], task.hparams)
    state, source = init_run(task, jnp.int32(0), hp)
    step = make_step(task.loss_fn, task.optimizer, project=task.project)  # jitted
    new, metrics = step(state, task.data_fn(source, state.step), hp)
    m = TINY.ema
    online = new.params["online"]
    for name in ("net", "proj"):
        want = jax.tree.map(lambda t, o: m * t + (1 - m) * o, state.params["teacher"][name], online[name])
        for a, b in zip(jax.tree.leaves(new.params["teacher"][name]), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.params["online"]["net"], online["net"]))
    assert max(moved) > 0 and np.isfinite(float(metrics["loss"])) and 0 <= float(metrics["loss"]) <= 8


def test_smoke_run_scores_every_method_and_grid_point(tmp_path):
    config = dataclasses.replace(TINY, methods=("diet", "simclr"), widths=(4,),
                                 train=train.TrainConfig(steps=4, seeds=2, log_every=2, checkpoint_every=2))
    train.fit(ssl_occam.NAME, config, tmp_path / "r", progress=False)
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    d = saved["datasets"]["sprites"]
    for method in ("diet", "simclr"):
        s = d["methods"][method]
        assert len(s["grid"]) == 2 and all(len(p["per_seed"]) == 2 for p in s["grid"])
        assert all(0.0 <= p["mean"] <= 1.0 for p in s["grid"]) and s["grid_range"] >= 0
    assert 0 < d["controls"]["pixels"] <= 1 and len(d["controls"]["random_init"]["per_seed"]) == 2
    assert d["comparison"]["best_ssl"] == "simclr"
    assert (tmp_path / "r" / "figures" / "grid.png").stat().st_size > 0
    assert "DIET best" in (tmp_path / "r" / "results.md").read_text()

"""The cross-entropy identifiability experiment (paper 2) end to end at smoke size, and its parts."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.ce_identifiability import CEConfig, paper, smoke
from jaxsparse.experiments.ce_identifiability import tasks as ts
from jaxsparse.experiments.ce_identifiability.config import DataConfig, ModelConfig, SpritesConfig


def test_smoke_run_trains_every_objective_and_the_sprites_classifier(tmp_path):
    # instance discrimination is the supervised path with another label (tested below): two compiles saved
    config = dataclasses.replace(smoke(), model=dataclasses.replace(smoke().model, methods=("supervised", "infonce")))
    results = train.fit("ce-identifiability", config, tmp_path / "ce", progress=False)
    saved = json.loads((tmp_path / "ce" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert [r["task"] for r in saved["r2"]] == ["supervised-d3-k10", "infonce-d3-k10"]
    for row in saved["r2"]:
        assert len(row["r2"]["per_seed"]) == 2
        assert all(np.isfinite(row[k]["mean"]) for k in ("r2", "sv_ratio", "random_r2", "observed_r2"))
        assert 0.0 <= row["sv_ratio"]["mean"] <= 1.0
    sprite = saved["sprites"]
    assert 0.0 <= sprite["shape_accuracy"] <= 1.0
    assert [r["factor"] for r in sprite["factors"]] == ["scale", "orientation", "pos_x", "pos_y"]
    assert set(saved["figures"]) == {"r2.png", "latents_supervised-d3-k10.png", "latents_infonce-d3-k10.png",
                                     "sprites_decoding.png"}
    assert all((tmp_path / "ce" / "figures" / n).stat().st_size > 0 for n in saved["figures"])
    assert "| supervised | 3 | 10 |" in (tmp_path / "ce" / "results.md").read_text()
    _, state = train.restore(tmp_path / "ce", method="supervised-d3-k10")
    assert state.params["head"].shape == (2, config.data.n_clusters, 3)
    _, state = train.restore(tmp_path / "ce", method="sprites-shape")
    assert np.all(np.asarray(state.step) == config.sprites.steps)


def test_batches_follow_the_official_labels_and_are_a_function_of_the_step():
    config = smoke()
    source = ts.make_source(config, 3, jax.random.key(0))
    a = ts.batch(config, "instance", 10.0, source, 5)
    b = ts.batch(config, "instance", 10.0, source, 5)
    assert a["x"].shape == (config.data.batch_size, 3) and np.array_equal(a["x"], b["x"])
    assert not np.array_equal(a["x"], ts.batch(config, "instance", 10.0, source, 6)["x"])
    s = ts.batch(config, "supervised", 10.0, source, 5)
    np.testing.assert_array_equal(s["label"], a["label"] % config.data.n_clusters)
    np.testing.assert_array_equal(s["x"], a["x"])  # the same draws, a different label
    p = ts.batch(config, "infonce", 10.0, source, 5)
    assert set(p) == {"x", "x_pos"} and p["x_pos"].shape == p["x"].shape


def test_instance_and_supervised_heads_and_losses():
    config = smoke()
    key = jax.random.key(0)
    inst, sup = ts.init(config, "instance", 3, key), ts.init(config, "supervised", 3, key)
    assert inst["head"].shape == (config.data.n_instances, 3) and sup["head"].shape == (config.data.n_clusters, 3)
    assert float(jnp.max(jnp.abs(inst["head"]))) <= 1 / np.sqrt(3)
    source = ts.make_source(config, 3, key)
    for method, params in (("instance", inst), ("supervised", sup)):
        b = ts.batch(config, method, 10.0, source, 0)
        loss, aux = ts.loss(config, method, params, b, key)
        rows = params["head"].shape[0]
        assert np.isfinite(loss) and abs(float(loss) - np.log(rows)) < 1.0  # near chance at initialisation
        assert 0.0 <= float(aux["accuracy"]) <= 1.0


def test_latents_are_recovered_through_the_mixing():
    config = smoke()
    source = ts.make_source(config, 3, jax.random.key(1))
    s = ts.sample_world(config, source, 10.0, jax.random.key(2), 64)
    np.testing.assert_allclose(jnp.linalg.norm(s["z"], axis=1), 1.0, atol=1e-5)
    from jaxsparse.data import hypersphere
    np.testing.assert_allclose(hypersphere.mixing_inverse(source["mixing"], s["x"], slope=ts.MIXING_SLOPE), s["z"],
                               atol=1e-4)


def test_paper_setting():
    c = paper()
    assert (c.data.dims, c.data.kappas, c.data.n_clusters, c.data.n_instances, c.data.batch_size) == (
        (5, 10, 20), (10.0, 50.0), 100, 10_240, 1024)
    assert (c.model.wide, c.model.narrow, c.model.n_hidden, c.model.lr) == (50, 10, 4, 1e-3)
    assert (c.train.steps, c.eval.n_samples, c.sprites.image_size) == (500_000, 8192, 64)


@pytest.mark.parametrize("change, field", [
    (dict(data=DataConfig(dims=(1,))), "data.dims"),
    (dict(data=DataConfig(kappas=(0.0,))), "data.kappas"),
    (dict(data=DataConfig(n_instances=10)), "data.n_instances"),
    (dict(data=DataConfig(batch_size=1)), "data.batch_size"),
    (dict(model=ModelConfig(methods=("simclr",))), "model.methods"),
    (dict(model=ModelConfig(temperature=0.0)), "model.temperature"),
    (dict(sprites=SpritesConfig(image_size=48)), "sprites.image_size"),
])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(train.ConfigError, match=field.replace(".", r"\.")):
        CEConfig(**change)

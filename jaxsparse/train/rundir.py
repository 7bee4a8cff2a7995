"""The run directory: ``config.json``, ``checkpoints/``, ``metrics.jsonl``, ``results.json``, ``figures/``.

Only process 0 writes these files (orbax writes ``checkpoints/`` collectively); every write is
a new file renamed into place, or an append of whole flushed lines, so a crash never leaves a
half-written JSON file and never deletes what was there.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import jax
import numpy as np


class RunDirError(FileExistsError):
    """The run directory exists (and ``overwrite`` was not given) or is not a run directory."""


CONFIG, METRICS, RESULTS, CHECKPOINTS, FIGURES = "config.json", "metrics.jsonl", "results.json", "checkpoints", "figures"


def is_writer() -> bool:
    """True on the process that writes non-orbax files (process 0)."""
    return jax.process_index() == 0


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (temporary file, then rename); process 0 only."""
    if not is_writer():
        return
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False, default=_json_default)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming it if it is missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (is `{path.parent}` a jaxsparse run directory?)")
    with open(path) as f:
        return json.load(f)


def check_new(run_dir: str | os.PathLike, *, overwrite: bool) -> Path:
    """Refuse an existing non-empty ``run_dir`` unless ``overwrite`` (every process checks)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())) and not overwrite:
        raise RunDirError(
            f"run directory {str(run_dir)!r} already exists and is not empty; pass --overwrite "
            f"(overwrite=True) to replace it, or `jaxsparse resume {run_dir}` to continue it"
        )
    return run_dir


def create(run_dir: str | os.PathLike) -> None:
    """Make an empty ``run_dir`` with ``figures/``, replacing what is there (process 0 only).

    Call after :func:`check_new`, and after a barrier when several processes run, so that no
    process sees the directory half made.
    """
    if not is_writer():
        return
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        shutil.rmtree(run_dir)
    elif run_dir.exists():
        run_dir.unlink()
    (run_dir / FIGURES).mkdir(parents=True)


class MetricsLog:
    """Appends one JSON line per logged step per run to ``metrics.jsonl``, flushed line by line."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._f = open(self.path, "a") if is_writer() else None

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        if self._f is None:
            return
        for row in rows:
            self._f.write(json.dumps(row, default=_json_default) + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Parsed lines of ``metrics.jsonl`` (a torn last line from a killed run is skipped)."""
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def truncate_metrics(path: str | os.PathLike, step: int) -> None:
    """Keep only lines with ``step <= step`` (a resumed run re-logs the rest identically).

    The old file is kept as ``metrics.jsonl.before-resume-<step>`` until the new one is in place.
    """
    path = Path(path)
    if not is_writer() or not path.is_file():
        return
    keep = [r for r in read_metrics(path) if r.get("step", math.inf) <= step]
    backup = path.with_name(f"{path.name}.before-resume-{step}")
    shutil.copyfile(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        for row in keep:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    backup.unlink()


def summarize(runs: list[dict[str, Any]], keys: tuple[str, ...] = ("seed", "hparam", "step")) -> dict[str, Any]:
    """Per-run scores -> ``{"per_seed": runs, "mean": {...}, "std": {...}, "min": ..., "max": ...}``.

    ``std`` is the sample standard deviation (ddof=1; 0 for a single run). Non-numeric entries and
    the identifying ``keys`` are not aggregated.
    """
    names = [k for k in runs[0] if k not in keys and isinstance(runs[0][k], (int, float))] if runs else []
    table = {k: np.asarray([r[k] for r in runs], np.float64) for k in names}
    ddof = 1 if len(runs) > 1 else 0
    return {
        "per_seed": runs,
        "n_runs": len(runs),
        "mean": {k: float(np.mean(v)) for k, v in table.items()},
        "std": {k: float(np.std(v, ddof=ddof)) for k, v in table.items()},
        "min": {k: float(np.min(v)) for k, v in table.items()},
        "max": {k: float(np.max(v)) for k, v in table.items()},
    }

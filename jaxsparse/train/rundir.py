"""The run directory: ``config.json``, ``checkpoints/``, ``metrics.jsonl``, ``results.json``, ``figures/``.

Only process 0 writes these files (orbax writes ``checkpoints/`` collectively); every write is
a new file renamed into place, or an append of whole flushed lines, so a crash never leaves a
half-written JSON file and never deletes what was there.

Rules that keep a user's files safe:

- A command validates everything it reads (the directory, ``config.json``, the experiment) before it
  writes anything; a refused command leaves the directory byte-for-byte as it was.
- Every command that writes into a run directory holds its lock (:func:`lock`, an advisory
  ``flock`` on the directory itself, so taking it creates no file); a second writer is refused while
  a run is being written.
- ``--overwrite`` replaces only a run of the same experiment, and then only the entries the engine
  writes (:data:`OWNED`); any other file in the directory is kept. Figures are replaced one by one as
  the new run writes them.
"""

from __future__ import annotations

import contextlib
import fcntl
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
METHODS, EVAL, REPORT = "methods", "eval.json", "report.md"
OWNED = (CONFIG, METRICS, RESULTS, CHECKPOINTS, METHODS, EVAL, REPORT, "results.md")
"""Entries of a run directory that the engine writes, and that ``--overwrite`` may replace."""


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
    """Read a JSON file; a missing or damaged file raises :class:`RunDirError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise RunDirError(f"{path} does not exist (is `{path.parent}` a jaxsparse run directory?)")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunDirError(f"{path} is damaged (not valid JSON: {e}); nothing was changed") from None


def read_header(run_dir: str | os.PathLike) -> dict[str, Any]:
    """``config.json`` of a run directory, checked to be a jaxsparse header (experiment + config)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"run directory {str(run_dir)!r} does not exist")
    header = read_json(run_dir / CONFIG)
    if not isinstance(header, dict) or not isinstance(header.get("experiment"), str) or not isinstance(
            header.get("config"), dict):
        raise RunDirError(f"{run_dir / CONFIG} is not a jaxsparse run config (no `experiment` and `config` entries)")
    return header


def check_new(run_dir: str | os.PathLike, *, overwrite: bool, experiment: str) -> Path:
    """Refuse to write a new run into ``run_dir`` unless it is absent or empty (every process checks).

    With ``overwrite``, an existing directory must be a run of the same ``experiment``: a directory
    that is not a run directory, or holds another experiment's run, is never overwritten.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run directory {str(run_dir)!r} exists and is not a directory")
    if not run_dir.exists() or not any(run_dir.iterdir()):
        return run_dir
    if not overwrite:
        raise RunDirError(
            f"run directory {str(run_dir)!r} already exists and is not empty; pass --overwrite "
            f"(overwrite=True) to replace it, or `jaxsparse resume {run_dir}` to continue it"
        )
    header = read_header(run_dir)
    if header["experiment"] != experiment:
        raise RunDirError(
            f"run directory {str(run_dir)!r} holds a run of experiment {header['experiment']!r}, not {experiment!r}; "
            "--overwrite only replaces a run of the same experiment (choose another --out)"
        )
    return run_dir


def create(run_dir: str | os.PathLike) -> None:
    """Make ``run_dir`` and ``figures/``; in an existing run, remove only the entries in :data:`OWNED`.

    Call after :func:`check_new` (which refuses anything else), holding :func:`lock`, and after a
    barrier when several processes run, so that no process sees the directory half made. Files
    that the engine does not write are kept. Process 0 only.
    """
    if not is_writer():
        return
    run_dir = Path(run_dir)
    for name in OWNED:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    (run_dir / FIGURES).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def lock(run_dir: str | os.PathLike):
    """Hold the run directory's write lock (an advisory ``flock`` on the directory; creates no file).

    Raises :class:`RunDirError` at once if another process holds it (a run still being written).
    Only process 0 locks (it is the one that writes); on other processes this does nothing.
    """
    if not is_writer():
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(
                f"run directory {str(run_dir)!r} is being written by another process (it holds the run's lock); "
                "wait for it to finish or stop it, then try again"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


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
    """Per-run scores -> ``{"per_seed": runs, "n_runs", "std_ddof": 1, "mean", "std", "min", "max"}``.

    The one summary of every results file. ``std`` is the sample standard deviation over runs,
    ``sqrt(sum (v - mean)^2 / (n - 1))`` (ddof=1, recorded as ``std_ddof``; 0 for a single run).
    Non-numeric entries and the identifying ``keys`` are not aggregated.
    """
    names = [k for k in runs[0] if k not in keys and isinstance(runs[0][k], (int, float))] if runs else []
    table = {k: np.asarray([r[k] for r in runs], np.float64) for k in names}
    ddof = 1 if len(runs) > 1 else 0
    return {
        "per_seed": runs,
        "n_runs": len(runs),
        "std_ddof": 1,
        "mean": {k: float(np.mean(v)) for k, v in table.items()},
        "std": {k: float(np.std(v, ddof=ddof)) for k, v in table.items()},
        "min": {k: float(np.min(v)) for k, v in table.items()},
        "max": {k: float(np.max(v)) for k, v in table.items()},
    }

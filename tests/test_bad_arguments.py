"""Every command x every registered experiment x every kind of bad argument: a clear error naming
the problem, and the directory byte-for-byte unchanged (issue: no command loses a user's files)."""

import contextlib
import json
from pathlib import Path

import pytest

import jaxsparse.experiments  # noqa: F401  (registers the experiments)
from jaxsparse import train
from jaxsparse.cli import main
from jaxsparse.train import rundir
from jaxsparse.train.engine import _header

EXPERIMENTS = [n for n in train.names() if train.get(n).module.startswith("jaxsparse.experiments")]
COMMANDS = ("run", "run --overwrite", "resume", "eval", "report")


def snapshot(path: Path) -> dict | None:
    """Every file's bytes and every directory under ``path`` (``None`` if it does not exist)."""
    if not path.exists():
        return None
    return {str(p.relative_to(path)): (p.read_bytes() if p.is_file() else "dir") for p in sorted(path.rglob("*"))}


def _finished_looking(path: Path, name: str) -> Path:
    """A run directory of ``name`` with its config and a results file (no training needed)."""
    exp = train.get(name)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(_header(exp, exp.config_cls())))
    (path / "results.json").write_text(json.dumps({"experiment": name, "n_runs": 1, "mean": {}, "std": {}, "min": {},
                                                   "max": {}}))
    (path / "notes.txt").write_text("the user's own notes")
    return path


def _make(case: str, tmp: Path, name: str) -> Path:
    run_dir = tmp / "run"
    if case == "missing directory":
        return run_dir
    if case == "directory of another experiment":
        other = next(n for n in EXPERIMENTS if n != name)
        return _finished_looking(run_dir, other)
    if case == "not a run directory":
        run_dir.mkdir()
        (run_dir / "thesis.tex").write_text("months of work")
        return run_dir
    run_dir = _finished_looking(run_dir, name)
    if case == "damaged config.json":
        text = (run_dir / "config.json").read_text()
        (run_dir / "config.json").write_text(text[: len(text) // 2])
    elif case == "config of another experiment's fields":
        header = json.loads((run_dir / "config.json").read_text())
        header["config"] = {"no_such_section": {"x": 1}}
        (run_dir / "config.json").write_text(json.dumps(header))
    elif case == "missing results":
        (run_dir / "results.json").unlink()
    return run_dir


# (case, command) -> words the error must contain; commands missing for a case are not bad input there
EXPECTED = {
    "missing directory": {"resume": "does not exist", "eval": "does not exist", "report": "does not exist"},
    "directory of another experiment": {"run": "already exists", "run --overwrite": "holds a run of experiment"},
    "not a run directory": {"run": "already exists", "run --overwrite": "config.json does not exist",
                            "resume": "config.json does not exist", "eval": "config.json does not exist",
                            "report": "config.json does not exist"},
    "damaged config.json": {"run": "already exists", "run --overwrite": "is damaged", "resume": "is damaged",
                            "eval": "is damaged", "report": "is damaged"},
    "config of another experiment's fields": {"run --overwrite": "does not hold a valid", "resume": "does not hold a valid",
                                              "eval": "does not hold a valid"},
    "missing results": {"run": "already exists", "report": "the run has not finished", "eval": "no checkpoints"},
    "still being written": {"run --overwrite": "being written by another process", "resume": "being written",
                            "eval": "being written", "report": "being written"},
}
CASES = [(name, case, command, words) for name in EXPERIMENTS for case, by_command in EXPECTED.items()
         for command, words in by_command.items()]


def _argv(command: str, name: str, run_dir: Path) -> list[str]:
    if command.startswith("run"):
        return ["run", name, "--out", str(run_dir), "--no-progress", *command.split()[1:]]
    return [command, str(run_dir)] + (["--no-progress"] if command == "resume" else [])


@pytest.fixture
def lock_holder():
    """Hold a run directory's lock (as a run being written does) until the test ends.

    ``flock`` locks belong to open file descriptions, not processes: a lock taken through one
    ``open`` blocks a ``LOCK_NB`` attempt through another even in the same process, so this needs no
    second process (``tests/test_train_rundir.py`` checks the lock across processes).
    """
    with contextlib.ExitStack() as stack:
        yield lambda run_dir: stack.enter_context(rundir.lock(run_dir))


def test_every_experiment_is_covered():
    assert {"amortisation-gap", "sae-synthetic"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name, case, command, words", CASES, ids=[f"{n}|{c}|{m}" for n, c, m, _ in CASES])
def test_bad_argument_leaves_directory_unchanged(tmp_path, capsys, lock_holder, name, case, command, words):
    run_dir = _make(case, tmp_path, name)
    if case == "still being written":
        lock_holder(run_dir)
    before = snapshot(run_dir)
    assert main(_argv(command, name, run_dir)) == 1
    err = capsys.readouterr().err
    assert f"jaxsparse {command.split()[0]}: error:" in err and words in err, err
    assert snapshot(run_dir) == before

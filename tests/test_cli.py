"""The ``jaxsparse`` command: list/run/resume/eval/report, errors, and SIGKILL + resume bit-identity."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxsparse.cli import main
from jaxsparse.train import read_metrics

TINY = [
    "--set", "data.n_latents=8", "--set", "data.n_features=4", "--set", "data.k=2", "--set", "data.n_train=64",
    "--set", "data.n_test=64", "--set", "model.n_latents=8",
]  # fmt: skip

# One thread for XLA: the same compiled program then gives the same bits in every process.
DETERMINISTIC_ENV = {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAXSPARSE_SWEEP_THREADS": "1",  # one program per sweep, whatever cores this process may use
}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "jaxsparse.cli", *args]


def test_list_shows_experiments_and_defaults(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "sae-synthetic:" in out and "model.lam = 0.01" in out and "train.seeds = 1" in out


def test_run_report_eval_in_process(tmp_path, capsys):
    run_dir = tmp_path / "r"
    args = ["run", "sae-synthetic", "--seeds", "2", "--out", str(run_dir), "--no-progress", *TINY,
            "--set", "train.steps=10", "--set", "train.checkpoint_every=5", "--set", "train.log_every=5"]
    assert main(args) == 0
    assert "2 runs on 1 devices, 1 processes; mean" in capsys.readouterr().out
    assert json.loads((run_dir / "config.json").read_text())["config"]["train"]["seeds"] == 2
    assert (run_dir / "figures" / "loss.png").stat().st_size > 1000
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "| mcc |" in out and "| dictionary_mcc |" in out and (run_dir / "report.md").is_file()
    assert main(["eval", str(run_dir)]) == 0
    scores = json.loads((run_dir / "eval.json").read_text())
    assert sorted(scores) == ["10", "5"]
    results = json.loads((run_dir / "results.json").read_text())
    assert scores["10"]["mean"]["mcc"] == pytest.approx(results["mean"]["mcc"], rel=1e-6)
    # run into the same directory again: refused, exit status 1, nothing changed
    before = (run_dir / "metrics.jsonl").read_bytes()
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert (run_dir / "metrics.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    "setting, message",
    [("model.lamda=0.1", "unknown config field `model.lamda`"), ("train.steps=ten", "`train.steps` expects int"),
     ("optim.lr=fast", "`optim.lr` expects float")],
)
def test_bad_set_names_the_field(tmp_path, capsys, setting, message):
    assert main(["run", "sae-synthetic", "--out", str(tmp_path / "x"), "--set", setting]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_unknown_experiment(capsys):
    assert main(["run", "no-such-experiment"]) == 1
    assert "unknown experiment 'no-such-experiment'" in capsys.readouterr().err


def test_a_bug_is_not_hidden_as_a_one_line_error(monkeypatch, tmp_path):
    from jaxsparse import train

    def broken(*args, **kwargs):
        raise ValueError("a real bug")

    monkeypatch.setattr(train, "fit", broken)
    with pytest.raises(ValueError, match="a real bug"):  # a traceback, not "error: a real bug" and exit 1
        main(["run", "sae-synthetic", "--out", str(tmp_path / "unused")])


def _final_state(run_dir: Path, method: str | None = None):
    from jaxsparse.train import restore

    return restore(run_dir, method=method)[1]


def _kill_after_first_checkpoint(argv: list[str], ckpt_dir: Path, timeout: float = 300) -> None:
    """Start ``jaxsparse argv`` and SIGKILL it as soon as ``ckpt_dir`` holds a checkpoint."""
    proc = subprocess.Popen(_cli(*argv), env=DETERMINISTIC_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ckpt_dir.is_dir() and any(p.name.isdigit() for p in ckpt_dir.iterdir()):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"


CE_SMALL = [
    "--seeds", "2", "--no-progress", "--set", "data.dims=3", "--set", "data.n_clusters=4", "--set", "data.n_instances=16",
    "--set", "data.mixing_candidates=100", "--set", "data.batch_size=32", "--set", "model.wide=4", "--set", "model.narrow=2",
    "--set", "model.n_hidden=1", "--set", "eval.n_samples=64", "--set", "sprites.enabled=false",
    "--set", "train.steps=1000", "--set", "train.log_every=250", "--set", "train.checkpoint_every=250",
]  # fmt: skip


def _without_timing(obj):
    """``obj`` with every ``timing`` entry (wall times) removed."""
    if isinstance(obj, dict):
        return {k: _without_timing(v) for k, v in obj.items() if k != "timing"}
    if isinstance(obj, list):
        return [_without_timing(v) for v in obj]
    return obj


def test_sigkill_during_the_second_method_then_resume_is_bitwise_identical(tmp_path):
    """ce-identifiability at toy size (methods instance-d3-k10, then supervised-d3-k10), killed by
    SIGKILL after the second method's first checkpoint: resume skips the finished first method and
    continues the second to bitwise the same parameters, log and results as an uninterrupted run.
    The uninterrupted run trains both methods at once in two worker processes (``--jobs 2``), the
    killed one one after the other (``--jobs 1``): the files agree bitwise all the same."""
    full, killed = tmp_path / "full", tmp_path / "killed"
    first, second = killed / "methods" / "instance-d3-k10", killed / "methods" / "supervised-d3-k10"
    ref = subprocess.run(_cli("run", "ce-identifiability", "--out", str(full), "--jobs", "2", *CE_SMALL),
                         env=DETERMINISTIC_ENV, capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    # with workers, a free worker draws the loss figure while the analysis runs here
    assert (full / "figures" / "loss.png").stat().st_size > 1000 and "figures/loss.png" in (full / "report.md").read_text()
    _kill_after_first_checkpoint(["run", "ce-identifiability", "--out", str(killed), "--jobs", "1", *CE_SMALL],
                                 second / "checkpoints")
    first_results = (first / "results.json").read_bytes()
    assert not (second / "results.json").exists() and not (killed / "results.json").exists()

    res = subprocess.run(_cli("resume", str(killed), "--no-progress"), env=DETERMINISTIC_ENV, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    # the finished first method was not trained again; the second continued from its checkpoint
    assert (first / "results.json").read_bytes() == first_results
    resumed = json.loads((second / "results.json").read_text())
    assert resumed["timing"]["resumed_from_step"] > 0
    for name in ("results.json", "methods/supervised-d3-k10/results.json"):
        a, b = (json.loads((d / name).read_text()) for d in (full, killed))
        assert _without_timing(a) == _without_timing(b), name
    assert read_metrics(full / "methods/supervised-d3-k10/metrics.jsonl") == read_metrics(
        second / "metrics.jsonl")
    import jax

    for method in ("instance-d3-k10", "supervised-d3-k10"):
        a, b = _final_state(full, method), _final_state(killed, method)
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise


def test_threads_sets_the_sweeps_threads_and_must_be_positive(tmp_path, capsys, monkeypatch):
    from jaxsparse.train.sweep import THREADS_ENV, default_threads

    monkeypatch.setenv(THREADS_ENV, "1")  # recorded, so that what `main` sets is undone after the test
    monkeypatch.delenv(THREADS_ENV)
    assert main(["run", "sae-synthetic", "--out", str(tmp_path / "r"), "--threads", "0", *TINY]) == 1
    assert "--threads must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["run", "sae-synthetic", "--out", str(tmp_path / "r"), "--threads", "3", "--no-progress", *TINY]) == 0
    assert os.environ[THREADS_ENV] == "3" and default_threads() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            default_threads()


def test_jobs_must_be_positive(tmp_path, capsys):
    assert main(["run", "sae-synthetic", "--out", str(tmp_path / "r"), "--jobs", "0", *TINY]) == 1
    assert "--jobs must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    from jaxsparse.train import fit, get

    exp = get("sae-synthetic")
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="`jobs` must be an int >= 1"):
            fit(exp, exp.config_cls(), tmp_path / "f", jobs=bad)
    assert not (tmp_path / "f").exists()


def test_preset_starts_from_the_modules_config_and_set_applies_on_top(tmp_path, capsys):
    from jaxsparse.experiments.rich_lazy import relu_grid

    out = tmp_path / "g"
    assert main(["run", "rich-lazy-grid", "--preset", "paper", "--out", str(out), "--no-progress", "--set", "scales=0.5",
                 "--set", "deltas=0.0", "--set", "d=4", "--set", "n=8", "--set", "n_kernel=4", "--set", "n_test=8",
                 "--set", "train.steps=2", "--set", "train.log_every=1", "--set", "train.checkpoint_every=2",
                 "--set", "train.seeds=1"]) == 0
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["train"]["first_seed"] == relu_grid.paper().train.first_seed == 100 and saved["d"] == 4
    assert main(["run", "rich-lazy-neuron", "--preset", "paper", "--out", str(tmp_path / "n")]) == 1
    assert "--preset must be one of [] for 'rich-lazy-neuron'" in capsys.readouterr().err
    assert not (tmp_path / "n").exists()


def test_commands_keep_compiled_programs_between_runs(tmp_path):
    """`jaxsparse run` turns on JAX's persistent compilation cache (JAXSPARSE_COMPILE_CACHE, here a
    temporary directory): the first run fills it, a second run of the same config loads from it and
    gives bitwise the same results; `off` turns it off; a JAX_COMPILATION_CACHE_DIR of the user's own wins."""
    cache = tmp_path / "cache"
    env = {k: v for k, v in DETERMINISTIC_ENV.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    args = ["--seeds", "2", "--no-progress", *TINY, "--set", "train.steps=20", "--set", "train.checkpoint_every=10"]
    results = []
    for name in ("a", "b"):
        subprocess.run(_cli("run", "sae-synthetic", "--out", str(tmp_path / name), *args),
                       env={**env, "JAXSPARSE_COMPILE_CACHE": str(cache)}, check=True, capture_output=True)
        results.append(json.loads((tmp_path / name / "results.json").read_text()))
        if name == "a":
            filled = {p.name for p in cache.iterdir()}
            assert len(filled) >= 3  # init, chunk and scoring programs at least
    assert {p.name for p in cache.iterdir()} == filled  # the second run compiled nothing new
    assert results[0]["per_seed"] == results[1]["per_seed"]

    from jaxsparse import cli

    probe = "import os; from jaxsparse import cli; print(cli.compile_cache(), os.environ.get('JAX_COMPILATION_CACHE_DIR'))"
    for extra, expected in (({"JAXSPARSE_COMPILE_CACHE": "off"}, "None None"),
                            ({"JAXSPARSE_COMPILE_CACHE": "off", "JAX_COMPILATION_CACHE_DIR": "/own"}, "/own /own"),
                            ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/jaxsparse/xla /xdg/jaxsparse/xla")):
        out = subprocess.run([sys.executable, "-c", probe], env={**env, **extra}, check=True, capture_output=True,
                             text=True).stdout
        assert out.split() == expected.split(), (extra, out)
    assert cli.COMPILE_CACHE_ENV == "JAXSPARSE_COMPILE_CACHE"


def test_a_method_failing_in_a_worker_names_itself_and_lets_the_others_finish(tmp_path):
    """ce-identifiability with a learning rate that sends every loss to NaN, two workers: the command
    fails with the first method's divergence (named), warns about the second, keeps both method
    directories, and leaves no multiprocessing resources behind (no resource-tracker warning)."""
    out = tmp_path / "diverged"
    res = subprocess.run(_cli("run", "ce-identifiability", "--out", str(out), "--jobs", "2", *CE_SMALL,
                              "--set", "model.lr=1e30"), env=DETERMINISTIC_ENV, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 1
    assert re.search(r"error: method '(instance|supervised)-d3-k10': non-finite loss", res.stderr), res.stderr
    assert "another method failed too: method '" in res.stderr
    assert "leaked" not in res.stderr
    assert {p.name for p in (out / "methods").iterdir()} == {"instance-d3-k10", "supervised-d3-k10"}
    assert not (out / "results.json").exists()

"""Run directories, checkpoints, restore and the faults: overwrite, config mismatch, NaN, corruption."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.experiments.sae_synthetic import DataConfig, ModelConfig, OptimConfig, SAEConfig, build
from jaxsparse.train import (
    ConfigMismatch,
    RunDirError,
    TrainConfig,
    TrainingDiverged,
    fit,
    read_metrics,
    register,
    restore,
)
from jaxsparse.train.checkpoint import fingerprint

TINY = SAEConfig(
    data=DataConfig(n_latents=8, n_features=4, k=2, n_train=64, n_test=64),
    model=ModelConfig(n_latents=8),
    optim=OptimConfig(lr=1e-2),
    train=TrainConfig(steps=20, seeds=3, checkpoint_every=5, log_every=4, keep_checkpoints=2),
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 3-seed run of the sae-synthetic experiment (shared; copy it before damaging it)."""
    run_dir = tmp_path_factory.mktemp("runs") / "sae"
    results = fit("sae-synthetic", TINY, run_dir, progress=False)
    return run_dir, results


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_run_directory_layout(finished):
    run_dir, results = finished
    assert {p.name for p in run_dir.iterdir()} >= {"config.json", "checkpoints", "metrics.jsonl", "results.json", "figures"}
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["experiment"] == "sae-synthetic" and saved["config"]["train"]["seeds"] == 3
    rows = read_metrics(run_dir / "metrics.jsonl")
    # log_every=4 over 20 steps -> steps 4, 8, 12, 16, 20; one line per seed each
    assert [(r["step"], r["seed"]) for r in rows] == [(s, i) for s in (4, 8, 12, 16, 20) for i in range(3)]
    assert {"loss", "mse", "l1", "l0"} <= set(rows[0])
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert [r["seed"] for r in on_disk["per_seed"]] == [0, 1, 2]
    for key in ("mcc", "dictionary_mcc", "fvu", "l0"):
        values = [r[key] for r in on_disk["per_seed"]]
        assert on_disk["mean"][key] == pytest.approx(np.mean(values))
        assert on_disk["std"][key] == pytest.approx(np.std(values, ddof=1))
    assert on_disk["mean"] == pytest.approx(results["mean"])
    last = [r for r in rows if r["step"] == 20]
    assert [r["train_loss"] for r in on_disk["per_seed"]] == [r["loss"] for r in last]
    # keep the last 2 (15, 20) and the best by mean loss (the last one here, loss decreases)
    assert sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == [15, 20]


def test_restore_returns_config_and_stacked_state(finished):
    run_dir, _ = finished
    config, state = restore(run_dir)
    assert config == TINY
    assert state.step.tolist() == [20, 20, 20]
    assert state.params["decoder"]["w"].shape == (3, 8, 4)
    np.testing.assert_allclose(jnp.linalg.norm(state.params["decoder"]["w"], axis=-1), 1.0, rtol=1e-5)
    _, earlier = restore(run_dir, step=15)
    assert earlier.step.tolist() == [15, 15, 15]


def test_restore_in_a_fresh_process_reproduces_logged_final_metrics(finished):
    run_dir, _ = finished
    code = f"""
        import json, jaxsparse.experiments, numpy as np
        import jaxsparse.train as T
        config, state, task, sources = T.restore_run({str(run_dir)!r})
        scores = T.score(task, config.train, state, sources)
        print(json.dumps(scores["per_seed"]))
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    logged = json.loads((run_dir / "results.json").read_text())["per_seed"]
    assert len(fresh) == 3
    for a, b in zip(fresh, logged):
        assert set(b) - set(a) == {"train_loss", "train_mse", "train_l1", "train_l0"}  # logged, not re-scored
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-7), k


def test_run_refuses_existing_directory_without_overwrite(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    before = _snapshot(run_dir)
    with pytest.raises(RunDirError, match="already exists.*--overwrite"):
        fit("sae-synthetic", TINY, run_dir, progress=False)
    assert _snapshot(run_dir) == before  # nothing touched
    (run_dir / "stale.txt").write_text("from the old run")
    fit("sae-synthetic", TINY, run_dir, overwrite=True, progress=False)  # explicit: replaces the run's own files
    assert (run_dir / "stale.txt").read_text() == "from the old run"  # a file the engine did not write is kept
    assert (run_dir / "results.json").is_file()
    assert len(read_metrics(run_dir / "metrics.jsonl")) == len(read_metrics(finished[0] / "metrics.jsonl"))


def test_resume_with_changed_config_lists_the_differing_fields(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    before = _snapshot(run_dir)
    changed = dataclasses.replace(TINY, optim=OptimConfig(lr=0.5), model=dataclasses.replace(TINY.model, lam=0.2))
    with pytest.raises(ConfigMismatch) as err:
        fit("sae-synthetic", changed, run_dir, resume=True, progress=False)
    assert "model.lam: saved=0.01 given=0.2" in str(err.value) and "optim.lr: saved=0.01 given=0.5" in str(err.value)
    assert "train." not in str(err.value)
    assert _snapshot(run_dir) == before


def test_corrupt_latest_checkpoint_falls_back_to_previous_with_warning(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    _, good = restore(run_dir, step=15)
    for f in (run_dir / "checkpoints" / "20" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # truncate every array file
    with pytest.warns(RuntimeWarning, match="fell back to step 15"):
        _, state = restore(run_dir)
    assert state.step.tolist() == [15, 15, 15]
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(good)):
        np.testing.assert_array_equal(a, b)
    assert (run_dir / "checkpoints" / "20").is_dir()  # the damaged step is kept, not deleted


def test_fingerprint_sees_any_bit_flip():
    tree = {"a": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "b": jnp.ones(3, jnp.int32), "c": jnp.ones(2, jnp.bfloat16)}
    base = fingerprint(tree)
    assert fingerprint(tree) == base and len(base) == 3
    bits = np.asarray(tree["a"]).ravel().view(np.uint32).copy()
    for i, bit in [(0, 0), (4, 31), (5, 17)]:
        flipped = bits.copy()
        flipped[i] ^= np.uint32(1 << bit)
        changed = fingerprint(dict(tree, a=jnp.asarray(flipped.view(np.float32).reshape(2, 3))))
        assert changed[0] != base[0] and changed[1:] == base[1:]
    swapped = fingerprint(dict(tree, a=tree["a"][:, ::-1]))  # same values, other positions
    assert swapped[0] != base[0]


def test_fingerprint_on_host_equals_the_device_program():
    """CPU leaves are summed in NumPy: the numbers stored in existing checkpoints (by the jitted
    program) must come out the same, for every item size and for NumPy leaves."""
    from jaxsparse.train.checkpoint import _fingerprints

    rng = np.random.default_rng(0)
    tree = {"f32": jnp.asarray(rng.normal(size=(3, 5, 7)), jnp.float32),
            "i32": jnp.asarray(rng.integers(-2**31, 2**31 - 1, size=1000), jnp.int32),
            "u32": jnp.asarray(rng.integers(0, 2**32 - 1, size=(70, 70), dtype=np.uint32)),
            "bool": jnp.asarray(rng.random(33) > 0.5), "bf16": jnp.asarray(rng.normal(size=9), jnp.bfloat16),
            "f16": jnp.asarray(rng.normal(size=(4, 4)), jnp.float16), "i8": jnp.asarray(rng.integers(-128, 127, size=5), jnp.int8),
            "scalar": jnp.asarray(3, jnp.int32), "empty": jnp.zeros((0, 4), jnp.float32)}
    device = [int(np.asarray(f)) for f in _fingerprints(tree)]
    assert fingerprint(tree) == device
    numpy_leaves = {k: np.asarray(v) for k, v in tree.items()}
    assert fingerprint(numpy_leaves) == [int(np.asarray(f)) for f in _fingerprints(numpy_leaves)]


# --- NaN stop: an experiment whose data turns to NaN at step 11 for some seeds --------------------


@dataclasses.dataclass(frozen=True)
class NanConfig:
    """Tiny SAE whose data becomes NaN from step ``nan_from`` for seeds whose source flag is set."""

    nan_from: int = 11
    train: TrainConfig = TrainConfig(steps=20, seeds=4, checkpoint_every=5, log_every=1)


def _nan_flag(source_key) -> jax.Array:
    return jax.random.uniform(jax.random.fold_in(source_key, 99)) < 0.5


def build_nan(config: NanConfig):
    inner = build(dataclasses.replace(TINY, train=config.train))

    def make_source(key):
        return {"inner": inner.make_source(key), "flag": _nan_flag(key)}

    def data_fn(source, step):
        x = inner.data_fn(source["inner"], step)
        return jnp.where(source["flag"] & (step >= config.nan_from), jnp.nan, x)

    return inner._replace(make_source=make_source, data_fn=data_fn)


register("test-nan", NanConfig, build_nan, module=__name__)


def test_nan_loss_stops_with_step_and_seed_and_keeps_last_good_checkpoint(tmp_path):
    flags = [bool(_nan_flag(jax.random.fold_in(jax.random.key(s), 0))) for s in range(4)]
    assert any(flags) and not all(flags), flags
    first_bad_seed = flags.index(True)
    run_dir = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=rf"non-finite loss \(nan\) at step 12 for seed {first_bad_seed}; .*checkpoint \(step 10\)"):
        fit("test-nan", NanConfig(), run_dir, progress=False)
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [5, 10]
    _, state = restore(run_dir)
    assert state.step.tolist() == [10] * 4
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(state.params))
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert max(r["step"] for r in rows) == 11 and len(rows) == 11 * 4  # every finite step logged
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert not (run_dir / "results.json").exists()


def test_restores_a_run_written_by_an_earlier_version():
    """A run directory committed with the first version of the engine (orbax 0.12.8) still restores,
    bit-exactly: restore checks every leaf against the fingerprint stored when it was written."""
    fixture = Path(__file__).parent / "data" / "train_run_v1"
    before = _snapshot(fixture)
    config, state = restore(fixture)
    assert config.train.seeds == 2 and config.train.steps == 10
    assert state.step.tolist() == [10, 10] and state.params["decoder"]["w"].shape == (2, 8, 4)
    np.testing.assert_allclose(jnp.linalg.norm(state.params["decoder"]["w"], axis=-1), 1.0, rtol=1e-5)
    assert _snapshot(fixture) == before  # restoring writes nothing


def test_hyperparameter_grid_run_logs_and_summarises_each_grid_point(tmp_path):
    grid = (0.0, 0.3)
    config = dataclasses.replace(
        TINY, model=dataclasses.replace(TINY.model, lam_grid=grid),
        train=dataclasses.replace(TINY.train, steps=10, seeds=2, log_every=10, checkpoint_every=10),
    )
    results = fit("sae-synthetic", config, tmp_path / "grid", progress=False)
    rows = read_metrics(tmp_path / "grid" / "metrics.jsonl")
    assert [(r["seed"], r["hparam"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [(r["seed"], r["hparam"]) for r in results["per_seed"]] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert results["hparams"] == pytest.approx(list(grid)) and len(results["by_hparam"]) == 2
    for j in range(2):
        l0s = [r["l0"] for r in results["per_seed"] if r["hparam"] == j]
        assert results["by_hparam"][j]["mean"]["l0"] == pytest.approx(np.mean(l0s))
    # the L1 penalty makes codes sparser
    assert results["by_hparam"][1]["mean"]["l0"] < results["by_hparam"][0]["mean"]["l0"]
    _, state = restore(tmp_path / "grid")
    assert state.params["decoder"]["w"].shape == (2, 2, 8, 4)


# --- host-fed data: the same batches fed from NumPy or made on device give the same run ------------

_X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)


def _rows(step):
    return (step * 7 + np.arange(16)) % 64


@dataclasses.dataclass(frozen=True)
class FeedConfig:
    """Tiny SAE trained on a fixed NumPy dataset, fed from the host or indexed on device."""

    host: bool = True
    # keep the latest checkpoint and the best by max(loss), i.e. the first one: 5 and 15 survive
    train: TrainConfig = TrainConfig(steps=15, seeds=2, checkpoint_every=5, log_every=3, keep_checkpoints=1,
                                     best_mode="max")


def build_feed(config: FeedConfig):
    inner = build(dataclasses.replace(TINY, train=config.train))
    if config.host:
        feed = lambda start, n: np.stack([_X[_rows(t)] for t in range(start, start + n)])  # noqa: E731
        return inner._replace(data_fn=None, feed=feed)
    return inner._replace(data_fn=lambda source, step: jnp.asarray(_X)[(step * 7 + jnp.arange(16)) % 64])


register("test-feed", FeedConfig, build_feed, module=__name__)


def test_host_fed_batches_equal_on_device_batches(tmp_path):
    host = fit("test-feed", FeedConfig(host=True), tmp_path / "host", progress=False)
    device = fit("test-feed", FeedConfig(host=False), tmp_path / "device", progress=False)
    _, a = restore(tmp_path / "host")
    _, b = restore(tmp_path / "device")
    assert a.step.tolist() == [15, 15]  # three chunks of 5 steps, each fed its own batches
    for run in ("host", "device"):
        assert sorted(int(p.name) for p in (tmp_path / run / "checkpoints").iterdir() if p.name.isdigit()) == [5, 15]
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([r["loss"] for r in read_metrics(tmp_path / "host" / "metrics.jsonl")],
                               [r["loss"] for r in read_metrics(tmp_path / "device" / "metrics.jsonl")], rtol=1e-5)
    assert host["mean"]["mcc"] == pytest.approx(device["mean"]["mcc"], rel=1e-4)


def test_lock_held_by_another_process_is_refused(tmp_path):
    from jaxsparse.train import rundir

    code = f"""
        import sys
        from jaxsparse.train import rundir
        with rundir.lock({str(tmp_path)!r}):
            print("locked", flush=True)
            sys.stdin.read()
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match="being written by another process"):
            with rundir.lock(tmp_path):
                pass
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
        proc.stdout.close()
    with rundir.lock(tmp_path):  # released when the holder exits
        pass

"""Multi-host for real, on one machine: 2 processes x 4 CPU devices under ``jax.distributed``.

Both processes run the same ``jaxsparse run`` command (coordinator on 127.0.0.1, gloo CPU
collectives); the 8-seed sweep is sharded over the 8 global devices. It must equal a
single-process run on 8 devices, and the run directory's files must be written once.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np

from jaxsparse.train import read_metrics, restore

ARGS = [
    "run", "sae-synthetic", "--seeds", "8", "--no-progress",
    "--set", "data.n_latents=8", "--set", "data.n_features=4", "--set", "data.k=2", "--set", "data.n_train=64",
    "--set", "data.n_test=64", "--set", "model.n_latents=8", "--set", "train.steps=40",
    "--set", "train.checkpoint_every=20", "--set", "train.log_every=10",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(n_devices: int) -> dict[str, str]:
    return {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": f"--xla_force_host_platform_device_count={n_devices}"}


def test_two_processes_equal_one_process_and_write_files_once(tmp_path):
    multi, single = tmp_path / "multi", tmp_path / "single"
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxsparse.cli", *ARGS, "--out", str(multi), "--coordinator", f"127.0.0.1:{port}",
             "--num-processes", "2", "--process-id", str(i)],
            env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]  # fmt: skip
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=300))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    # both processes saw the 8 global devices and computed the same final scores
    summaries = [out.splitlines()[-1].split(": ", 1)[1] for out, _ in outputs]
    assert summaries[0] == summaries[1] and "8 runs on 8 devices, 2 processes" in summaries[0]

    ref = subprocess.run([sys.executable, "-m", "jaxsparse.cli", *ARGS, "--out", str(single)], env=_env(8),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]

    # same parameters as the single-process run
    _, a = restore(multi)
    _, b = restore(single)
    assert a.params["decoder"]["w"].shape == (8, 8, 4)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    # files written once: one metrics line per logged step per seed, no duplicates, no temp files
    rows_multi, rows_single = read_metrics(multi / "metrics.jsonl"), read_metrics(single / "metrics.jsonl")
    assert [(r["step"], r["seed"]) for r in rows_multi] == [(s, i) for s in (10, 20, 30, 40) for i in range(8)]
    for r, q in zip(rows_multi, rows_single):
        np.testing.assert_allclose(r["loss"], q["loss"], rtol=1e-5)
    assert json.loads((multi / "config.json").read_text())["config"] == json.loads((single / "config.json").read_text())["config"]
    res_multi, res_single = (json.loads((d / "results.json").read_text()) for d in (multi, single))
    assert [r["seed"] for r in res_multi["per_seed"]] == list(range(8))
    for k in res_single["mean"]:
        np.testing.assert_allclose(res_multi["mean"][k], res_single["mean"][k], rtol=1e-4, atol=1e-6)
    assert not list(multi.rglob("*.tmp")) and (multi / "figures" / "loss.png").is_file()
    # orbax wrote each process's shards of the arrays
    assert {p.name for p in (multi / "checkpoints" / "40" / "state").iterdir()} >= {"ocdbt.process_0", "ocdbt.process_1"}

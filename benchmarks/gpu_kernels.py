"""Where an accelerator's time goes: per-kernel times of a sweep step and of the homotopy Lasso.

Traces a few calls with ``jax.profiler`` and sums the device events by kernel name (the trace's
device streams; XLA fusions keep their HLO names). Prints, per program, the wall time, the summed
device time and the top kernels as microseconds per call. For issue 15's GPU targets: the 8-seed
SAE sweep at 64->256 against one seed (``benchmarks/sweep.py``'s problem) and the batched homotopy at
``benchmarks/solvers.py``'s default size with its step schedules (``jaxsparse.solvers.homotopy.Schedule``)
against SPAMS in the same process.

    python benchmarks/gpu_kernels.py            # on the machine with the accelerator
    python benchmarks/gpu_kernels.py --top 25   # more kernels per program

Measured on an H200 (jax 0.11.2): README, "Solver speed against SPAMS" (the schedules) and the
sweep paragraph of "Training engine" (the kernels of the 8-seed and 1-seed steps).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import tempfile

import jax
import jax.numpy as jnp

from timing import best_time


def device_kernels(fn, calls: int) -> tuple[collections.Counter, collections.Counter, float]:
    """Trace ``calls`` calls of ``fn`` (which blocks); returns per-kernel total µs, counts and the
    trace's device time in µs (all per call)."""
    fn()
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                fn()
        files = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
        events = json.load(gzip.open(sorted(files)[-1]))["traceEvents"]
    names = {e["pid"]: e["args"].get("name", "") for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    device_pids = {pid for pid, name in names.items() if "GPU" in name or "TPU" in name or "device:" in name.lower()}
    if not device_pids:
        print(f"   (no device streams in the trace; processes: {sorted(names.values())})")
    time_, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("pid") in device_pids:
            time_[e["name"]] += e["dur"] / calls
            count[e["name"]] += 1 / calls
    return time_, count, sum(time_.values())


def report(label: str, fn, calls: int, top: int, repeats: int = 5) -> float:
    """Print ``fn``'s best wall time and its top kernels; returns the wall time in seconds."""
    wall = best_time(fn, repeats)
    time_, count, total = device_kernels(fn, calls)
    n_kernels = sum(count.values())
    print(f"\n== {label}: wall {wall * 1e3:.3f} ms, device (summed kernels) {total / 1e3:.3f} ms, "
          f"{n_kernels:.0f} kernel events per call", flush=True)
    for name, t in time_.most_common(top):
        print(f"   {t:9.1f} us  x{count[name]:7.1f}  {name[:110]}")
    return wall


def sweep_programs(steps: int, top: int, hlo_dir: str | None) -> None:
    from sweep import config
    from jaxsparse.experiments.sae_synthetic import build
    from jaxsparse.train import build_sweep
    from jaxsparse.train.sweep import sweep_chunk

    device = jax.devices()[:1]
    for seeds in (8, 1):
        task = build(config(steps, seeds))
        sweep = build_sweep(task, list(range(seeds)), devices=device)
        states, sources = sweep.init()
        chunk = sweep.chunk(steps)
        fn = lambda: jax.block_until_ready(chunk(states, sources))  # noqa: E731
        report(f"sweep 64->256, {seeds} seed(s), {steps} steps", fn, 2, top)
        if hlo_dir:
            text = jax.jit(sweep_chunk(task, steps)).lower(states, sources, None, None).compile().as_text()
            with open(os.path.join(hlo_dir, f"sweep{seeds}_hlo.txt"), "w") as f:
                f.write(text)


def homotopy_programs(top: int, schedules) -> None:
    import numpy as np
    from jaxsparse.data import sparse_coding_data
    from jaxsparse.solvers.homotopy import Schedule, _homotopy

    x, _, d = sparse_coding_data(jax.random.key(0), 4096, 256, 64, 8, noise=0.01)
    lam = jnp.asarray(0.05, x.dtype)
    try:
        import spams
        xf, df = np.asfortranarray(np.asarray(x, np.float32).T), np.asfortranarray(np.asarray(d, np.float32).T)
        spams.lasso(xf, D=df, lambda1=0.05, mode=2, numThreads=-1)
        t_spams = best_time(lambda: spams.lasso(xf, D=df, lambda1=0.05, mode=2, numThreads=-1), 5)
        print(f"SPAMS lasso (float32, all cores): {t_spams * 1e3:.2f} ms")
    except ImportError:
        t_spams = None
    for schedule in schedules:
        schedule = Schedule(*schedule)
        run = jax.jit(lambda d, x, schedule=schedule: _homotopy(
            d, x, lam, None, max_active=32, max_steps=128, nonneg=False, fallback_iters=500, schedule=schedule))
        z, info = run(d, x)
        fn = lambda: jax.block_until_ready(run(d, x))  # noqa: E731
        print(f"\nhomotopy {schedule}: path steps max {int(info.path_steps.max())}, "
              f"mean {float(info.path_steps.mean()):.1f}, fallback {int(info.fallback.sum())}", flush=True)
        wall = report(f"homotopy 4096 x 64 x 256, max_active 32, {schedule}", fn, 3, top, repeats=10)
        if t_spams:
            print(f"   SPAMS / ours {t_spams / wall:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--only", choices=["sweep", "homotopy"], default=None)
    p.add_argument("--schedules", nargs="+", default=["16,4,1", "0,0,1", "0,0,2", "0,0,4", "0,0,8"],
                   help="homotopy schedules first_slots,shrink,unroll (first_slots 0: max_active)")
    p.add_argument("--hlo-dir", default=None, help="write the sweep programs' optimised HLO here")
    args = p.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    if args.only in (None, "homotopy"):
        schedules = [[int(v) for v in s.split(",")] for s in args.schedules]
        homotopy_programs(args.top, [(f or None, shrink, unroll) for f, shrink, unroll in schedules])
    if args.only in (None, "sweep"):
        sweep_programs(args.steps, args.top, args.hlo_dir)


if __name__ == "__main__":
    main()

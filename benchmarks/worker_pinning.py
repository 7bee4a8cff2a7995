"""Training speed of the main job's methods alone, on one core, and two pinned workers side by side.

``jaxsparse run`` trains two methods at once on a CPU (``--jobs``), each worker pinned to its share of
the cores (``jaxsparse.train.engine._core_shares``). This measures why: for each method of
``jaxsparse run amortisation-gap`` (5 seeds, the paper's full batch), the seconds per 1000 training
steps

- ``all cores``: one process on every core (XLA's thread pool sized to all of them; the baseline),
- ``1 core``: one process pinned to one core,
- ``pinned, side by side``: two processes, each pinned to its own core, training at the same time,

and the throughput of the two pinned workers relative to the baseline, ``2 * all / side-by-side``
(above 1: two pinned workers get more done than one process using every core). Every measurement is
a fresh spawned process (its XLA sizes its pool from its affinity), best of ``--repeats`` chunks
after a warm-up chunk. Needs Linux (``os.sched_setaffinity``) and at least 2 cores.

    python benchmarks/worker_pinning.py
    python benchmarks/worker_pinning.py --methods unknown/SAE,unknown/MLP-256 --repeats 5
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys


def _time_method(method: str, steps: int, repeats: int, cores: tuple[int, ...] | None, barrier, out) -> None:
    if cores:
        os.sched_setaffinity(0, cores)  # before JAX starts its backend
    import time

    import jax

    from jaxsparse.train import registry
    from jaxsparse.train.engine import compiled

    registry.load_entry_points()
    exp = registry.get("amortisation-gap")
    _, sweep = compiled(exp, exp.config_cls(), method)
    states, sources = sweep.init()
    run = sweep.chunk(steps)
    states = jax.block_until_ready(run(states, sources)[0])  # compile and warm up
    if barrier is not None:
        barrier.wait()  # side by side: both workers time at once
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        states = jax.block_until_ready(run(states, sources)[0])
        best = min(best, time.perf_counter() - t0)
    out.put(best * 1000 / steps)


def _measure(ctx, method: str, steps: int, repeats: int, placements: list[tuple[int, ...] | None]) -> list[float]:
    out = ctx.Queue()
    barrier = ctx.Barrier(len(placements)) if len(placements) > 1 else None
    procs = [ctx.Process(target=_time_method, args=(method, steps, repeats, cores, barrier, out)) for cores in placements]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode:
            raise RuntimeError(f"the timing process for {method} failed (exit code {p.exitcode})")
    return [out.get() for _ in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default="unknown/SAE,unknown/TopK-3,unknown/MLP-32,unknown/LISTA-3,unknown/MLP-256",
                        help="comma-separated methods of amortisation-gap")
    parser.add_argument("--steps", type=int, default=1000, help="steps per timed chunk")
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks per measurement (best kept)")
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity"):
        sys.exit("needs os.sched_setaffinity (Linux)")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        sys.exit(f"needs at least 2 cores, this process has {len(cores)}")
    ctx = multiprocessing.get_context("spawn")
    print(f"{len(cores)} cores; seconds per 1000 steps, 5 seeds, best of {args.repeats} chunks of {args.steps}\n")
    print("| method | all cores (baseline) | 1 core | pinned, side by side | 2 pinned workers vs baseline |")
    print("|---|---|---|---|---|")
    for method in args.methods.split(","):
        (alone,) = _measure(ctx, method, args.steps, args.repeats, [None])
        (one,) = _measure(ctx, method, args.steps, args.repeats, [(cores[0],)])
        pair = _measure(ctx, method, args.steps, args.repeats, [(cores[0],), (cores[1],)])
        side = max(pair)
        print(f"| {method} | {alone:.3f} | {one:.3f} | {pair[0]:.3f}, {pair[1]:.3f} | {2 * alone / side:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()

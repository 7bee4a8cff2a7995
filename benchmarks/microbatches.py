"""Training steps of paper 1's methods with the batch cut into microbatches (``Task.microbatches``).

Each method's 5-seed sweep chunk is compiled once per slice count (``1`` = the whole batch, the
baseline) and timed in alternating rounds in this process, pinned to one core as ``jaxsparse run``'s
workers are, with the LLVM options ``jaxsparse run`` sets. Prints microseconds per step and the speed
ratio to the whole batch; ``auto`` is what ``microbatches="auto"`` picks (shown in brackets).

    python benchmarks/microbatches.py
    python benchmarks/microbatches.py --methods unknown/MLP-256 --slices 1 4 auto --rounds 5
"""

from __future__ import annotations

import argparse
import os

from jaxsparse.cpu_codegen import set_cpu_codegen_flags


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=["unknown/MLP-256", "unknown/MLP-32", "unknown/LISTA-3"])
    p.add_argument("--slices", nargs="+", default=["1", "2", "4", "8", "auto"], help="slice counts (1 = baseline)")
    p.add_argument("--steps", type=int, default=500, help="steps per timed chunk")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    set_cpu_codegen_flags()

    import jax

    from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig
    from jaxsparse.experiments.amortisation_gap.tasks import build, training_signals
    from jaxsparse.train import build_sweep
    from jaxsparse.train.step import auto_microbatches
    from timing import best_of_rounds, best_time

    config = AmortisationGapConfig()
    tasks = build(config)
    slices = [s if s == "auto" else int(s) for s in args.slices]
    print(f"{jax.devices()[0].device_kind}, {config.train.seeds} seeds, us per step (ratio to the whole batch)")
    for name in args.methods:
        base = tasks[name]._replace(data_fn=training_signals)  # a batch of samples only, so every count applies
        timers, picked = {}, None
        for n in slices:
            task = base._replace(microbatches=n)
            sweep = build_sweep(task, list(range(config.train.seeds)), devices=jax.devices()[:1])
            states, sources = sweep.init()
            chunk = sweep.chunk(args.steps)
            jax.block_until_ready(chunk(states, sources))
            timers[str(n)] = (lambda c=chunk, s=states, src=sources:
                              best_time(lambda: jax.block_until_ready(c(s, src)), 1, warmup=False))
            if n == "auto":
                one = jax.tree.map(lambda x: x[0], (states.params, sources))
                vg = jax.value_and_grad(task.loss_fn, has_aux=True)
                picked = auto_microbatches(vg, one[0], training_signals(one[1], 0), jax.random.key(0))
        best = best_of_rounds(timers, args.rounds)
        ref = best.get("1")
        cells = [f"{k}{f' [{picked}]' if k == 'auto' else ''}: {v / args.steps * 1e6:7.1f}"
                 + (f" ({ref / v:.2f}x)" if ref else "") for k, v in best.items()]
        print(f"{name:18s} " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()

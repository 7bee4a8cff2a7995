"""XLA:CPU with and without the LLVM options `jaxsparse run` adds (``jaxsparse.cpu_codegen``).

Each measurement runs in a child process (XLA reads ``XLA_FLAGS`` once per process), pinned to one
core as ``jaxsparse run``'s workers are; the plain and the tuned child alternate for ``--rounds``
rounds and each number is the best round, so a machine whose speed drifts biases neither side.

1. ``max(x, 0) - 0.5`` and ``x + c`` on 81 920 float32 shaped ``[81920 / w, w]``, 100 times in a
   ``fori_loop``: microseconds per pass for each width ``w``.
2. One training step of 5 seeds of paper 1's methods, microseconds.

``--compare CAP``: instead of no options, the plain side runs the same options with LLVM's full
unrolling capped at ``CAP`` iterations (the cap was 16 before it became 15).

    python benchmarks/cpu_codegen.py
    python benchmarks/cpu_codegen.py --methods unknown/SAE unknown/SC --rounds 3
    python benchmarks/cpu_codegen.py --compare 16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WIDTHS = (4, 8, 12, 16, 24, 32, 48, 64, 256)
METHODS = ("unknown/SAE", "unknown/TopK-3", "unknown/JumpReLU", "unknown/LISTA-3", "unknown/MLP-32",
           "unknown/MLP-256", "unknown/SC", "unknown/DL", "known_z/SAE")


def child(methods: list[str], steps: int) -> dict[str, float]:
    """Microseconds of each item, in this process (its XLA_FLAGS as they are)."""
    import jax
    import jax.numpy as jnp

    from timing import best_time

    out = {}
    ops = {"relu": lambda i, x: jnp.maximum(x, 0.0) - 0.5, "add": lambda i, x: x + 1e-3}
    for name, op in ops.items():
        f = jax.jit(lambda x, op=op: jax.lax.fori_loop(0, 100, op, x))
        for w in WIDTHS:
            x = jax.random.normal(jax.random.key(0), (81920 // w, w))
            out[f"{name}, width {w}"] = best_time(lambda: f(x).block_until_ready(), 5) / 100 * 1e6
    if methods:
        from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig
        from jaxsparse.experiments.amortisation_gap.tasks import build
        from jaxsparse.train import build_sweep

        config = AmortisationGapConfig()
        tasks = build(config)
        for name in methods:
            sweep = build_sweep(tasks[name], list(range(config.train.seeds)), devices=jax.devices()[:1])
            states, sources = sweep.init()
            chunk = sweep.chunk(steps)
            jax.block_until_ready(chunk(states, sources))
            out[name] = best_time(lambda: jax.block_until_ready(chunk(states, sources)), 3) / steps * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=list(METHODS), help="main-job methods to time (none: widths only)")
    p.add_argument("--steps", type=int, default=500, help="steps per timed chunk")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two children (best is kept)")
    p.add_argument("--compare", type=int, default=None, metavar="CAP",
                   help="plain side: the same options with -unroll-full-max-count=CAP instead of none")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        print(json.dumps(child(args.methods, args.steps)))
        return

    from jaxsparse.cpu_codegen import LLVM_OPTIONS, OPT_OUT_ENV, set_cpu_codegen_flags

    base = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", OPT_OUT_ENV)}
    base["JAX_PLATFORMS"] = "cpu"
    tuned = dict(base)
    set_cpu_codegen_flags(tuned)
    if args.compare is not None:
        base = dict(tuned)
        cap = next(o for o in LLVM_OPTIONS if o.startswith("-unroll-full-max-count="))
        base["XLA_FLAGS"] = tuned["XLA_FLAGS"].replace(cap, f"-unroll-full-max-count={args.compare}")
    cmd = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--methods", *args.methods]
    best: dict[str, dict[str, float]] = {"plain": {}, "tuned": {}}
    for _ in range(args.rounds):
        for side, env in (("plain", base), ("tuned", tuned)):
            res = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
            for k, v in res.items():
                best[side][k] = min(best[side].get(k, float("inf")), v)
    plain = "no options" if args.compare is None else f"cap {args.compare}"
    print(f"LLVM options: {','.join(LLVM_OPTIONS)} (tuned) vs {plain} (plain); one core, "
          f"best of {args.rounds} alternating rounds")
    print(f"{'item':24s} {'plain us':>10s} {'tuned us':>10s} {'speed-up':>9s}")
    for k in best["plain"]:
        print(f"{k:24s} {best['plain'][k]:10.1f} {best['tuned'][k]:10.1f} {best['plain'][k] / best['tuned'][k]:8.2f}x")


if __name__ == "__main__":
    main()

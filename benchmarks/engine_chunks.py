"""Training speed of the engine's chunked sweep against one jitted scan over all steps.

The engine runs a method as chunks of ``train.log_every`` steps (one compiled ``lax.scan`` each,
vmapped over seeds), checkpointing between chunks; before it, amortisation-gap trained each method
as a single jitted program (init + one scan over every step). This times both on the same task,
steady state (compiled first), and prints the ratio engine / one-scan (1.0 = no overhead).

    python benchmarks/engine_chunks.py                       # MLP-256, unknown regime, 5 seeds
    python benchmarks/engine_chunks.py --method known_d/SAE --steps 4000
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from jaxsparse.experiments.amortisation_gap import AmortisationGapConfig
from jaxsparse.experiments.amortisation_gap.tasks import build
from jaxsparse.train.sweep import build_sweep, init_sweep, sweep_chunk


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", default="unknown/MLP-256")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--chunk", type=int, default=1000, help="engine chunk length (the main job's log_every)")
    args = p.parse_args()
    config = AmortisationGapConfig()
    task = build(config)[args.method]
    seeds = config.train.seed_values

    @jax.jit
    def one_scan(s):
        states, sources = init_sweep(task, s)
        states, metrics = sweep_chunk(task, args.steps)(states, sources, None, None)
        return states.params, metrics["loss"][:, -1]

    s = jnp.asarray(seeds, jnp.int32)
    jax.block_until_ready(one_scan(s))
    t0 = time.perf_counter()
    jax.block_until_ready(one_scan(s))
    base = args.steps / (time.perf_counter() - t0)

    sweep = build_sweep(task, seeds)
    states, sources = sweep.init()
    chunk = sweep.chunk(args.chunk)
    jax.block_until_ready(chunk(states, sources))  # compile
    t0 = time.perf_counter()
    for _ in range(args.steps // args.chunk):
        states, _ = chunk(states, sources)
    jax.block_until_ready(states)
    engine = args.steps // args.chunk * args.chunk / (time.perf_counter() - t0)
    print(f"{args.method}, {len(seeds)} seeds, {jax.device_count()} x {jax.devices()[0].platform}")
    print(f"one jitted scan (baseline): {base:.0f} steps/s")
    print(f"engine chunks of {args.chunk}:    {engine:.0f} steps/s   ratio engine / baseline = {engine / base:.2f}")


if __name__ == "__main__":
    main()

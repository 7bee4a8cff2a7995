"""SlowVAE training steps: S seeds as one vmapped program vs S single-seed programs run in turn.

The engine vmaps a task's step over seeds (and over the models' loss-weight grid). Convolutions
over a vmapped parameter axis become grouped convolutions, which XLA:CPU runs far slower than the
same convolutions one network at a time; GPUs run them well. This prints steps/s of both and their
ratio (vmapped / sequential, per seed-step), measured in one process after compiling:

    python benchmarks/slowvae_steps.py                    # 32 x 32, 3 seeds, 20 steps
    python benchmarks/slowvae_steps.py --size 64 --seeds 3 --steps 200   # on an accelerator
"""

from __future__ import annotations

import argparse

import jax

from jaxsparse.experiments.slowvae import SlowVAEConfig, build
from jaxsparse.experiments.slowvae.config import DataConfig, ModelConfig
from jaxsparse.train import TrainConfig, build_sweep
from timing import best_time


def sweep_of(size: int, seeds: list[int]):
    config = SlowVAEConfig(data=DataConfig(image_size=size), model=ModelConfig(models=("slowvae",)),
                           train=TrainConfig(seeds=len(seeds), first_seed=seeds[0]))
    return build_sweep(build(config)["lap"], seeds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    n = args.steps

    vmapped = sweep_of(args.size, list(range(args.seeds)))
    states, sources = vmapped.init()
    run_v = vmapped.chunk(n)
    jax.block_until_ready(run_v(states, sources, start=0))
    t_v = best_time(lambda: jax.block_until_ready(run_v(states, sources, start=0)), args.repeats, warmup=False)

    singles = [sweep_of(args.size, [s]) for s in range(args.seeds)]
    inits = [s.init() for s in singles]
    runs = [s.chunk(n) for s in singles]
    for run, (st, src) in zip(runs, inits):
        jax.block_until_ready(run(st, src, start=0))

    def sequential():
        for run, (st, src) in zip(runs, inits):
            jax.block_until_ready(run(st, src, start=0))

    t_s = best_time(sequential, args.repeats, warmup=False)
    print(f"device {jax.devices()[0].platform}, {args.size}x{args.size}, {args.seeds} seeds, 32 pairs/step, {n} steps")
    print(f"vmapped:    {n / t_v:8.2f} steps/s ({args.seeds * n / t_v:8.2f} seed-steps/s)")
    print(f"sequential: {n / t_s:8.2f} steps/s ({args.seeds * n / t_s:8.2f} seed-steps/s)")
    print(f"ratio vmapped / sequential: {t_s / t_v:.2f}x")


if __name__ == "__main__":
    main()

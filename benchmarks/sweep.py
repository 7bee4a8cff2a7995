"""Sweep benchmark: 8 seeds as one vmapped program vs 8 sequential runs; one step vs PyTorch.

Problem (issue 4): an SAE with 256 latents on 64-dim synthetic sparse codes (K=8), full batch of
1024, Adam, 2000 steps. Everything is compiled before timing; each timing is the best of
``--repeats`` rounds (sweeps; each round times every variant of a size once, so a machine whose
speed drifts between minutes biases none) or ``--step-repeats`` runs (steps). All numbers in one output come from the
same process on the same machine. The step comparison times the jitted JAX step called from
Python (as the PyTorch step is), and the same step inside the engine's ``lax.scan`` chunk.

    python benchmarks/sweep.py                 # CPU; torch comes from `pip install -e ".[bench]"`
    python benchmarks/sweep.py --steps 500     # quicker
    python benchmarks/sweep.py --devices 2     # also the auto sweep sharded over 2 XLA devices (CPU: one per core)

Each size is run with the engine's default ``seed_batch="auto"`` (on CPU, seeds are vmapped in groups
whose widest matmul output fits 512 KiB, the groups run one after another in the same program; on one
CPU device, several groups are dealt into parts trained side by side, one host thread per core:
``jaxsparse.train.sweep.seed_parts``) and with one vmap over all seeds (``seed_batch=None``), against
8 single-seed runs in turn.

Targets (issue 15): the sweep program never slower than the sequential loop on CPU (ratio >= 1.0 at
both sizes), >= 6x on an accelerator; one JAX step >= 1.5x faster than the same PyTorch step on CPU.
"""

from __future__ import annotations

import argparse
import os

from timing import best_of_rounds, best_time, devices_from_argv  # noqa: I001  (before JAX: it sets XLA_FLAGS)

devices_from_argv()  # --devices N on CPU needs N XLA devices, set before JAX starts

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxsparse.cpu_codegen import set_cpu_codegen_flags  # noqa: E402
from jaxsparse.experiments.sae_synthetic import DataConfig, ModelConfig, OptimConfig, SAEConfig, build  # noqa: E402
from jaxsparse.train import TrainConfig, build_sweep, make_step  # noqa: E402

N_LATENTS, N_FEATURES, K, BATCH, LAM, LR = 256, 64, 8, 1024, 0.01, 1e-3
PAPER1 = (16, 8, 3)  # the paper-1 default problem, for contrast: (n_latents, n_features, k)


def config(steps: int, seeds: int, size: tuple[int, int, int] = (N_LATENTS, N_FEATURES, K)) -> SAEConfig:
    n_latents, n_features, k = size
    return SAEConfig(
        data=DataConfig(n_latents=n_latents, n_features=n_features, k=k, n_train=BATCH, n_test=BATCH),
        model=ModelConfig(n_latents=n_latents, lam=LAM),
        optim=OptimConfig(lr=LR),
        train=TrainConfig(steps=steps, seeds=seeds, checkpoint_every=steps),
    )


def bench_sweep(steps: int, seeds: int, repeats: int, size=(N_LATENTS, N_FEATURES, K),
                seed_batches=("auto", None), devices: int = 1) -> tuple[dict, float]:
    """Seconds for ``seeds`` runs of ``steps`` steps: one sweep program per ``seed_batches`` entry (seeds
    grouped as :class:`jaxsparse.train.Task` says: the engine's default ``"auto"``, ``None`` = one vmap
    over all seeds) and the single-seed runs one after another. The timings are interleaved (each
    round times every variant once; the best round of each is kept), so a machine whose speed drifts
    between minutes biases no variant. With ``devices > 1`` the ``"auto"`` sweep also runs with its seeds
    sharded over that many devices (key ``f"auto/{devices}"``; on CPU, one per core)."""
    task = build(config(steps, seeds, size))
    device = jax.devices()[:1]
    variants = {}
    plans = [(sb, sb, device) for sb in seed_batches]
    if devices > 1:
        plans.append((f"auto/{devices}", "auto", jax.devices()[:devices]))
    for name, seed_batch, devs in plans:
        sweep = build_sweep(task._replace(seed_batch=seed_batch), list(range(seeds)), devices=devs)
        states, sources = sweep.init()
        chunk = sweep.chunk(steps)
        jax.block_until_ready(chunk(states, sources))  # compile
        variants[name] = lambda chunk=chunk, states=states, sources=sources: jax.block_until_ready(
            chunk(states, sources))

    singles = [build_sweep(task, [s], devices=device) for s in range(seeds)]
    inits = [sw.init() for sw in singles]
    one_chunk = singles[0].chunk(steps)  # the same compiled program serves every seed
    jax.block_until_ready(one_chunk(*inits[0]))

    def sequential():
        for st, src in inits:
            jax.block_until_ready(one_chunk(st, src))

    variants["sequential"] = sequential
    best = best_of_rounds({name: lambda fn=fn: best_time(fn, 1, warmup=False) for name, fn in variants.items()},
                          repeats)
    return {name: best[name] for name in variants if name != "sequential"}, best["sequential"]


def bench_jax_step(n_steps: int, repeats: int) -> tuple[float, float]:
    """Seconds per step of one run: the jitted step called from Python, and inside ``lax.scan``."""
    task = build(config(n_steps, 1))
    sw = build_sweep(task, [0], devices=jax.devices()[:1])
    states, sources = sw.init()
    state = jax.tree.map(lambda x: x[0], states)
    x = sources["x"][0]
    step = make_step(task.loss_fn, task.optimizer, project=task.project)
    jax.block_until_ready(step(state, x))

    def loop():
        s = state
        for _ in range(n_steps):
            s, _ = step(s, x)
        jax.block_until_ready(s)

    chunk = sw.chunk(n_steps)
    jax.block_until_ready(chunk(states, sources))
    t_loop = best_time(loop, repeats, warmup=False) / n_steps
    t_scan = best_time(lambda: jax.block_until_ready(chunk(states, sources)), repeats, warmup=False) / n_steps
    return t_loop, t_scan


def bench_torch_step(n_steps: int, repeats: int, x_np: np.ndarray) -> tuple[float, int] | None:
    """Seconds per step of the same SAE, loss, Adam and decoder projection in PyTorch (CPU)."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    x = torch.from_numpy(np.array(x_np))
    enc = torch.nn.Linear(N_FEATURES, N_LATENTS)
    w_dec = torch.nn.Parameter(torch.nn.functional.normalize(torch.randn(N_LATENTS, N_FEATURES), dim=-1))
    b_dec = torch.nn.Parameter(torch.zeros(N_FEATURES))
    opt = torch.optim.Adam([*enc.parameters(), w_dec, b_dec], lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        z = torch.relu(enc(x))
        x_hat = z @ w_dec + b_dec
        loss = torch.mean((x - x_hat) ** 2) + LAM * torch.mean(torch.abs(z))
        loss.backward()
        opt.step()
        with torch.no_grad():
            w_dec.div_(w_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12))
        return loss

    for _ in range(10):
        step()

    def loop():
        for _ in range(n_steps):
            step()

    return best_time(loop, repeats, warmup=False) / n_steps, torch.get_num_threads()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--step-timing-steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds timing each sweep (best is kept)")
    p.add_argument("--step-repeats", type=int, default=5, help="timings of each step loop (best is kept)")
    p.add_argument("--devices", type=int, default=1,
                   help="also run the sweep with its seeds sharded over this many devices (on CPU XLA is given "
                        "as many, e.g. one per core); the sequential baseline stays on one device")
    p.add_argument("--plain-llvm", action="store_true",
                   help="without the LLVM options `jaxsparse run` adds on CPU (jaxsparse.cpu_codegen)")
    args = p.parse_args()
    if not 1 <= args.devices <= jax.device_count():
        p.error(f"--devices must be between 1 and the {jax.device_count()} devices JAX sees, got {args.devices}")
    tuned = not args.plain_llvm and set_cpu_codegen_flags()  # as `jaxsparse run` does, before JAX computes
    added = " (LLVM options added as by `jaxsparse run`)" if tuned else ""
    print(f"XLA_FLAGS: {os.environ.get('XLA_FLAGS', '')!r}{added}")
    print(f"device: {jax.devices()[0].device_kind} x{len(jax.devices())} ({jax.default_backend()}), jax {jax.__version__}")
    print(f"SAE {N_FEATURES}->{N_LATENTS}, batch {BATCH}, Adam, {args.steps} steps, {args.seeds} seeds")

    for size in ((N_LATENTS, N_FEATURES, K), PAPER1):
        t_sweeps, t_seq = bench_sweep(args.steps, args.seeds, args.repeats, size, devices=args.devices)
        for seed_batch, t_vmap in t_sweeps.items():
            print(f"sweep  {size[1]:3d}->{size[0]:3d}, {args.seeds} seeds, seed_batch={str(seed_batch):6s}: "
                  f"one program {t_vmap:8.3f} s   sequential: {t_seq:8.3f} s   ratio {t_seq / t_vmap:5.2f}x")

    t_loop, t_scan = bench_jax_step(args.step_timing_steps, args.step_repeats)
    x = build(config(1, 1)).make_source(jax.random.fold_in(jax.random.key(0), 0))["x"]
    torch_result = bench_torch_step(args.step_timing_steps, args.step_repeats, np.asarray(x))
    print(f"step   jax jitted step: {t_loop * 1e3:7.3f} ms   jax in lax.scan: {t_scan * 1e3:7.3f} ms")
    if torch_result is None:
        print("step   torch not installed (pip install -e '.[bench]'): no PyTorch comparison")
    else:
        t_torch, threads = torch_result
        print(f"step   torch ({threads} threads): {t_torch * 1e3:7.3f} ms   ratio torch/jax-step "
              f"{t_torch / t_loop:5.2f}x, torch/jax-scan {t_torch / t_scan:5.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    main()

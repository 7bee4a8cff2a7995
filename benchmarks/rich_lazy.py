"""Rich/lazy experiments: the engine's one vmapped program against running the runs one at a time.

1. ``rich-lazy-grid``: the (scale, delta) grid x seeds trained as ONE vmapped program
   (``build_sweep(task, seeds)``, ``Task.hparams`` = the whole grid) against a Python loop over the
   grid points, each its own program (a Task with a 1-point ``hparams`` grid, one seed at a time,
   run in turn). Prints steps/s of both and the ratio loop time / vmapped time.
2. ``rich-lazy-neuron``: the engine's run (7 deltas x S seeds, N steps in one ``chunk``, every
   step's logged metrics included) against the paper's own code path: the official notebook
   (``allanraventos/getrichquick``, ``single-neuron/Single_Neuron.ipynb``) writes the gradient as
   ``get_gradient(XX, XY)`` (``residual = XX (a w) - XY``, ``dw = a residual``, ``da = w . residual``)
   for one neuron at a time. Here that gradient drives a plain NumPy for-loop of ``N`` gradient-descent
   updates ``theta -= lr * grad(theta)`` per neuron (the trajectory kept, as the notebook keeps
   ``theta.y``), for the same neurons (same ``beta_*``, same initial ``a0, w0``) and steps. The
   notebook itself does not run a step loop: it integrates the flow with
   ``solve_ivp(grad, [0, T], theta0, rtol=1e-6)`` (adaptive RK45); that is printed as a third line
   for the same time span ``T = N lr`` (different work: a few dozen adaptive steps, not ``N``).

Timed in one process after compiling (every program is compiled and run once untimed first);
best of ``--repeats`` (the NumPy and solve_ivp runs: one timed run each). Measured on 2 shared CPU
cores (other jobs were running on them, so the absolute numbers are noisy; each ratio compares two
timings of the same run):

    python benchmarks/rich_lazy.py        # grid 5 x 5 x 2 seeds, 200 steps; neuron 7 x 2 seeds, 20000 steps; best of 3

    == rich-lazy-grid: 5 scales x 5 deltas x 2 seeds = 50 runs (d 100, n 1000, width 50), 200 steps; device cpu
    vmapped (1 program):              43.1 steps/s (     2153 run-steps/s), 4.64 s
    loop (50 programs, in turn):      41.7 steps/s (     2085 run-steps/s), 4.80 s (building + compiling + a first run of them: 41.9 s, not timed)
    ratio loop / vmapped: 1.03x
    == rich-lazy-neuron: 7 deltas x 2 seeds = 14 neurons (d 2), 20000 steps of lr 0.001 (time 20)
    engine (1 program, per-step metrics):    0.078 s (    3605801 neuron-steps/s)
    numpy loop, one neuron at a time:        3.425 s (      81754 neuron-steps/s); max |numpy - engine| final theta 1.1e-04 (float64 vs float32)
    ratio numpy loop / engine: 44.1x
    notebook's solve_ivp(rtol=1e-6) over the same time: 0.115 s (38 adaptive steps per neuron on average; ratio / engine 1.5x)

(1 min 31 s wall in all, load average ~1.5 from other jobs during the run.) An earlier run of the
same command gave 1.11x (grid) and 30.0x (neuron); one with ``--grid-steps 100 --repeats 2`` gave 1.08x
and 36.6x; one with ``--grid-steps 20 --repeats 1`` gave 0.62x (the loop faster). So on this CPU the
vmapped grid runs about as fast as the 50-program loop (no gain, no loss); no accelerator was measured.
The engine's neuron run is 30-45x faster than the NumPy step loop and about as fast as the notebook's
adaptive solve_ivp, which takes far fewer steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

import jax
import numpy as np
from scipy.integrate import solve_ivp

from jaxsparse.experiments.rich_lazy import neuron as nr
from jaxsparse.experiments.rich_lazy import relu_grid as rg
from jaxsparse.train import TrainConfig, build_sweep
from timing import best_time


def grid_benchmark(args) -> None:
    config = rg.GridConfig(train=dataclasses.replace(rg.GridConfig().train, seeds=args.grid_seeds))
    seeds = config.train.seed_values
    n = args.grid_steps
    h = len(config.scales) * len(config.deltas)

    vmapped = build_sweep(rg.build(config)["grid"], seeds)
    states, sources = vmapped.init()
    run_v = vmapped.chunk(n)
    jax.block_until_ready(run_v(states, sources))
    t_v = best_time(lambda: jax.block_until_ready(run_v(states, sources)), args.repeats, warmup=False)

    singles = []  # one program per (scale, delta, seed), scale-major as the grid
    t0 = time.perf_counter()
    for scale in config.scales:
        for delta in config.deltas:
            point = dataclasses.replace(config, scales=(scale,), deltas=(delta,))
            task = rg.build(point)["grid"]
            for seed in seeds:
                sweep = build_sweep(task, [seed])
                st, src = sweep.init()
                run = sweep.chunk(n)
                jax.block_until_ready(run(st, src))
                singles.append((run, st, src))
    t_compile = time.perf_counter() - t0

    def loop():
        for run, st, src in singles:
            jax.block_until_ready(run(st, src))

    t_l = best_time(loop, args.repeats, warmup=False)
    runs = h * len(seeds)
    print(f"== rich-lazy-grid: {len(config.scales)} scales x {len(config.deltas)} deltas x {len(seeds)} seeds = {runs} runs "
          f"(d {config.d}, n {config.n}, width {config.width}), {n} steps; device {jax.devices()[0].platform}")
    print(f"vmapped (1 program):         {n / t_v:9.1f} steps/s ({runs * n / t_v:9.0f} run-steps/s), {t_v:.2f} s")
    print(f"loop ({runs} programs, in turn): {n / t_l:9.1f} steps/s ({runs * n / t_l:9.0f} run-steps/s), {t_l:.2f} s "
          f"(building + compiling + a first run of them: {t_compile:.1f} s, not timed)")
    print(f"ratio loop / vmapped: {t_l / t_v:.2f}x")


def notebook_gradient(XX, XY):
    """``get_gradient`` of the official single-neuron notebook (``theta = [w, a]``), returning ``grad``
    (the notebook returns ``lambda t, theta: -grad(theta)`` for ``solve_ivp``)."""
    def grad(theta):
        w = theta[:-1]
        a = theta[-1]
        beta = a * w
        residual = XX.dot(beta) - XY
        dw = a * residual
        da = w.dot(residual)
        dtheta = np.concatenate((dw, [da]))
        return dtheta
    return grad


def numpy_gd(theta0s, beta_stars, lr: float, n: int) -> np.ndarray:
    """One neuron at a time, ``n`` gradient-descent updates in a Python loop; final thetas ``[K, d + 1]``."""
    finals = []
    for theta0, beta_star in zip(theta0s, beta_stars):
        d = len(beta_star)
        grad = notebook_gradient(np.eye(d), beta_star)
        theta = theta0.copy()
        traj = np.empty((n + 1, d + 1))
        traj[0] = theta
        for t in range(n):
            theta = theta - lr * grad(theta)
            traj[t + 1] = theta
        finals.append(theta)
    return np.stack(finals)


def notebook_flow(theta0s, beta_stars, span: float) -> list[int]:
    """The notebook's own run: ``solve_ivp`` of the gradient flow over ``[0, span]``; adaptive steps taken."""
    taken = []
    for theta0, beta_star in zip(theta0s, beta_stars):
        g = notebook_gradient(np.eye(len(beta_star)), beta_star)
        sol = solve_ivp(lambda t, theta: -g(theta), [0, span], theta0, rtol=1e-6)
        taken.append(len(sol.t) - 1)
    return taken


def neuron_benchmark(args) -> None:
    n = args.neuron_steps
    config = nr.NeuronConfig(train=TrainConfig(steps=n, seeds=args.neuron_seeds, log_every=n, checkpoint_every=n))
    seeds = config.train.seed_values
    k = len(config.deltas)

    sweep = build_sweep(nr.build(config)["neuron"], seeds)
    states, sources = sweep.init()
    run = sweep.chunk(n)
    jax.block_until_ready(run(states, sources))
    t_e = best_time(lambda: jax.block_until_ready(run(states, sources)), args.repeats, warmup=False)
    final, _ = run(states, sources)

    a0 = np.asarray(states.params["a"], np.float64).reshape(-1)              # [S K]
    w0 = np.asarray(states.params["w"], np.float64).reshape(len(seeds) * k, -1)
    theta0s = np.concatenate([w0, a0[:, None]], axis=1)                      # notebook order [w, a]
    beta_stars = np.repeat(np.asarray(sources["beta_star"], np.float64), k, axis=0)
    result = []
    t_np = best_time(lambda: result.append(numpy_gd(theta0s, beta_stars, config.lr, n)), 1, warmup=False)
    theta_e = np.concatenate([np.asarray(final.params["w"]).reshape(len(seeds) * k, -1),
                              np.asarray(final.params["a"]).reshape(-1, 1)], axis=1)
    diff = float(np.max(np.abs(result[-1] - theta_e)))
    taken = []
    t_ivp = best_time(lambda: taken.append(notebook_flow(theta0s, beta_stars, n * config.lr)), 1, warmup=False)

    neurons = len(seeds) * k
    print(f"== rich-lazy-neuron: {k} deltas x {len(seeds)} seeds = {neurons} neurons (d {config.d}), {n} steps of lr "
          f"{config.lr} (time {n * config.lr:g})")
    print(f"engine (1 program, per-step metrics): {t_e:8.3f} s ({neurons * n / t_e:11.0f} neuron-steps/s)")
    print(f"numpy loop, one neuron at a time:     {t_np:8.3f} s ({neurons * n / t_np:11.0f} neuron-steps/s); "
          f"max |numpy - engine| final theta {diff:.1e} (float64 vs float32)")
    print(f"ratio numpy loop / engine: {t_np / t_e:.1f}x")
    print(f"notebook's solve_ivp(rtol=1e-6) over the same time: {t_ivp:.3f} s "
          f"({int(np.mean(taken[-1]))} adaptive steps per neuron on average; ratio / engine {t_ivp / t_e:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid-seeds", type=int, default=2)
    parser.add_argument("--grid-steps", type=int, default=200)
    parser.add_argument("--neuron-seeds", type=int, default=2)
    parser.add_argument("--neuron-steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("grid", "neuron"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        # The loop's 50 programs lower to the same computation (the grid point and seed are arguments),
        # so a persistent compilation cache compiles it once; compiling is never timed either way.
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
        run_all(args)


def run_all(args) -> None:
    if args.only in (None, "grid"):
        grid_benchmark(args)
    if args.only in (None, "neuron"):
        neuron_benchmark(args)


if __name__ == "__main__":
    main()

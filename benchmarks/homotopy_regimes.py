"""Homotopy compile time and run time across Lasso weights, and how many samples outgrow the first pass.

Problem: the solver benchmark's (``benchmarks/solvers.py``), 8-sparse codes + 1 % noise on a 4x
overcomplete dictionary of 256 atoms in 64 dimensions, ``max_active=32``; smaller ``lam`` gives
larger supports, so more samples outgrow the 16 slots of the first CPU pass (and are redone with 32)
or all 32 (and fall back to FISTA). For each ``(lam, batch)``: the seconds to compile, the best of
``--repeats`` calls, the samples flagged by the first pass, FISTA fallbacks and mean path steps.

    python benchmarks/homotopy_regimes.py
"""

from __future__ import annotations

import argparse
import importlib
import time

import jax
import jax.numpy as jnp

import jaxsparse as js
from timing import best_time

homotopy_module = importlib.import_module("jaxsparse.solvers.homotopy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}")
    print(f"{'lam':>5s} {'batch':>6s} {'compile s':>10s} {'run ms':>8s} {'>16 slots':>10s} {'fallback':>9s} {'steps':>6s}")
    for lam, batch in [(0.05, 4096), (0.04, 4096), (0.02, 4096), (0.01, 1024)]:
        x, _, d = js.data.sparse_coding_data(jax.random.key(0), batch, 256, 64, 8, noise=0.01)
        solve = jax.jit(lambda d, x, lam=lam: js.solvers.homotopy(d, x, lam=lam, max_active=32, return_info=True))
        t0 = time.perf_counter()
        exe = solve.lower(d, x).compile()
        compile_s = time.perf_counter() - t0
        _, info = exe(d, x)
        run = best_time(lambda: jax.block_until_ready(exe(d, x)), args.repeats)
        with jax.default_matmul_precision("highest"):
            first = jax.jit(lambda d, x, lam=lam: homotopy_module._solve(
                d, x, jnp.asarray(lam, x.dtype), max_active=16, max_steps=64, nonneg=False,
                schedule=homotopy_module.CPU_SCHEDULE)[1])(d, x)
        print(f"{lam:5.2f} {batch:6d} {compile_s:10.2f} {run * 1e3:8.1f} {int(first.sum()):10d} "
              f"{int(info.fallback.sum()):9d} {float(info.path_steps.mean()):6.2f}", flush=True)


if __name__ == "__main__":
    main()

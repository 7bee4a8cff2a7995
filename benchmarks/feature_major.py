"""Sample-major against feature-major activations on CPU (``jaxsparse.models.matmul.matmul_t``).

Each layout runs in its own child process pinned to one core, as ``jaxsparse run``'s workers are;
the two children alternate for ``--rounds`` rounds and each number is the best round, so a machine
whose speed drifts biases neither side. The layout is forced through
``jaxsparse.models.matmul.FEATURE_MAJOR_MAX_WIDTH`` (0: never feature-major; 10^9: always), which
``prefers_feature_major`` reads when a program is traced.

1. One product of 5 seeds (vmapped) of paper 1's sizes, ``B = 1024``, in a ``fori_loop`` whose
   input is updated elementwise each pass (the update alone is timed as ``update only``):
   ``x [B, 8] @ W [8, 16]`` against ``W^T x^T``, and the weight gradient ``x^T g`` over the major
   axis against the same contraction over the minor axis.
2. One training step of 5 seeds of paper 1's encoders (``--methods``), microseconds; ``--hidden``
   adds MLP encoders of other widths to the unknown regime.
3. ``sparse_coding.fit_codes`` on one seed (1024 samples, 16 x 8 dictionary), microseconds per Adam step.

    python benchmarks/feature_major.py
    python benchmarks/feature_major.py --hidden 48 64 128 --methods unknown/MLP-48 unknown/MLP-64 unknown/MLP-128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

METHODS = ("unknown/SAE", "unknown/TopK-3", "unknown/JumpReLU", "unknown/LISTA-3", "unknown/MLP-32",
           "unknown/MLP-256", "known_d/SAE", "known_d/MLP-32", "known_z/SAE", "known_z/MLP-32")


def products(feature_major: bool) -> dict[str, float]:
    """Microseconds per product (item 1), in this process."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    from timing import best_time

    def timed(f, a, b, n=300):
        def body(i, carry):
            a, acc = carry
            a = a * 0.999 + 1e-4  # the input changes every pass, so the product is not hoisted
            return a, acc + f(a, b).ravel()[0]

        run = jax.jit(lambda a, b: lax.fori_loop(0, n, body, (a, jnp.float32(0)))[1])
        return best_time(lambda: run(a, b).block_until_ready(), 5) / n * 1e6

    seeds = 5
    normal = lambda *shape: jax.random.normal(jax.random.key(0), (seeds, *shape))  # noqa: E731
    batched = lambda lhs, rhs: (((lhs,), (rhs,)), ((0,), (0,)))  # noqa: E731  contracting dims, seeds batched
    out = {}
    if feature_major:
        out["W^T x^T [16, 8] @ [8, B]"] = timed(lambda a, b: lax.dot_general(b, a, batched(2, 1)), normal(8, 1024), normal(16, 8))
        out["weight gradient, contracted over the minor B"] = timed(
            lambda a, b: lax.dot_general(a, b, batched(2, 2)), normal(8, 1024), normal(16, 1024))
        out["update only"] = timed(lambda a, b: a, normal(8, 1024), normal(16, 8))
    else:
        out["x W [B, 8] @ [8, 16]"] = timed(lambda a, b: lax.dot_general(a, b, batched(2, 1)), normal(1024, 8), normal(8, 16))
        out["weight gradient, contracted over the major B"] = timed(
            lambda a, b: lax.dot_general(a, b, batched(1, 1)), normal(1024, 8), normal(1024, 16))
        out["update only"] = timed(lambda a, b: a, normal(1024, 8), normal(8, 16))
    return out


def child(methods: list[str], hidden: list[int], steps: int, feature_major: bool) -> dict[str, float]:
    """Microseconds of each item in this process, the layout forced to ``feature_major``."""
    import dataclasses

    import jax
    import jax.numpy as jnp

    from jaxsparse.models import matmul
    from timing import best_time

    matmul.FEATURE_MAJOR_MAX_WIDTH = 10**9 if feature_major else 0
    out = products(feature_major)
    from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig
    from jaxsparse.experiments.amortisation_gap.tasks import build
    from jaxsparse.models import sparse_coding as sc
    from jaxsparse.train import build_sweep

    config = AmortisationGapConfig()
    if hidden:
        config = dataclasses.replace(config, methods=dataclasses.replace(config.methods, mlp_hidden=tuple(hidden)))
    tasks = build(config)
    for name in methods:
        sweep = build_sweep(tasks[name], list(range(config.train.seeds)), devices=jax.devices()[:1])
        states, sources = sweep.init()
        chunk = sweep.chunk(steps)
        out[name] = best_time(lambda: jax.block_until_ready(chunk(states, sources)), 3) / steps * 1e6
    d = jax.random.normal(jax.random.key(0), (16, 8))
    d = d / jnp.linalg.norm(d, axis=1, keepdims=True)
    x = jax.random.normal(jax.random.key(1), (1024, 8))
    n = 2000
    out["fit_codes, one seed"] = best_time(lambda: sc.fit_codes(d, x, lam=0.04, n_steps=n).block_until_ready(), 3) / n * 1e6
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="*", default=list(METHODS), help="main-job methods to time")
    p.add_argument("--hidden", nargs="*", type=int, default=[], help="MLP widths of the unknown regime (default: the paper's)")
    p.add_argument("--steps", type=int, default=500, help="steps per timed chunk")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two children (best is kept)")
    p.add_argument("--child", choices=("sample", "feature"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        from jaxsparse.cpu_codegen import set_cpu_codegen_flags

        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
        set_cpu_codegen_flags()
        print(json.dumps(child(args.methods, args.hidden, args.steps, args.child == "feature")))
        return

    env = dict(os.environ, JAX_PLATFORMS="cpu")
    best: dict[str, dict[str, float]] = {"sample": {}, "feature": {}}
    for _ in range(args.rounds):
        for side in best:
            cmd = [sys.executable, __file__, "--child", side, "--steps", str(args.steps), "--methods", *args.methods]
            if args.hidden:
                cmd += ["--hidden", *map(str, args.hidden)]
            res = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
            for k, v in res.items():
                best[side][k] = min(best[side].get(k, float("inf")), v)
    print(f"sample-major vs feature-major activations; one core, best of {args.rounds} alternating rounds")
    for side, other in (("sample", "feature"), ("feature", "sample")):
        for k in [k for k in best[side] if k not in best[other] or k == "update only"]:
            print(f"{side + '-major ' + k:58s} {best[side][k]:9.1f} us")
    print(f"{'item':34s} {'sample us':>10s} {'feature us':>11s} {'speed-up':>9s}")
    for k in best["sample"]:
        if k in best["feature"] and k != "update only":
            print(f"{k:34s} {best['sample'][k]:10.1f} {best['feature'][k]:11.1f} {best['sample'][k] / best['feature'][k]:8.2f}x")


if __name__ == "__main__":
    main()

"""SlowVAE vs β-VAE at 64 × 64 for a fixed wall-time budget on an accelerator (how the README's GPU
figures were made), and the re-scoring of the returned parameters on CPU.

Train (on the accelerator; prints steps/s of the vmapped 3-seed × 2-model program, picks the number
of steps that fills ``BUDGET_S`` seconds, trains through :func:`jaxsparse.train.fit` and writes
``results.json``, the figures and each model's final parameters to ``OUT``)::

    OUT=out TRANS=lap python benchmarks/slowvae_gpu.py train 230 64 3   # BUDGET_S IMAGE_SIZE SEEDS [STEPS]

DCI (boosted trees, minutes on CPU) and explicitness are left out of that run and scored
afterwards from the saved parameters, with the experiment's own ``scores``::

    OUT=out python benchmarks/slowvae_gpu.py rescore
"""

import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

from jaxsparse import train
from jaxsparse.experiments import slowvae
from jaxsparse.experiments.slowvae import tasks
from jaxsparse.experiments.slowvae.config import EvalConfig
from jaxsparse.models import vae
from jaxsparse.train.sweep import build_sweep

OUT = os.environ.get("OUT", "out")
FAST_METRICS = ("mcc", "mig", "modularity", "sap", "beta_vae", "factor_vae")


def config(size: int, seeds: int, transition: str, metrics=FAST_METRICS) -> slowvae.SlowVAEConfig:
    base = slowvae.SlowVAEConfig()
    return dataclasses.replace(
        base, data=dataclasses.replace(base.data, image_size=size, transitions=(transition,)),
        eval=dataclasses.replace(base.eval, metrics=metrics, n_points=10_000, n_train=2_000, n_test=1_000,
                                 vote_train=1_000, vote_eval=500),
        train=dataclasses.replace(base.train, seeds=seeds))


def train_budget(budget: float, size: int, seeds: int, steps: int | None) -> None:
    transition = os.environ.get("TRANS", "lap")
    cfg = config(size, seeds, transition)
    print(jax.devices(), flush=True)
    if steps is None:  # calibrate: steps/s of the vmapped program, after compiling
        sweep = build_sweep(slowvae.build(cfg)[transition], cfg.train.seed_values)
        states, sources = sweep.init()
        states, _ = sweep.chunk(200)(states, sources, start=0)
        jax.block_until_ready(states)
        t = time.time()
        states, _ = sweep.chunk(200)(states, sources, start=200)
        jax.block_until_ready(states)
        rate = 200 / (time.time() - t)
        steps = max(1000, int(budget * rate) // 1000 * 1000)
        print(f"{rate:.1f} steps/s ({seeds} seeds x 2 models, {size}px); training {steps} steps", flush=True)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps, log_every=1000,
                                                             checkpoint_every=steps, keep_checkpoints=1))
    run = f"/tmp/slowvae_{transition}"
    t = time.time()
    train.fit("slowvae", cfg, run, progress=False)
    print(f"fit {time.time() - t:.1f}s", json.load(open(f"{run}/methods/{transition}/results.json"))["timing"])
    os.makedirs(OUT, exist_ok=True)
    os.system(f"cp {run}/results.json {run}/figures/*.png {OUT}/; rm -f {OUT}/loss.png")
    print(open(f"{run}/results.md").read(), flush=True)
    _, state = train.restore(run, method=transition)
    flat, _ = jax.tree_util.tree_flatten_with_path(jax.tree.map(np.asarray, state.params))
    for j, model in enumerate(cfg.model.models):
        np.savez(f"{OUT}/params_{model}.npz", **{jax.tree_util.keystr(k): v[:, j] for k, v in flat})


def rescore(size: int = 64, seeds: int = 3) -> None:
    # the CPU default's evaluation sizes (DCI on 1000 / 500 samples, 100 boosting stages)
    cfg = dataclasses.replace(config(size, seeds, "lap"), eval=EvalConfig(metrics=("dci", "explicitness")))
    flat, treedef = jax.tree_util.tree_flatten_with_path(vae.init(jax.random.key(0), image_size=size))
    out = {}
    for model in cfg.model.models:
        saved = np.load(f"{OUT}/params_{model}.npz")
        out[model] = []
        for s in range(seeds):
            params = jax.tree_util.tree_unflatten(treedef, [saved[jax.tree_util.keystr(k)][s] for k, _ in flat])
            out[model].append(tasks.scores(cfg, params))
            print(model, s, out[model][-1], flush=True)
    json.dump(out, open(f"{OUT}/rescore.json", "w"), indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "rescore":
        rescore()
    else:
        budget, size, seeds = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        train_budget(budget, size, seeds, int(sys.argv[5]) if len(sys.argv) > 5 else None)

"""Grokking against unbalanced initialisation (Kunin et al., NeurIPS 2024, §5; Nanda et al., ICLR 2023).

Modular addition ``c = (a + b) mod p`` with ``p = 113``: every pair ``(a, b)`` as the tokens
``a b =`` (``=`` is token ``p``), 30 % of the ``p²`` pairs for training (one split shared by every
run, ``split_seed``), the rest held out. The model is Nanda et al.'s one-layer transformer without
LayerNorm (:mod:`jaxsparse.models.transformer`), trained full batch with AdamW (lr 1e-3, weight
decay 1.0, β = (0.9, 0.98)) on the cross-entropy at the ``=`` position.

**The sweep.** Each seed draws one initialisation; grid point ``ratio`` multiplies the embedding
(``W_E``, ``W_pos``, the upstream layer) by ``sqrt(ratio)`` and divides the readout ``W_U`` (the
downstream layer) by it (:func:`jaxsparse.models.transformer.rescale`): the ratio of embedding to
readout scale changes by ``ratio`` at a fixed product. ``ratio < 1`` is the paper's *upstream*
initialisation (small first layer, large last layer: ``delta > 0`` in the single-neuron picture,
the regime of rapid feature learning); ``ratio > 1`` is downstream. Seeds x ratios are one vmapped
program (``Task.hparams`` with ``Task.grid_init``).

**Measured.** Training accuracy every logged step; held-out accuracy and loss through the task's
``monitor`` (only at logged steps: the held-out set is 70 % of the pairs). ``analyze`` reads the
log: the time to grok of a run is the first logged step with held-out accuracy ``>= target``
(0.9), the memorisation time the first with training accuracy ``>= 0.99``; per ratio the median
over seeds (runs that never grok count as ``> steps``), how many grokked, and the final accuracies.
Figures: accuracy curves per ratio and time to grok against ratio.

Command: ``jaxsparse run rich-lazy-grokking`` (CPU default: :class:`GrokConfig`; Nanda's model
size and budget: ``--preset paper``, :func:`paper`).

**Measured.** CPU default (``jaxsparse run rich-lazy-grokking``: d = 32, 2 seeds, 4,000 steps; 8 min
22 s on 2 partly shared cores): ratio 0.1 grokked one seed (step 900; final held-out accuracy 0.67),
ratios 1 and 10 none (0.05, 0.007). On an H200 with ``--preset paper`` (d = 128, 40,000 steps, 5 seeds, 320 steps/s for the
25 runs): every run grokked; median steps to 90 % held-out accuracy 4,400 / 3,600 / 6,500 / 18,900 /
23,600 at ratios 0.01 / 0.1 / 1 / 10 / 100 (per-seed ranges 3,100–6,200, 3,100–6,300, 5,600–8,300,
11,800–34,300, 17,900–31,900); memorisation within 200 steps everywhere. Smaller upstream
initialisation groks sooner, as Kunin et al. report (0.01 vs 0.1 is a tie).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.models import transformer
from jaxsparse.train import ConfigError, Task, TrainConfig, Trained, register, rundir

NAME = "rich-lazy-grokking"


@dataclasses.dataclass(frozen=True)
class GrokConfig:
    """Modular addition with a one-layer transformer, swept over embedding/readout scale ratios.

    Attributes:
      p: the modulus (a prime; paper 113). Tokens ``0 .. p-1`` and ``=`` (``p``).
      train_fraction: fraction of the ``p²`` pairs used for training (paper 0.3).
      split_seed: seed of the train/held-out split, shared by every run.
      d_model, n_heads, d_mlp: transformer sizes (paper 128, 4, 512).
      ratios: embedding-to-readout scale ratios relative to the default initialisation (> 0).
      lr, weight_decay, b1, b2: AdamW (paper 1e-3, 1.0, 0.9, 0.98).
      target: held-out accuracy that counts as grokked (0.9).
    """

    p: int = 113
    train_fraction: float = 0.3
    split_seed: int = 0
    d_model: int = 32
    n_heads: int = 4
    d_mlp: int = 128
    ratios: tuple[float, ...] = (0.1, 1.0, 10.0)
    lr: float = 1e-3
    weight_decay: float = 1.0
    b1: float = 0.9
    b2: float = 0.98
    target: float = 0.9
    train: TrainConfig = TrainConfig(steps=4000, seeds=2, log_every=100, checkpoint_every=1000)

    def __post_init__(self):
        if self.p < 3:
            raise ConfigError(f"`p` must be >= 3, got {self.p}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"`train_fraction` must be in (0, 1), got {self.train_fraction}")
        if int(self.train_fraction * self.p**2) < 1:
            raise ConfigError(f"`train_fraction` {self.train_fraction} leaves no training pair for p = {self.p}")
        for name in ("d_model", "n_heads", "d_mlp"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"`d_model` ({self.d_model}) must be a multiple of `n_heads` ({self.n_heads})")
        if not self.ratios or any(not r > 0 for r in self.ratios):
            raise ConfigError(f"`ratios` must be a non-empty tuple of numbers > 0, got {self.ratios}")
        if not self.lr > 0 or self.weight_decay < 0 or not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise ConfigError(f"need lr > 0, weight_decay >= 0, 0 <= b1, b2 < 1; got lr={self.lr}, "
                              f"weight_decay={self.weight_decay}, b1={self.b1}, b2={self.b2}")
        if not 0.0 < self.target <= 1.0:
            raise ConfigError(f"`target` must be in (0, 1], got {self.target}")


def paper(config: GrokConfig | None = None) -> GrokConfig:
    """Nanda et al.'s model (d = 128, 4 heads, d_mlp = 512) and budget (40,000 full-batch steps), ratios
    1/100 .. 100, 5 seeds, logged every 100 steps (``jaxsparse run rich-lazy-grokking --preset paper``;
    about 2 min of training on an H200, hours on a CPU)."""
    config = config or GrokConfig()
    return dataclasses.replace(config, d_model=128, n_heads=4, d_mlp=512, ratios=(0.01, 0.1, 1.0, 10.0, 100.0),
                               train=TrainConfig(steps=40_000, seeds=5, log_every=100, checkpoint_every=10_000))


def split(config: GrokConfig) -> dict[str, jax.Array]:
    """``{"x_train": int [n, 3], "y_train": [n], "x_test": [p² - n, 3], "y_test"}``: every pair ``a b =``
    with label ``(a + b) mod p``, the first ``floor(train_fraction p²)`` of a seeded permutation for training."""
    p = config.p
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    tokens = np.stack([a.ravel(), b.ravel(), np.full(p * p, p)], axis=1).astype(np.int32)
    labels = ((a + b) % p).ravel().astype(np.int32)
    order = np.random.default_rng(config.split_seed).permutation(p * p)
    n = int(config.train_fraction * p * p)
    tr, te = order[:n], order[n:]
    return {"x_train": jnp.asarray(tokens[tr]), "y_train": jnp.asarray(labels[tr]),
            "x_test": jnp.asarray(tokens[te]), "y_test": jnp.asarray(labels[te])}


def _scores(params: Any, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(mean cross-entropy, accuracy)`` of ``params`` on tokens ``x`` with labels ``y``."""
    logits = transformer.apply(params, x)
    return (optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
            jnp.mean(jnp.argmax(logits, axis=-1) == y))


def build(config: GrokConfig) -> dict[str, Task]:
    """One task ``"sweep"``: seeds x ratios, full batch, AdamW; held-out scores in ``monitor``."""
    data = split(config)

    def init(key, source):
        return transformer.init(key, n_vocab=config.p + 1, n_out=config.p, n_ctx=3, d_model=config.d_model,
                                n_heads=config.n_heads, d_mlp=config.d_mlp)

    def loss_fn(params, batch, key, hp):
        loss, acc = _scores(params, batch["x_train"], batch["y_train"])
        return loss, {"train_accuracy": acc}

    def monitor(params, source, hp):
        loss, acc = _scores(params, source["x_test"], source["y_test"])
        return {"test_loss": loss, "test_accuracy": acc}

    return {"sweep": Task(init=init, loss_fn=loss_fn,
                          optimizer=optax.adamw(config.lr, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay),
                          data_fn=lambda source, step: source,
                          make_source=lambda key: data,
                          hparams={"ratio": jnp.asarray(config.ratios, jnp.float32)},
                          grid_init=lambda params, hp: transformer.rescale(params, hp["ratio"]),
                          monitor=monitor)}


def first_step(rows: list[dict[str, Any]], key: str, threshold: float) -> int | None:
    """The first logged ``step`` (rows of one run, any order) with ``rows[key] >= threshold``, else None."""
    hits = [r["step"] for r in rows if key in r and np.isfinite(r[key]) and r[key] >= threshold]
    return min(hits) if hits else None


def _median_time(times: list[int | None]) -> float:
    """Median of times to grok, a run that never grokked counting as ``inf`` (so ``> steps``)."""
    return float(np.median([np.inf if t is None else t for t in times]))


def analyze(config: GrokConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Times to memorise and to grok per run from the log; per ratio medians; curves and figures."""
    t = trained["sweep"]
    rows = rundir.read_metrics(t.run_dir / rundir.METRICS)
    seeds, steps = config.train.seed_values, config.train.steps
    by_run: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for r in rows:
        by_run.setdefault((r["seed"], r["hparam"]), []).append(r)
    runs, per_ratio = [], []
    for j, ratio in enumerate(config.ratios):
        grok, memo = [], []
        for s in seeds:
            log = by_run.get((s, j), [])
            last = max(log, key=lambda r: r["step"]) if log else {}
            g, m = first_step(log, "test_accuracy", config.target), first_step(log, "train_accuracy", 0.99)
            grok.append(g)
            memo.append(m)
            runs.append({"seed": s, "hparam": j, "ratio": float(ratio), "grokked": float(g is not None),
                         "time_to_grok": float(g) if g is not None else float("nan"),
                         "time_to_memorise": float(m) if m is not None else float("nan"),
                         "final_test_accuracy": float(last.get("test_accuracy", np.nan)),
                         "final_train_accuracy": float(last.get("train_accuracy", np.nan))})
        mine = [r for r in runs if r["hparam"] == j]
        per_ratio.append({"ratio": float(ratio), "median_time_to_grok": _median_time(grok),
                          "times_to_grok": grok, "grokked": sum(g is not None for g in grok), "n_seeds": len(seeds),
                          "median_time_to_memorise": _median_time(memo),
                          "final_test_accuracy": float(np.mean([r["final_test_accuracy"] for r in mine])),
                          "final_train_accuracy": float(np.mean([r["final_train_accuracy"] for r in mine]))})
    summary = rundir.summarize(runs, keys=("seed", "hparam", "step", "ratio"))
    results = {"seeds": seeds, "steps": steps, "target": config.target, "ratios": list(config.ratios),
               "by_ratio": per_ratio, "timing": t.results.get("timing"), **summary}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        results["figures"] = _figures(config, by_run, per_ratio, figures)
        text = _markdown(config, per_ratio)
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return json.loads(json.dumps(results, allow_nan=True))


def _markdown(config: GrokConfig, per_ratio: list[dict[str, Any]]) -> str:
    lines = [f"# {NAME}: p = {config.p}, {config.train_fraction:.0%} train, {config.train.steps} full-batch steps, "
             f"seeds {config.train.seed_values}", "",
             f"Transformer d = {config.d_model}, {config.n_heads} heads, d_mlp = {config.d_mlp}; AdamW lr {config.lr}, "
             f"weight decay {config.weight_decay}, betas ({config.b1}, {config.b2}). Embedding x sqrt(ratio), readout / "
             f"sqrt(ratio). Time to grok: first logged step with held-out accuracy >= {config.target} "
             f"(logged every {config.train.log_every}); '>' = not within the budget.", "",
             "| ratio | grokked | median time to grok | times (per seed) | median time to memorise | final test acc | final train acc |",
             "|---|---|---|---|---|---|---|"]
    def steps(median: float) -> str:
        return f"{median:g}" if np.isfinite(median) else f"> {config.train.steps}"

    for r in per_ratio:
        times = ", ".join("-" if t is None else str(t) for t in r["times_to_grok"])
        lines.append(f"| {r['ratio']:g} | {r['grokked']}/{r['n_seeds']} | {steps(r['median_time_to_grok'])} | {times} | "
                     f"{steps(r['median_time_to_memorise'])} | "
                     f"{r['final_test_accuracy']:.3f} | {r['final_train_accuracy']:.3f} |")
    lines += ["", "![accuracy](figures/accuracy.png)", "![time to grok](figures/time_to_grok.png)", ""]
    return "\n".join(lines)


def _figures(config: GrokConfig, by_run: dict[tuple[int, int], list[dict[str, Any]]],
             per_ratio: list[dict[str, Any]], figures: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.cm.viridis(np.linspace(0, 0.9, len(config.ratios)))
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for j, ratio in enumerate(config.ratios):
        for s in config.train.seed_values:
            log = sorted(by_run.get((s, j), []), key=lambda r: r["step"])
            steps = [r["step"] for r in log]
            label = f"ratio {ratio:g}" if s == config.train.seed_values[0] else None
            ax.plot(steps, [r.get("test_accuracy", np.nan) for r in log], color=colors[j], lw=1.2, label=label)
            ax.plot(steps, [r.get("train_accuracy", np.nan) for r in log], color=colors[j], lw=0.8, ls=":")
    ax.axhline(config.target, color="grey", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("AdamW steps (full batch)")
    ax.set_ylabel("accuracy (solid: held out; dotted: train)")
    ax.legend(fontsize=7)
    ax.set_title(f"{NAME}: p = {config.p}, embedding/readout scale ratio", fontsize=9)
    fig.tight_layout()
    fig.savefig(figures / "accuracy.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for j, r in enumerate(per_ratio):
        times = [t if t is not None else np.nan for t in r["times_to_grok"]]
        ax.scatter([r["ratio"]] * len(times), times, color=colors[j], s=12, alpha=0.7)
        if np.isfinite(r["median_time_to_grok"]):
            ax.scatter([r["ratio"]], [r["median_time_to_grok"]], color="k", marker="_", s=200)
    ax.set_xscale("log")
    ax.set_xlim(min(config.ratios) / 2, max(config.ratios) * 2)
    if any(r["grokked"] for r in per_ratio):
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, f"no run reached {config.target:.0%}\nwithin {config.train.steps} steps", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xlabel("embedding / readout init scale ratio")
    ax.set_ylabel(f"steps to {config.target:.0%} held-out accuracy")
    ax.set_title("time to grok (bar: median over seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(figures / "time_to_grok.png", dpi=100)
    plt.close(fig)
    return ["accuracy.png", "time_to_grok.png"]


register(NAME, GrokConfig, build, analyze=analyze, module=__name__)

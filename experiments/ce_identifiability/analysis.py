"""Tables and figures of the cross-entropy identifiability experiment (nothing here trains).

``results.json`` holds one entry per task (per-seed scores, mean, spread with ddof=1), the
identifiability table (``r2``: method × d × κ against the random-encoder and raw-observation
controls) and the sprites decoding table (``sprites``: factor × features, random trunk, pixels).
``figures/``: ``r2.png`` (held-out linear R² per task, seeds as dots, controls as hollow marks),
``latents_<task>.png`` (true latent vs its linear prediction, seed 0, first task of each method)
and ``sprites_decoding.png`` (Pearson r of each factor's linear readout).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxsparse.data import sprites
from jaxsparse.eval import linear_r2
from jaxsparse.experiments.ce_identifiability.config import CEConfig
from jaxsparse.experiments.ce_identifiability.tasks import (DECODED_FACTORS, SPRITES_TASK, _eval_samples,
                                                              _features)
from jaxsparse.train import Trained, rundir
from jaxsparse.train.report import methods_table

FEATURE_SETS = (("", "classifier features"), ("random_", "random conv trunk"), ("pixels_", "raw pixels"))


def _pm(entry: dict[str, Any], key: str) -> str:
    return f"{entry['mean'][key]:.3f} ± {entry['std'][key]:.3f}"


def entries_of(trained: Mapping[str, Trained]) -> list[dict[str, Any]]:
    """One entry per task: its name and the engine's per-seed scores, mean and spread."""
    out = []
    for name, t in trained.items():
        r = t.results
        out.append({"method": name, **{k: r[k] for k in ("per_seed", "mean", "std", "min", "max") if k in r}})
    return out


def r2_rows(config: CEConfig, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The identifiability table: per method × d × κ, the mean ± std of R², of s_min/s_max and of the controls."""
    rows = []
    for e in entries:
        if e["method"] == SPRITES_TASK:
            continue
        method, d, k = e["method"].rsplit("-", 2)
        rows.append({"task": e["method"], "method": method, "d": int(d[1:]), "kappa": float(k[1:]),
                     **{key: {"mean": e["mean"][key], "std": e["std"][key],
                              "per_seed": [s[key] for s in e["per_seed"]]}
                        for key in ("r2", "sv_ratio", "random_r2", "observed_r2")}})
    return rows


def sprites_rows(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Per continuous factor: R² and Pearson r (mean ± std over seeds) of each feature set."""
    rows = []
    for f in DECODED_FACTORS:
        factor = sprites.FACTOR_NAMES[f]
        row = {"factor": factor}
        for prefix, label in FEATURE_SETS:
            for metric in ("r2", "pearson"):
                key = f"{prefix}{metric}_{factor}"
                row[f"{label}/{metric}"] = {"mean": entry["mean"][key], "std": entry["std"][key]}
        rows.append(row)
    return rows


def markdown(config: CEConfig, r2: list[dict[str, Any]], sprite: dict[str, Any] | None) -> str:
    seeds = config.train.seed_values
    lines = [f"# ce-identifiability: {config.train.steps} steps of {config.data.batch_size}, seeds {seeds}", "",
             "Held-out linear R² of the true latents from the learned features (mean ± std over seeds, ddof=1); "
             "s_min/s_max of the fitted map (1: orthogonal up to scale); controls: a random encoder and the "
             "observations x = g(z).", "",
             "| method | d | κ | R² | s_min/s_max | random encoder R² | observations R² |", "|---|---|---|---|---|---|---|"]
    for r in r2:
        cells = [f"{r[k]['mean']:.3f} ± {r[k]['std']:.3f}" for k in ("r2", "sv_ratio", "random_r2", "observed_r2")]
        lines.append(f"| {r['method']} | {r['d']} | {r['kappa']:g} | " + " | ".join(cells) + " |")
    if sprite is not None:
        s = config.sprites
        lines += ["", f"## sprites ({s.image_size}px): shape classifier for {s.steps} steps of {s.batch_size}, "
                  f"shape accuracy {_pm(sprite, 'shape_accuracy')}", "",
                  "Linear readout of each continuous factor (held-out R² / Pearson r, mean ± std over seeds).", "",
                  "| factor | " + " | ".join(label for _, label in FEATURE_SETS) + " |", "|---|---|---|---|"]
        for row in sprites_rows(sprite):
            cells = [f"{row[f'{label}/r2']['mean']:.3f} / {row[f'{label}/pearson']['mean']:.3f} "
                     f"(± {row[f'{label}/pearson']['std']:.3f})" for _, label in FEATURE_SETS]
            lines.append(f"| {row['factor']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _r2_figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(rows) + 1.5), 3.6))
    for i, r in enumerate(rows):
        ax.bar(i, r["r2"]["mean"], color="C0", alpha=0.6)
        ax.plot([i] * len(r["r2"]["per_seed"]), r["r2"]["per_seed"], "k.", ms=4)
        ax.plot(i, r["random_r2"]["mean"], "o", mfc="none", color="C3", label="random encoder" if i == 0 else None)
        ax.plot(i, r["observed_r2"]["mean"], "s", mfc="none", color="C2", label="observations x" if i == 0 else None)
    ax.set_xticks(range(len(rows)), [r["task"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(min(0.0, *(r["random_r2"]["mean"] for r in rows)), 1.02)
    ax.set_ylabel("held-out linear R²")
    ax.axhline(1.0, color="gray", lw=0.5)
    ax.legend(fontsize=7, loc="lower left")
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _latents_figure(config: CEConfig, name: str, t: Trained, path: Path) -> None:
    """True latents against their linear prediction from seed 0's features (held-out half)."""
    import matplotlib.pyplot as plt

    method, _, k = name.rsplit("-", 2)
    params = jax.tree.map(lambda v: v[0], t.state.params)
    source = jax.tree.map(lambda v: v[0], t.sources)
    s = _eval_samples(config, source, float(k[1:]), jax.random.key(config.eval.seed))
    z = np.asarray(s["z"], np.float64)
    feats = np.asarray(_features(params, s["x"], method), np.float64)
    fit = linear_r2(z, feats)
    pred = feats @ fit["weights"] + fit["bias"]
    n = min(z.shape[1], 5)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.3), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.plot(z[:2000, i], pred[:2000, i], ".", ms=1, alpha=0.4)
        ax.plot([-1, 1], [-1, 1], "k-", lw=0.5)
        ax.set_title(f"z{i}: R² {fit['r2_per_latent'][i]:.3f}", fontsize=8)
        ax.set_xlabel("true", fontsize=7)
    axes[0, 0].set_ylabel("linear prediction", fontsize=7)
    fig.suptitle(f"{name} (seed {config.train.seed_values[0]}): true latent vs linear prediction", fontsize=9, y=1.06)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def _sprites_figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.2))
    width = 0.8 / len(FEATURE_SETS)
    for j, (_, label) in enumerate(FEATURE_SETS):
        means = [r[f"{label}/pearson"]["mean"] for r in rows]
        stds = [r[f"{label}/pearson"]["std"] for r in rows]
        ax.bar(np.arange(len(rows)) + (j - 1) * width, means, width, yerr=stds, label=label)
    ax.set_xticks(range(len(rows)), [r["factor"] for r in rows])
    ax.set_ylabel("Pearson r of the linear readout")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def analyze(config: CEConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Every task's scores, the R² and sprites tables, ``results.md`` and ``figures/``."""
    entries = entries_of(trained)
    rows = r2_rows(config, entries)
    sprite = next((e for e in entries if e["method"] == SPRITES_TASK), None)
    results = {"seeds": config.train.seed_values, "steps": config.train.steps, "r2": rows,
               "sprites": None if sprite is None else {"shape_accuracy": sprite["mean"]["shape_accuracy"],
                                                       "factors": sprites_rows(sprite)},
               "methods": entries}
    if rundir.is_writer():
        import matplotlib

        matplotlib.use("Agg")
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        names = []
        if rows:
            _r2_figure(rows, figures / "r2.png")
            names.append("r2.png")
            for method in config.model.methods:
                name = next(r["task"] for r in rows if r["method"] == method)
                _latents_figure(config, name, trained[name], figures / f"latents_{name}.png")
                names.append(f"latents_{name}.png")
        if sprite is not None:
            _sprites_figure(results["sprites"]["factors"], figures / "sprites_decoding.png")
            names.append("sprites_decoding.png")
        results["figures"] = names
        text = markdown(config, rows, sprite)
        (run_dir / "results.md").write_text(text + "\n" + methods_table(entries))
        if progress:
            print(text)
    return results

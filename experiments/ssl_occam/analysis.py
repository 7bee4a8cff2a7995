"""Results table and figure of the DIET-against-SSL experiment (nothing here trains).

``results.json`` holds, per dataset and method, the probe accuracy of every ``(lr, wd)`` grid point
(mean and sample std over seeds), the paper's default point (lr 1e-3, wd 0.05, or the first grid point
when it is not in the grid), the best point, and the sensitivity: the range (max - min) and the std of
the grid points' seed means. Per dataset it adds two controls scored by the same probe (a backbone at
its random initialisation, and the raw pixels) and the comparison the paper makes: DIET's best point
minus the best SSL variant's best point, with the seeds' spread beside it. ``figures/grid.png`` shows
every grid point per dataset and method.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxsparse.eval import linear_probe
from jaxsparse.experiments.ssl_occam.config import SSLConfig
from jaxsparse.experiments.ssl_occam.tasks import dataset, probe_scores, stem_stride
from jaxsparse.models import resnet
from jaxsparse.train import Trained, rundir

DEFAULT = (1e-3, 0.05)
METRIC = "probe_accuracy"


def method_summary(config: SSLConfig, t: Trained) -> dict[str, Any]:
    """Per grid point mean/std over seeds of the probe accuracy, the default and best points, the grid's spread."""
    grid = config.grid()
    points = []
    for j, (lr, wd) in enumerate(grid):
        accs = [r[METRIC] for r in t.results["per_seed"] if r["hparam"] == j]
        points.append({"lr": lr, "wd": wd, "mean": float(np.mean(accs)),
                       "std": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0, "per_seed": accs,
                       "feature_rank": t.results["by_hparam"][j]["mean"]["feature_rank"]})
    means = np.array([p["mean"] for p in points])
    default = grid.index(DEFAULT) if DEFAULT in grid else 0
    best = int(np.argmax(means))
    return {"grid": points, "default": {"index": default, **points[default]}, "best": {"index": best, **points[best]},
            "grid_range": float(means.max() - means.min()), "grid_std": float(np.std(means))}


def controls(config: SSLConfig, name: str) -> dict[str, Any]:
    """Probe accuracy of a randomly initialised backbone (one per seed) and of the raw pixels."""
    data = dataset(config, name)
    shape = data["train_x"].shape[1:]
    apply = jax.jit(functools.partial(resnet.apply, groups=config.groups, stem_stride=stem_stride(shape[0])))
    random_init = []
    for seed in config.train.seed_values:
        net = resnet.init(jax.random.fold_in(jax.random.key(seed), 1), image_shape=shape,
                          widths=config.widths, blocks=config.blocks, groups=config.groups)
        random_init.append(probe_scores(apply, net, data, config.probe_l2)["probe_accuracy"])
    flat = lambda x: np.asarray(x).reshape(len(x), -1)  # noqa: E731
    pixels = linear_probe(flat(data["train_x"]), data["train_y"], flat(data["test_x"]), data["test_y"],
                          l2=config.probe_l2)["test_accuracy"]
    return {"random_init": {"mean": float(np.mean(random_init)), "per_seed": random_init,
                            "std": float(np.std(random_init, ddof=1)) if len(random_init) > 1 else 0.0},
            "pixels": pixels, "n_train": int(len(data["train_y"])), "n_test": int(len(data["test_y"])),
            "image_shape": list(data["train_x"].shape[1:])}


def comparison(methods: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """DIET's best grid point against the best SSL variant's (None without DIET or without an SSL method)."""
    ssl = {m: s for m, s in methods.items() if m != "diet"}
    if "diet" not in methods or not ssl:
        return None
    rival = max(ssl, key=lambda m: ssl[m]["best"]["mean"])
    diet, other = methods["diet"]["best"], ssl[rival]["best"]
    gap = diet["mean"] - other["mean"]
    noise = float(np.hypot(diet["std"], other["std"]))
    return {"best_ssl": rival, "gap": gap, "seed_noise": noise, "within_2_points": bool(gap >= -0.02),
            "verdict": "tie" if abs(gap) <= max(noise, 1e-9) else ("DIET above" if gap > 0 else "DIET below"),
            "diet_grid_range": methods["diet"]["grid_range"],
            "ssl_grid_range": {m: s["grid_range"] for m, s in ssl.items()},
            "diet_less_sensitive": bool(all(methods["diet"]["grid_range"] < s["grid_range"] for s in ssl.values()))}


def analyze(config: SSLConfig, trained: dict[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """The table of the module docstring, ``figures/grid.png`` and ``results.md``."""
    out: dict[str, Any] = {"grid": [{"lr": lr, "wd": wd} for lr, wd in config.grid()],
                           "views_per_step": config.views_per_step, "steps": config.train.steps, "datasets": {}}
    for name in config.datasets:
        methods = {m: method_summary(config, trained[f"{name}/{m}"]) for m in config.methods}
        out["datasets"][name] = {"methods": methods, "controls": controls(config, name),
                                 "comparison": comparison(methods)}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        out["figures"] = [_grid_figure(config, out, figures / "grid.png")]
        text = markdown(config, out)
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return out


def _grid_figure(config: SSLConfig, out: dict[str, Any], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(out["datasets"])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    labels = [f"{lr:g}\n{wd:g}" for lr, wd in config.grid()]
    for ax, name in zip(axes[0], names):
        d = out["datasets"][name]
        for k, (method, s) in enumerate(d["methods"].items()):
            x = np.arange(len(labels)) + 0.08 * (k - 1)
            ax.errorbar(x, [p["mean"] for p in s["grid"]], yerr=[p["std"] for p in s["grid"]], marker="o", capsize=3,
                        label=method)
        ax.axhline(d["controls"]["random_init"]["mean"], color="grey", ls="--", label="random init")
        ax.axhline(d["controls"]["pixels"], color="black", ls=":", label="pixels")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlabel("lr / weight decay")
        ax.set_ylabel("linear-probe accuracy (held out)")
        ax.set_title(f"{name}: mean ± std over {config.train.seeds} seeds")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path.name


def markdown(config: SSLConfig, out: dict[str, Any]) -> str:
    """The results table as Markdown."""
    lines = [f"# ssl-occam: linear-probe accuracy ({config.train.steps} steps x {config.views_per_step} views, "
             f"{config.train.seeds} seeds, grid lr {list(config.lrs)} x wd {list(config.wds)})", "",
             "| dataset | method | default point | best point (lr, wd) | grid range | grid points (mean) | feature rank |",
             "|---|---|---|---|---|---|---|"]
    for name, d in out["datasets"].items():
        for method, s in d["methods"].items():
            de, be = s["default"], s["best"]
            pts = " / ".join(f"{p['mean']:.3f}" for p in s["grid"])
            lines.append(f"| {name} | {method} | {de['mean']:.3f} ± {de['std']:.3f} | {be['mean']:.3f} ± {be['std']:.3f} "
                         f"({be['lr']:g}, {be['wd']:g}) | {s['grid_range']:.3f} | {pts} | {be['feature_rank']:.1f} |")
        c = d["controls"]
        lines.append(f"| {name} | random init | {c['random_init']['mean']:.3f} ± {c['random_init']['std']:.3f} | | | | |")
        lines.append(f"| {name} | pixels | {c['pixels']:.3f} | | | | |")
    lines.append("")
    for name, d in out["datasets"].items():
        c = d["comparison"]
        if c:
            lines.append(f"- {name}: DIET best − {c['best_ssl']} best = {c['gap']:+.3f} (seed noise {c['seed_noise']:.3f}: "
                         f"{c['verdict']}); within 2 points: {c['within_2_points']}; grid range DIET "
                         f"{c['diet_grid_range']:.3f} vs " + ", ".join(f"{m} {r:.3f}" for m, r in c["ssl_grid_range"].items())
                         + f"; DIET less sensitive: {c['diet_less_sensitive']}")
    return "\n".join(lines) + "\n"

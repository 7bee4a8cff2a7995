"""Results table and figures of the SlowVAE experiment (nothing here trains).

``results.json`` holds one entry per ``model/transition`` with its per-seed scores, mean and spread
(ddof=1), and the headline: per transition, the paired per-seed differences SlowVAE − β-VAE (both
models of a seed share the initial parameters and the batches). ``figures/`` gets, per
method (seed 0): ``traversals_<model>_<transition>.png`` (each latent swept over ±2.5 around one
image's code, decoded) and ``correlations.png`` (|Spearman| between every latent and factor).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse.data import sprites
from jaxsparse.experiments.slowvae.config import SlowVAEConfig
from jaxsparse.experiments.slowvae.tasks import _uniform_factors, encoder
from jaxsparse.models import vae
from jaxsparse.train import Trained, rundir
from jaxsparse.train.report import methods_table

HEADLINE = ("mcc", "mig", "dci_disentanglement")
TRAVERSAL = np.linspace(-2.5, 2.5, 9)


def _model_params(t: Trained, j: int) -> Any:
    """Seed 0's parameters of grid point (model) ``j`` (leaves ``[S, H, ...]``)."""
    return jax.tree.map(lambda v: v[0, j], t.state.params)


def entries_of(config: SlowVAEConfig, trained: Mapping[str, Trained]) -> list[dict[str, Any]]:
    """One entry per ``model/transition``: the engine's per-grid-point summary of that transition."""
    out = []
    for transition, t in trained.items():
        for j, model in enumerate(config.model.models):
            summary = t.results["by_hparam"][j]
            out.append({"method": f"{model}/{transition}", "model": model, "transition": transition,
                        "loss_weights": {k: v[j] for k, v in t.results["hparams"].items()}, **summary})
    return out


def correlation_matrix(params: Any, image_size: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    """``[n_latents, n_factors]`` |Spearman| between posterior means and factors on ``n`` samples."""
    from scipy import stats  # here: every `jaxsparse run` imports this module, and scipy.stats takes ~0.4 s

    factors = _uniform_factors(np.random.default_rng(seed), n)
    codes = encoder(params, image_size)(factors)
    rho = stats.spearmanr(codes, factors).statistic[: codes.shape[1], codes.shape[1]:]
    return np.abs(np.nan_to_num(rho))


def traversal_images(params: Any, image_size: int, factors: np.ndarray | None = None) -> np.ndarray:
    """``[n_latents, len(TRAVERSAL), S, S]`` decoded images: latent ``i`` set to each traversal
    value, the others at the posterior mean of one sprite (a centred heart by default)."""
    f = np.asarray([[2, 3, 0, 16, 16]] if factors is None else factors, np.int32)
    mean, _ = vae.encode(params, sprites.render(f, image_size=image_size))
    n = mean.shape[-1]
    z = jnp.tile(mean[0], (n, len(TRAVERSAL), 1))
    z = z.at[jnp.arange(n), :, jnp.arange(n)].set(jnp.asarray(TRAVERSAL, z.dtype))
    return np.asarray(jax.nn.sigmoid(vae.decode(params, z))[..., 0])


def _traversal_figure(images: np.ndarray, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    n, k = images.shape[:2]
    fig, axes = plt.subplots(n, k, figsize=(0.8 * k, 0.8 * n), squeeze=False)
    for i in range(n):
        for c in range(k):
            axes[i, c].imshow(images[i, c], cmap="gray", vmin=0, vmax=1)
            axes[i, c].set_xticks([]), axes[i, c].set_yticks([])
        axes[i, 0].set_ylabel(f"z{i}", rotation=0, labelpad=12, fontsize=8)
    for c in range(k):
        axes[-1, c].set_xlabel(f"{TRAVERSAL[c]:+.1f}", fontsize=7)
    fig.suptitle(title)
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)


def _figures(config: SlowVAEConfig, trained: Mapping[str, Trained], figures: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size, seed = config.data.image_size, config.train.seed_values[0]
    names, mats = [], {}
    models = [(f"{model}/{transition}", _model_params(t, j))
              for transition, t in trained.items() for j, model in enumerate(config.model.models)]
    for method, params in models:
        mats[method] = correlation_matrix(params, size)
        name = f"traversals_{method.replace('/', '_')}.png"
        _traversal_figure(traversal_images(params, size), f"{method} (seed {seed}): latent traversals",
                          figures / name)
        names.append(name)
    fig, axes = plt.subplots(1, len(mats), figsize=(3.2 * len(mats), 3.6), squeeze=False)
    for ax, (method, mat) in zip(axes[0], mats.items()):
        im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(len(sprites.FACTOR_NAMES)), sprites.FACTOR_NAMES, rotation=45, fontsize=7)
        ax.set_yticks(range(mat.shape[0]), [f"z{i}" for i in range(mat.shape[0])], fontsize=7)
        ax.set_title(method, fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="|Spearman ρ|")
    fig.savefig(figures / "correlations.png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return names + ["correlations.png"]


def headline(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per transition with both models, for each headline score: the per-seed paired differences
    SlowVAE − β-VAE, their mean and std (ddof=1), and a verdict: the model that wins on every seed,
    or ``"tie"`` when the sign flips between seeds."""
    by = {e["method"]: e for e in entries}
    out = {}
    for e in entries:
        other = by.get(f"betavae/{e['transition']}")
        if e["model"] != "slowvae" or other is None:
            continue
        row = {}
        for k in HEADLINE:
            if k not in e["mean"]:
                continue
            diffs = np.asarray([a[k] - b[k] for a, b in zip(e["per_seed"], other["per_seed"])])
            verdict = "slowvae" if np.all(diffs > 0) else "betavae" if np.all(diffs < 0) else "tie"
            row[k] = {"per_seed": diffs.tolist(), "mean": float(diffs.mean()),
                      "std": float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0, "verdict": verdict}
        out[e["transition"]] = row
    return out


def analyze(config: SlowVAEConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Every method's scores, the SlowVAE − β-VAE headline, ``results.md`` and ``figures/``."""
    entries = entries_of(config, trained)
    results = {"seeds": config.train.seed_values, "steps": config.train.steps,
               "image_size": config.data.image_size, "headline": headline(entries), "methods": entries}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        results["figures"] = _figures(config, trained, figures)
        table = methods_table(entries)
        (run_dir / "results.md").write_text(f"# slowvae: {config.train.steps} steps, {config.data.image_size}px, "
                                            f"seeds {config.train.seed_values}\n\n{table}")
        if progress:
            print(table)
    return results

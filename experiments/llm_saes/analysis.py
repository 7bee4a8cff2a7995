"""Scores of ``llm-saes``: FVU, L0, dead latents, FLOPs, SAE+ITO, and the 2AFC index of snippets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse import eval as metrics
from jaxsparse import solvers
from jaxsparse.experiments.llm_saes import store as store_lib
from jaxsparse.experiments.llm_saes.config import LLMSAEConfig
from jaxsparse.experiments.llm_saes.tasks import code_scores, data, encoder_specs
from jaxsparse.losses import lasso_lam
from jaxsparse.models import bert
from jaxsparse.train import Trained, rundir

EMBED_BATCH = 64


def snippet_embeddings(config: LLMSAEConfig, documents: list[str], positions: np.ndarray) -> np.ndarray:
    """MiniLM sentence embeddings ``[n, 384]`` of the snippets of ``positions`` (the stimuli of the index)."""
    params, cfg, tok = store_lib.minilm()
    texts = store_lib.snippets(documents, positions, max_length=config.max_length, window=config.window)
    embed = jax.jit(lambda p, ids, mask: bert.sentence_embedding(p, cfg, ids, mask))
    out = []
    for lo in range(0, len(texts), EMBED_BATCH):
        ids, mask = bert.encode(tok, texts[lo:lo + EMBED_BATCH], max_length=4 * config.window + 8)
        out.append(np.asarray(embed(params, jnp.asarray(ids), jnp.asarray(mask))))
    return np.concatenate(out)


def index_of(key: jax.Array, units: np.ndarray, stimuli: np.ndarray, config: LLMSAEConfig) -> tuple[float, int]:
    """Mean 2AFC index (cosine of snippet embeddings) over ``n_scored`` random live units, and the number
    of live units (std > 0 over the stimuli)."""
    live = np.flatnonzero(units.std(axis=0) > 0)
    if live.size == 0:
        return float("nan"), 0
    k_pick, k_index = jax.random.split(key)
    picked = np.asarray(jax.random.permutation(k_pick, live))[:config.n_scored]
    index = metrics.two_afc_index(k_index, units[:, picked], stimuli, metrics.cosine_similarity,
                                  n_trials=config.n_trials, n_refs=config.n_refs)
    return float(np.mean(np.asarray(index))), int(live.size)


def ito_codes(config: LLMSAEConfig, params, x: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """SAE+ITO: non-negative FISTA on the SAE's learned decoder from the SAE's codes, minimising
    ``0.5 ||x - b_dec - z D||^2 + lam' ||z||_1`` with ``lam'`` the per-sample form of the training weight."""
    dictionary = params["decoder"]["w"]
    n, m = dictionary.shape
    lam = lasso_lam(config.lam, n, m)
    run = jax.jit(lambda dct, x, z0: solvers.fista(dct, x, lam=lam, n_iter=config.ito_iters, nonneg=True, init=z0))
    return np.asarray(run(dictionary, jnp.asarray(x - np.asarray(params["decoder"]["b"])), jnp.asarray(z0)))


def analyze(config: LLMSAEConfig, trained: dict[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """The encoder table (per seed, then mean ± std) and its figure."""
    d = data(config, progress)
    x = d.store.rows(d.eval_rows) / np.float32(d.scale)
    m = d.store.d
    n = config.expansion * m
    stim = np.linspace(0, len(d.eval_rows) - 1, config.n_stimuli).round().astype(np.int64)
    positions = d.store.positions(d.eval_rows[stim])
    stimuli = snippet_embeddings(config, d.documents, positions)
    seeds = config.train.seed_values
    runs = []
    for i, seed in enumerate(seeds):
        key = jax.random.fold_in(jax.random.key(seed), 11)
        row: dict[str, Any] = {"seed": seed}
        rand = np.asarray(jax.random.normal(jax.random.fold_in(key, 0), (m, config.n_scored)))
        row["neurons_index"], _ = index_of(jax.random.fold_in(key, 1), x[stim], stimuli, config)
        row["random_index"], _ = index_of(jax.random.fold_in(key, 2), x[stim] @ rand, stimuli, config)
        for j, (label, family, encoder, kw) in enumerate(encoder_specs(config)):
            t = trained[label]
            params = jax.tree.map(lambda a: a[i], t.state.params)
            z = np.asarray(jax.jit(encoder.apply)(params["encoder"], x))
            row.update({f"{label}_{k}": v for k, v in t.results["per_seed"][i].items() if k in ("fvu", "l0",
                                                                                             "dead_fraction")})
            row[f"{label}_index"], row[f"{label}_live"] = index_of(jax.random.fold_in(key, 10 + j), z[stim], stimuli,
                                                                   config)
            if family == "sae":
                z_ito = ito_codes(config, params, x, z)
                row.update({f"SAE+ITO_{k}": v for k, v in code_scores(x, z_ito, params["decoder"]).items()})
                row["SAE+ITO_index"], row["SAE+ITO_live"] = index_of(jax.random.fold_in(key, 99), z_ito[stim],
                                                                     stimuli, config)
        runs.append(row)
    summary = rundir.summarize(runs, keys=("seed",))
    flops = {}
    for label, family, _, kw in encoder_specs(config):
        flops[label] = metrics.flops(family, n_latents=n, n_features=m, **kw)
        if family == "sae":  # SAE+ITO: the SAE's codes, then FISTA on its decoder
            flops["SAE+ITO"] = flops[label] + metrics.flops("fista", n_latents=n, n_features=m,
                                                            n_iter=config.ito_iters, nonneg=True)
    train_s = {label: t.results["timing"]["train_s"] for label, t in trained.items()}
    manifest = d.store.manifest
    results = {"seeds": seeds, "store": str(d.store.directory), "n_tokens": d.store.n, "n_train_tokens": d.n_train_rows,
               "text_source": manifest["text_source"], "n_documents": manifest["n_documents"], "scale": d.scale,
               "flops_per_token": flops, "train_s": train_s, **summary}
    if rundir.is_writer():
        text = _markdown(config, results)
        (run_dir / "results.md").write_text(text)
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        results["figures"] = [_figure(results, figures / "fvu_index.png")]
        if progress:
            print(text)
    return json.loads(json.dumps(results))


def _labels(results: dict[str, Any]) -> list[str]:
    return list(results["flops_per_token"])


def _markdown(config: LLMSAEConfig, results: dict[str, Any]) -> str:
    mean, std = results["mean"], results["std"]

    def cell(k, fmt=".3f"):
        return f"{mean[k]:{fmt}} ± {std[k]:{fmt}}" if k in mean else "–"

    lines = [f"# llm-saes: MiniLM layer {config.layer}, {results['n_tokens']:,} tokens "
             f"({results['n_train_tokens']:,} for training) from {results['text_source']}", "",
             f"{config.expansion * 384} latents, {config.train.steps} Adam steps of {config.batch_size} tokens, "
             f"lam {config.lam}; held-out {config.n_eval} tokens; seeds {results['seeds']} (mean ± std, ddof=1). "
             f"2AFC index: {config.n_scored} random live latents, snippets of ±{config.window} tokens embedded by "
             f"MiniLM, cosine similarity ({config.n_trials} trials, {config.n_refs} refs; chance 0.5).", "",
             "| method | FVU | L0 | dead fraction | 2AFC index | FLOPs/token | train s |", "|---|---|---|---|---|---|---|"]
    for label in _labels(results):
        lines.append(f"| {label} | {cell(label + '_fvu')} | {cell(label + '_l0', '.1f')} | "
                     f"{cell(label + '_dead_fraction')} | {cell(label + '_index')} | "
                     f"{results['flops_per_token'][label]:,} | "
                     + (f"{results['train_s'][label]:.0f} |" if label in results["train_s"] else "– |"))
    lines += [f"| residual dimensions | – | – | – | {cell('neurons_index')} | – | – |",
              f"| random directions | – | – | – | {cell('random_index')} | – | – |", "",
              "![FVU and index](figures/fvu_index.png)", ""]
    return "\n".join(lines)


def _figure(results: dict[str, Any], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for label in _labels(results):
        xs = [r[f"{label}_l0"] for r in results["per_seed"]]
        axes[0].scatter(xs, [r[f"{label}_fvu"] for r in results["per_seed"]], label=label, s=20)
        axes[1].scatter([results["flops_per_token"][label]] * len(xs), [r[f"{label}_index"] for r in results["per_seed"]],
                        label=label, s=20)
    axes[0].set_xlabel("L0 (held out)")
    axes[0].set_ylabel("FVU (held out)")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("inference FLOPs per token")
    axes[1].set_ylabel("2AFC index")
    axes[1].axhline(results["mean"]["neurons_index"], color="grey", ls=":", lw=0.8, label="residual dims")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name

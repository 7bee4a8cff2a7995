"""Run every regime and method of the amortisation-gap experiment, score them, write the run directory."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.amortisation_gap import methods as ms
from experiments.amortisation_gap.config import AmortisationGapConfig
from jaxsparse import eval as metrics
from jaxsparse import solvers
from jaxsparse.eval import flops
from jaxsparse.models import sparse_coding as sc
from jaxsparse.train import rundir

Method = ms.Method


def _sizes(config: AmortisationGapConfig) -> dict[str, int]:
    return {"n_latents": config.data.n_latents, "n_features": config.data.n_features}


def _log(progress: bool, text: str) -> None:
    if progress:
        print(f"[amortisation-gap] {text}", flush=True)


def encoder_methods(config: AmortisationGapConfig, regime: str, sources: dict, progress: bool = False
                    ) -> tuple[list[Method], dict]:
    """Train every configured encoder in ``regime``; returns the methods and ``{label: params}``."""
    n_steps = config.train.steps if regime == "unknown" else config.methods.steps_known
    out, trained = [], {}
    for label, kind, encoder, kw in ms.encoder_specs(config, regime):
        params, _, train_s = ms.train(ms.encoder_task(config, regime, encoder), config, n_steps)
        _log(progress, f"{regime}: {label} trained ({n_steps} steps, {train_s:.1f} s)")
        codes, infer_s = ms.timed(ms.per_seed(lambda p, x: encoder.apply(p["encoder"], x)), params, sources["x_test"])
        dictionary = params["decoder"]["w"] if regime == "unknown" else sources["dictionary"]
        out.append(Method(
            regime, label, "encoder", codes, dictionary,
            flops(kind, **_sizes(config), **kw),
            flops(kind, **_sizes(config), **kw, phase="training", n_samples=config.data.n_train, n_steps=n_steps,
                  learn_decoder=regime == "unknown"),
            train_s, infer_s, regime == "unknown"))
        trained[label] = params
    return out, trained


def solver_methods(config: AmortisationGapConfig, regime: str, sources: dict, dictionary: jax.Array, prefix: str, *,
                   training_flops: int, train_s: float, learned: bool, adam: bool = True, warm: Method | None = None,
                   exact: bool = True) -> list[Method]:
    """Inference on a fixed ``dictionary [S, N, M]``: the paper's Adam code fit, FISTA budgets, OMP, homotopy.

    With ``warm``, FISTA starts from that encoder's codes and its inference FLOPs are added.
    Lasso weight: :func:`jaxsparse.models.sparse_coding.lasso_lam` (the paper's objective per sample).
    """
    m, n = config.methods, config.data.n_latents
    lam = sc.lasso_lam(m.lam, n, config.data.n_features)
    decode = flops("matmul", **_sizes(config))
    x = sources["x_test"]
    out = []

    def add(name, family, fn, args, inference_flops):
        codes, infer_s = ms.timed(ms.per_seed(fn), *args)
        out.append(Method(regime, name, family, codes, dictionary, inference_flops, training_flops, train_s, infer_s,
                          learned))

    if adam:
        add(f"{prefix}Adam-{m.code_steps}", "adam",
            partial(sc.fit_codes, lam=m.lam, n_steps=m.code_steps, lr=m.code_lr), (dictionary, x),
            flops("adam_codes", **_sizes(config), n_iter=m.code_steps))
    for t in m.fista_iters:
        if warm is None:
            add(f"{prefix}FISTA-{t}", "fista", partial(solvers.fista, lam=lam, n_iter=t, nonneg=True),
                (dictionary, x), flops("fista", **_sizes(config), n_iter=t, nonneg=True) + decode)
        else:
            add(f"{prefix}FISTA-{t} (warm)", "fista-warm",
                lambda d, x, z0, t=t: solvers.fista(d, x, lam=lam, n_iter=t, nonneg=True, init=z0),
                (dictionary, x, warm.codes),
                flops("fista", **_sizes(config), n_iter=t, nonneg=True) + decode + warm.inference_flops)
    if exact and warm is None:
        add(f"{prefix}OMP-{config.data.k}", "omp", partial(solvers.omp, k=config.data.k), (dictionary, x),
            flops("omp", **_sizes(config), k=config.data.k) + decode)
        add(f"{prefix}homotopy", "homotopy", partial(solvers.homotopy, lam=lam, nonneg=True), (dictionary, x), None)
    return out


def regime_methods(config: AmortisationGapConfig, regime: str, sources: dict, progress: bool = False) -> list[Method]:
    """All methods of one regime (see the package docstring)."""
    encs, trained = encoder_methods(config, regime, sources, progress)
    if regime == "known_z":
        return encs
    if regime == "known_d":
        return encs + solver_methods(config, regime, sources, sources["dictionary"], "true D + ", training_flops=0,
                                     train_s=0.0, learned=False)
    out = list(encs)
    # Sparse coding: codes and dictionary learned jointly, test codes by Adam (paper) and by solvers.
    params, _, train_s = ms.train(ms.sparse_coding_task(config), config, config.train.steps)
    _log(progress, f"{regime}: sparse coding trained ({config.train.steps} steps, {train_s:.1f} s)")
    sc_train = flops("adam_codes", **_sizes(config), n_iter=1, phase="training", n_samples=config.data.n_train,
                     n_steps=config.train.steps)
    out += solver_methods(config, regime, sources, params["decoder"]["w"], "SC: ", training_flops=sc_train,
                          train_s=train_s, learned=True)
    if config.methods.dl_iters:
        out += dictionary_learning_methods(config, sources, progress)
    sae = next((e for e in encs if e.name == "SAE"), None)
    if sae is not None:  # SAE+ITO: the SAE's decoder frozen; Adam from scratch (paper) or FISTA warm-started.
        out += solver_methods(config, regime, sources, sae.dictionary, "SAE+ITO: ", training_flops=sae.training_flops,
                              train_s=sae.train_s, learned=True)
        out += solver_methods(config, regime, sources, sae.dictionary, "SAE+", training_flops=sae.training_flops,
                              train_s=sae.train_s, learned=True, adam=False, warm=sae)
    return out


def dictionary_learning_methods(config: AmortisationGapConfig, sources: dict, progress: bool = False) -> list[Method]:
    """Our batch dictionary learning (FISTA + block-coordinate updates) on the peers' objective, for all
    seeds in one vmapped program; test codes by the same solvers as the other dictionaries."""
    from jaxsparse.models.dictionary_learning import learn_dictionary

    m, d = config.methods, config.data
    learn = partial(learn_dictionary, n_latents=d.n_latents, lam=m.peer_lam, n_iter=m.dl_iters, inner_iter=m.dl_inner)
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.key(s), 3))(ms.seeds_of(config))
    (dictionary, _), train_s = ms.timed(ms.per_seed(learn), keys, sources["x"])
    _log(progress, f"unknown: dictionary learning ({m.dl_iters} x FISTA-{m.dl_inner} + BCD, {train_s:.1f} s)")
    train_flops = flops("alternating", **_sizes(config), n_iter=m.dl_inner, phase="training", n_samples=d.n_train,
                        n_steps=m.dl_iters)
    return solver_methods(config, "unknown", sources, dictionary, "DL: ", training_flops=train_flops, train_s=train_s,
                          learned=True)


def score(method: Method, sources_host: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """Per-seed test scores: latent MCC, dictionary MCC (learned dictionaries), FVU, L0."""
    codes, dictionary = np.asarray(method.codes), np.asarray(method.dictionary)
    rows = []
    for s in range(codes.shape[0]):
        x_test, z_test = sources_host["x_test"][s], sources_host["z_test"][s]
        row = {"mcc": metrics.mcc(z_test, codes[s])["mcc"],
               "fvu": metrics.fvu(x_test, codes[s] @ dictionary[s]),
               "l0": metrics.l0(np.where(np.abs(codes[s]) > 1e-3, codes[s], 0.0))}
        if method.learned_dictionary:
            row["dictionary_mcc"] = metrics.dictionary_mcc(sources_host["dictionary"][s], dictionary[s])["mcc"]
        rows.append(row)
    return rows


def summarise(method: Method, rows: list[dict[str, float]], seeds: list[int]) -> dict[str, Any]:
    """One results entry: per-seed scores, mean/std/min/max, FLOPs and wall times."""
    keys = rows[0].keys()
    stats = {stat: {k: float(fn([r[k] for r in rows])) for k in keys}
             for stat, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}
    return {"regime": method.regime, "method": method.name, "family": method.family,
            "inference_flops": method.inference_flops, "training_flops": method.training_flops,
            "train_s": method.train_s, "infer_s": method.infer_s,
            "runs": [{"seed": s, **r} for s, r in zip(seeds, rows)], **stats}


def run(config: AmortisationGapConfig, out_dir: str | Path, *, overwrite: bool = False, resume: bool = False,
        progress: bool = True) -> dict[str, Any]:
    """The experiment: every regime and method for all seeds; writes results.json, results.md, figures/.

    ``resume`` re-runs from scratch (nothing is checkpointed: the default run takes minutes).
    """
    from experiments.amortisation_gap import peers, report
    from jaxsparse.train.config import to_dict

    out_dir = Path(out_dir)
    if not resume:
        rundir.check_new(out_dir, overwrite=overwrite)
    rundir.create(out_dir)
    rundir.write_json(out_dir / rundir.CONFIG, {"experiment": "amortisation-gap", "module": "experiments.amortisation_gap",
                                                "config": to_dict(config)})
    t0 = time.perf_counter()
    sources = ms.sources_of(config)
    host = jax.tree.map(np.asarray, sources)
    seeds = config.train.seed_values
    entries = []
    for regime in config.methods.regimes:
        t_regime = time.perf_counter()
        for method in regime_methods(config, regime, sources, progress):
            entries.append(summarise(method, score(method, host), seeds))
        _log(progress, f"{regime}: done, {time.perf_counter() - t_regime:.1f} s")
    if config.methods.peers and "unknown" in config.methods.regimes:
        entries += peers.run_peers(config, host, progress=progress)
    results = {"experiment": "amortisation-gap", "seeds": seeds, "n_test": config.data.n_test, "wall_s": time.perf_counter() - t0,
               "devices": f"{jax.device_count()} x {jax.devices()[0].platform}", "methods": entries,
               **report.headline(entries)}
    rundir.write_json(out_dir / rundir.RESULTS, results)
    table = report.write(out_dir, results)
    if progress:
        print(table)
    return results

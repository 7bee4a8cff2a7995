"""The amortisation-gap analysis: inference on the trained models, scores, tables and figures.

Nothing here trains: every trained model comes from the engine (``trained[method].state``). For all
seeds at once (leading seed axis ``S``) each method yields test codes ``[S, n_test, N]``, the
dictionary it decodes with ``[S, N, M]``, its inference FLOPs per sample and training FLOPs
(``jaxsparse.eval.flops``) and its wall times (steady state, with compilation timed apart).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxsparse.experiments.amortisation_gap import report
from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig
from jaxsparse.experiments.amortisation_gap.tasks import code_scores, encoder_specs, learned_dictionary, training_flops
from jaxsparse import solvers
from jaxsparse.eval import flops
from jaxsparse.losses import lasso_lam
from jaxsparse.models import sparse_coding as sc
from jaxsparse.train import Trained, rundir


class Method(NamedTuple):
    """One method's outputs for all seeds.

    Attributes:
      regime, label: e.g. ``("unknown", "SAE+ITO: Adam-10000")``.  family: plot group (``encoder``,
        ``adam``, ``fista``, ``fista-warm``, ``omp``, ``homotopy``).
      codes: ``[S, n_test, N]`` test codes.  dictionary: ``[S, N, M]`` decoder used (learned or true).
      inference_flops: per sample (homotopy: the mean over test samples of the path each took).
        training_flops: in total (0 if none).
      train_s, compile_s, infer_s: steady-state training seconds (all seeds), compilation seconds
        (training + inference), steady-state inference seconds.
      learned_dictionary: whether ``dictionary`` was learned (scored by dictionary MCC).
      solver_info: what the solver reports about itself (homotopy: fractions converged and finished
        by the FISTA fallback, mean path steps), or ``None``.
    """

    regime: str
    label: str
    family: str
    codes: Any
    dictionary: Any
    inference_flops: int | None
    training_flops: int
    train_s: float
    compile_s: float
    infer_s: float
    learned_dictionary: bool
    solver_info: dict[str, float] | None = None


def _sizes(config: AmortisationGapConfig) -> dict[str, int]:
    return {"n_latents": config.data.n_latents, "n_features": config.data.n_features}


def timed(fn: Callable, *args, label: str = "", bar: Any = None, cache: dict | None = None,
          key: Any = None, sequential: bool = False) -> tuple[Any, float, float]:
    """``(jit(vmap(fn))(*args), steady-state seconds, compile seconds)`` over the leading seed axis.

    ``sequential``: ``lax.map`` over the seeds instead of ``vmap``, for solvers whose work depends on
    the data. Under ``vmap`` a ``lax.cond`` with a per-seed predicate becomes a select that runs both
    branches: the homotopy's FISTA fallback (500 iterations) ran for every seed although no sample
    needed it, 0.25 s per dictionary against 0.04 s seed by seed.

    ``bar``: a progress bar that shows ``label`` while it runs and counts it when done. With a
    ``cache`` dict and a hashable ``key`` naming ``fn``, the compiled program is kept under ``key``
    and the arguments' shapes and dtypes and reused by later calls (their compile seconds are 0): the
    solvers run on four dictionaries of one shape, and compiling each once saved about 90 s of the
    main job's inference (2.5 minutes then, on 2 CPU cores; 22 s now, 12 s of it compiling).
    """
    if bar is not None:
        bar.set_postfix_str(label)
    t0 = time.perf_counter()
    signature = None if cache is None else (key, sequential, tuple((a.shape, str(a.dtype)) for a in jax.tree.leaves(args)))
    program = None if cache is None else cache.get(signature)
    if program is None:
        over_seeds = (lambda *a: jax.lax.map(lambda one: fn(*one), a)) if sequential else jax.vmap(fn)
        program = jax.jit(over_seeds).lower(*args).compile()
        if cache is not None:
            cache[signature] = program
    t1 = time.perf_counter()
    out = jax.block_until_ready(program(*args))
    t2 = time.perf_counter()
    if bar is not None:
        bar.update()
    return out, t2 - t1, t1 - t0


def _timing(t: Trained) -> tuple[float, float]:
    timing = t.results.get("timing", {})
    return timing.get("train_s", 0.0), timing.get("compile_s", 0.0)


def encoder_methods(config: AmortisationGapConfig, regime: str, trained: Mapping[str, Trained], x: jax.Array,
                    bar: Any = None) -> list[Method]:
    """Every trained encoder of ``regime`` applied to the test signals ``x [S, B, M]``."""
    out, train_flops = [], training_flops(config)
    for label, kind, encoder, kw in encoder_specs(config, regime):
        t = trained[f"{regime}/{label}"]
        params = t.state.params
        codes, infer_s, compile_s = timed(lambda p, x: encoder.apply(p, x), params["encoder"], x,
                                          label=f"{regime}/{label}", bar=bar)
        dictionary = params["decoder"]["w"] if regime == "unknown" else t.sources["dictionary"]
        train_s, train_compile_s = _timing(t)
        out.append(Method(
            regime, label, "encoder", codes, dictionary, flops(kind, **_sizes(config), **kw),
            train_flops[f"{regime}/{label}"], train_s, train_compile_s + compile_s, infer_s, regime == "unknown"))
    return out


def _adam_codes(d, x, lam, *, n_steps, lr):
    return sc.fit_codes(d, x, lam=lam, n_steps=n_steps, lr=lr)


def _fista(d, x, lam, z0=None, *, n_iter):
    return solvers.fista(d, x, lam=lam, n_iter=n_iter, nonneg=True, init=z0)


def _omp(d, x, lam, *, k):
    return solvers.omp(d, x, k=k)


def _homotopy(d, x, lam):
    return solvers.homotopy(d, x, lam=lam, nonneg=True, return_info=True)


def solver_methods(config: AmortisationGapConfig, regime: str, x: jax.Array, dictionary: jax.Array, prefix: str, *,
                   lam: float, training_flops: int, train_s: float, compile_s: float, learned: bool, adam: bool = True,
                   warm: Method | None = None, exact: bool = True, bar: Any = None,
                   cache: dict | None = None) -> list[Method]:
    """Inference on a fixed ``dictionary [S, N, M]``: the paper's Adam code fit, FISTA budgets, OMP, homotopy.

    ``lam`` is the per-sample Lasso weight the dictionary was trained with (the Adam fit minimises
    the same objective in the paper's scaling, ``lam * 2N / M``). With ``warm``, FISTA starts from
    that encoder's codes and its inference FLOPs are added. ``lam`` enters the solvers as an array,
    so one compiled program per solver (kept in ``cache``) serves every dictionary and weight.
    """
    m, n, mf = config.methods, config.data.n_latents, config.data.n_features
    decode = flops("matmul", **_sizes(config))
    lams = jax.numpy.full((dictionary.shape[0],), lam, dictionary.dtype)
    out = []

    def run(name, fn, args, sequential=False):  # partials compare by identity: key them by function and keywords
        key = (fn.func, tuple(sorted(fn.keywords.items()))) if isinstance(fn, partial) else fn
        return timed(fn, *args, label=f"{regime}/{name}", bar=bar, cache=cache, key=key, sequential=sequential)

    def add(name, family, fn, args, inference_flops):
        codes, infer_s, solve_compile_s = run(name, fn, args)
        out.append(Method(regime, name, family, codes, dictionary, inference_flops, training_flops, train_s,
                          compile_s + solve_compile_s, infer_s, learned))

    if adam:
        add(f"{prefix}Adam-{m.code_steps}", "adam", partial(_adam_codes, n_steps=m.code_steps, lr=m.code_lr),
            (dictionary, x, lams * (2 * n / mf)), flops("adam_codes", **_sizes(config), n_iter=m.code_steps))
    for t in m.fista_iters:
        if warm is None:
            add(f"{prefix}FISTA-{t}", "fista", partial(_fista, n_iter=t), (dictionary, x, lams),
                flops("fista", **_sizes(config), n_iter=t, nonneg=True) + decode)
        else:
            add(f"{prefix}FISTA-{t} (warm)", "fista-warm", partial(_fista, n_iter=t), (dictionary, x, lams, warm.codes),
                flops("fista", **_sizes(config), n_iter=t, nonneg=True) + decode + warm.inference_flops)
    if exact and warm is None and m.exact_solvers:
        add(f"{prefix}OMP-{config.data.k}", "omp", partial(_omp, k=config.data.k), (dictionary, x, lams),
            flops("omp", **_sizes(config), k=config.data.k) + decode)
        # homotopy's cost depends on each sample's path: it reports the FLOPs it actually took
        name = f"{prefix}homotopy"
        (codes, info), infer_s, solve_compile_s = run(name, _homotopy, (dictionary, x, lams), sequential=True)
        report_ = {"converged_fraction": float(np.mean(info.converged)), "fallback_fraction": float(np.mean(info.fallback)),
                   "mean_path_steps": float(np.mean(info.path_steps))}
        out.append(Method(regime, name, "homotopy", codes, dictionary, int(np.mean(info.flops)) + decode, training_flops,
                          train_s, compile_s + solve_compile_s, infer_s, learned, report_))
    return out


def regime_methods(config: AmortisationGapConfig, regime: str, trained: Mapping[str, Trained], sources: dict,
                   bar: Any = None, cache: dict | None = None) -> list[Method]:
    """All methods of one regime (see the package docstring); ``cache`` keeps compiled solvers."""
    x = sources["x_test"]
    m, d = config.methods, config.data
    paper_lam = lasso_lam(m.lam, d.n_latents, d.n_features)
    encs = encoder_methods(config, regime, trained, x, bar)
    if regime == "known_z":
        return encs
    if regime == "known_d":
        return encs + solver_methods(config, regime, x, sources["dictionary"], "true D + ", lam=paper_lam,
                                     training_flops=0, train_s=0.0, compile_s=0.0, learned=False, bar=bar, cache=cache)
    train_flops = training_flops(config)

    def on_learned(name: str, lam: float) -> list[Method]:  # a learned dictionary with every solver, at its own weight
        t = trained[f"unknown/{name}"]
        train_s, compile_s = _timing(t)
        return solver_methods(config, regime, x, learned_dictionary(t.state.params), f"{name}: ", lam=lam,
                              training_flops=train_flops[f"unknown/{name}"], train_s=train_s, compile_s=compile_s,
                              learned=True, bar=bar, cache=cache)

    sc = on_learned("SC", paper_lam)  # SC is always trained
    ito = []
    sae = next((e for e in encs if e.label == "SAE"), None)
    if sae is not None:  # SAE+ITO: the SAE's decoder frozen; Adam from scratch (paper) or FISTA warm-started.
        kw = dict(lam=paper_lam, training_flops=sae.training_flops, train_s=sae.train_s, compile_s=sae.compile_s,
                  learned=True, bar=bar, cache=cache)
        ito = (solver_methods(config, regime, x, sae.dictionary, "SAE+ITO: ", **kw)
               + solver_methods(config, regime, x, sae.dictionary, "SAE+", adam=False, warm=sae, **kw))
    # DL last: it trains last (the cheapest method), and the analysis reads it only when it is done
    dl = on_learned("DL", m.dl_lam) if "unknown/DL" in trained else []
    return encs + sc + dl + ito


def entry(method: Method, host: dict[str, np.ndarray], seeds: list[int]) -> dict[str, Any]:
    """One ``methods`` entry of ``results.json``: per-seed test scores summarised
    (:func:`jaxsparse.train.rundir.summarize`, std with ddof=1), FLOPs and wall times."""
    codes, dictionary = np.asarray(method.codes), np.asarray(method.dictionary)
    rows = [{"seed": seed, **code_scores(codes[s], dictionary[s], jax.tree.map(lambda v: v[s], host),
                                         learned_dictionary=method.learned_dictionary)}
            for s, seed in enumerate(seeds)]
    return {"method": f"{method.regime}/{method.label}", "regime": method.regime, "label": method.label,
            "family": method.family, "inference_flops": method.inference_flops,
            "training_flops": method.training_flops,
            "timing": {"train_s": method.train_s, "compile_s": method.compile_s, "infer_s": method.infer_s},
            **({"solver_info": method.solver_info} if method.solver_info else {}), **rundir.summarize(rows)}


def analyze(config: AmortisationGapConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Inference-time methods on the trained models, every method scored on the test set, the
    headline summary, ``results.md`` and ``figures/``; returns the body of ``results.json``."""
    sources = next(iter(trained.values())).sources
    host = jax.tree.map(np.asarray, sources)
    seeds = config.train.seed_values
    entries = []
    cache: dict = {}  # compiled solvers, shared by the regimes' dictionaries
    with tqdm(desc="inference", unit="method", disable=not progress, dynamic_ncols=True) as bar:
        for regime in config.methods.regimes:
            entries += [entry(mth, host, seeds) for mth in regime_methods(config, regime, trained, sources, bar, cache)]
    results = {"seeds": seeds, "n_test": config.data.n_test,
               "devices": f"{jax.device_count()} x {jax.devices()[0].platform}",
               **report.headline(entries, seeds), "frontier": report.frontier(entries), "methods": entries}
    if rundir.is_writer():
        table = report.write(run_dir, results)
        if progress:
            print(table)
    return results

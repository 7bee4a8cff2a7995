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
from jaxsparse.train import Trained, as_completed, rundir


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
    the data, and for long loops whose state stays in cache only seed by seed (the Adam code fit:
    2.9 against 3.1 s on one core). Under ``vmap`` a ``lax.cond`` with a per-seed predicate becomes a select that runs both
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


def encoder_method(config: AmortisationGapConfig, regime: str, label: str, t: Trained, x: jax.Array,
                   bar: Any = None) -> Method:
    """The trained encoder ``<regime>/<label>`` applied to the test signals ``x [S, B, M]``."""
    _, kind, encoder, kw = next(spec for spec in encoder_specs(config, regime) if spec[0] == label)
    params = t.state.params
    codes, infer_s, compile_s = timed(lambda p, x: encoder.apply(p, x), params["encoder"], x,
                                      label=f"{regime}/{label}", bar=bar)
    dictionary = params["decoder"]["w"] if regime == "unknown" else t.sources["dictionary"]
    train_s, train_compile_s = _timing(t)
    return Method(regime, label, "encoder", codes, dictionary, flops(kind, **_sizes(config), **kw),
                  training_flops(config)[f"{regime}/{label}"], train_s, train_compile_s + compile_s, infer_s,
                  regime == "unknown")


def _adam_codes(d, x, lam, *, n_steps, lr):
    return sc.fit_codes(d, x, lam=lam, n_steps=n_steps, lr=lr)


def _fista(d, x, lam, z0, n_iter):  # n_iter traced: one compiled program serves every budget, cold or warm
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
    that encoder's codes and its inference FLOPs are added. ``lam`` and FISTA's budget enter the
    solvers as arrays (a cold FISTA starts from zeros given as its warm start), so one compiled
    program per solver (kept in ``cache``) serves every dictionary, weight and budget: 12 FISTA
    programs per run took 4-5 s of compiling before.
    """
    m, n, mf = config.methods, config.data.n_latents, config.data.n_features
    decode = flops("matmul", **_sizes(config))
    lams = jax.numpy.full((dictionary.shape[0],), lam, dictionary.dtype)
    out = []

    def run(name, fn, args, sequential=False):  # partials compare by identity: key them by function and keywords
        key = (fn.func, tuple(sorted(fn.keywords.items()))) if isinstance(fn, partial) else fn
        return timed(fn, *args, label=f"{regime}/{name}", bar=bar, cache=cache, key=key, sequential=sequential)

    def add(name, family, fn, args, inference_flops, sequential=False):
        codes, infer_s, solve_compile_s = run(name, fn, args, sequential)
        out.append(Method(regime, name, family, codes, dictionary, inference_flops, training_flops, train_s,
                          compile_s + solve_compile_s, infer_s, learned))

    if adam:
        add(f"{prefix}Adam-{m.code_steps}", "adam", partial(_adam_codes, n_steps=m.code_steps, lr=m.code_lr),
            (dictionary, x, lams * (2 * n / mf)), flops("adam_codes", **_sizes(config), n_iter=m.code_steps),
            sequential=True)  # seed by seed: each seed's codes stay in cache (2.9 against 3.1 s, one core)
    z0 = jax.numpy.zeros(x.shape[:-1] + (n,), x.dtype) if warm is None else warm.codes
    for t in m.fista_iters:
        budget = jax.numpy.full((dictionary.shape[0],), t, jax.numpy.int32)
        if warm is None:
            add(f"{prefix}FISTA-{t}", "fista", _fista, (dictionary, x, lams, z0, budget),
                flops("fista", **_sizes(config), n_iter=t, nonneg=True) + decode)
        else:
            add(f"{prefix}FISTA-{t} (warm)", "fista-warm", _fista, (dictionary, x, lams, z0, budget),
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


def true_dictionary_methods(config: AmortisationGapConfig, sources: dict, bar: Any = None,
                            cache: dict | None = None) -> list[Method]:
    """The known-D regime's solvers on the true dictionary (they need no trained model)."""
    lam = lasso_lam(config.methods.lam, config.data.n_latents, config.data.n_features)
    return solver_methods(config, "known_d", sources["x_test"], sources["dictionary"], "true D + ", lam=lam,
                          training_flops=0, train_s=0.0, compile_s=0.0, learned=False, bar=bar, cache=cache)


def trained_methods(config: AmortisationGapConfig, method: str, t: Trained, sources: dict, bar: Any = None,
                    cache: dict | None = None) -> list[Method]:
    """Everything inferred with the trained ``method`` (``"<regime>/<label>"``): an encoder's test codes
    (the unknown SAE's also with inference-time optimisation on its decoder), or every solver on a
    learned dictionary (``unknown/SC``, ``unknown/DL``) at the Lasso weight it was trained with."""
    regime, label = method.split("/", 1)
    x = sources["x_test"]
    m, d = config.methods, config.data
    paper_lam = lasso_lam(m.lam, d.n_latents, d.n_features)
    if regime == "unknown" and label in ("SC", "DL"):
        train_s, compile_s = _timing(t)
        return solver_methods(config, regime, x, learned_dictionary(t.state.params), f"{label}: ",
                              lam=paper_lam if label == "SC" else m.dl_lam,
                              training_flops=training_flops(config)[method], train_s=train_s, compile_s=compile_s,
                              learned=True, bar=bar, cache=cache)
    enc = encoder_method(config, regime, label, t, x, bar)
    if regime != "unknown" or label != "SAE":
        return [enc]
    # SAE+ITO: the SAE's decoder frozen; Adam from scratch (paper) or FISTA warm-started.
    kw = dict(lam=paper_lam, training_flops=enc.training_flops, train_s=enc.train_s, compile_s=enc.compile_s,
              learned=True, bar=bar, cache=cache)
    return [enc, *solver_methods(config, regime, x, enc.dictionary, "SAE+ITO: ", **kw),
            *solver_methods(config, regime, x, enc.dictionary, "SAE+", adam=False, warm=enc, **kw)]


ITO = "unknown/SAE+ITO"  # the rows of inference-time optimisation on the unknown SAE's decoder


def table_blocks(config: AmortisationGapConfig) -> dict[str, list[str]]:
    """``{regime: its blocks of the results table, in order}``: its encoders, then the known-D
    regime's solvers on the true dictionary (``"true D"``), or the unknown regime's solvers on SC's
    and DL's dictionaries and on the SAE's (:data:`ITO`)."""
    blocks = {}
    for regime in config.methods.regimes:
        labels = [label for label, *_ in encoder_specs(config, regime)]
        blocks[regime] = [f"{regime}/{label}" for label in labels]
        if regime == "known_d":
            blocks[regime].append("true D")
        if regime == "unknown":
            blocks[regime] += ["unknown/SC"] + (["unknown/DL"] if config.methods.dl_iters else []) + (
                [ITO] if "SAE" in labels else [])
    return blocks


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
    headline summary, ``results.md`` and ``figures/``; returns the body of ``results.json``.

    Each trained method is analysed as soon as it is trained (:func:`jaxsparse.train.as_completed`),
    the true dictionary's solvers once the first one is (its test set comes with every method), and
    a regime's figures are drawn once its last method is, so that with the methods training in
    worker processes only the last method's inference and figures are left when training ends. The
    wall times in the table are measured beside that training.
    """
    seeds = config.train.seed_values
    blocks = table_blocks(config)
    rows: dict[str, list[dict[str, Any]]] = {}  # table block -> its entries
    drawn: list[str] = []  # regimes whose figures are drawn
    cache: dict = {}  # compiled solvers, shared by the regimes' dictionaries
    sources = host = None
    with tqdm(desc="inference", unit="method", disable=not progress, dynamic_ncols=True) as bar:
        for method in as_completed(trained):
            t = trained[method]
            if sources is None:
                sources, host = t.sources, jax.tree.map(np.asarray, t.sources)
                if "known_d" in config.methods.regimes:
                    rows["true D"] = [entry(m, host, seeds) for m in true_dictionary_methods(config, sources, bar, cache)]
            found = [entry(m, host, seeds) for m in trained_methods(config, method, t, sources, bar, cache)]
            if method == "unknown/SAE":
                found, rows[ITO] = found[:1], found[1:]
            rows[method] = found
            for regime, keys in blocks.items():
                if regime not in drawn and all(k in rows for k in keys) and rundir.is_writer():
                    report.regime_figures(run_dir / rundir.FIGURES, regime, [r for k in keys for r in rows[k]],
                                          config.data.n_test)
                    drawn.append(regime)
    entries = [row for keys in blocks.values() for key in keys for row in rows[key]]
    results = {"seeds": seeds, "n_test": config.data.n_test,
               "devices": f"{jax.device_count()} x {jax.devices()[0].platform}",
               **report.headline(entries, seeds), "frontier": report.frontier(entries), "methods": entries}
    if rundir.is_writer():
        table = report.write(run_dir, results, drawn=tuple(drawn))
        if progress:
            print(table)
    return results

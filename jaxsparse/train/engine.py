"""The trainer every experiment shares: a sharded multi-seed sweep into a run directory.

``fit`` runs chunks of ``train.checkpoint_every`` steps (one jitted ``lax.scan`` each, vmapped
over seeds), logs metrics, checks the loss is finite, checkpoints, and finally scores every run.
``fit(..., resume=True)`` restores the latest good checkpoint and continues bit-identically:
chunk boundaries are multiples of ``checkpoint_every`` and batches depend only on the step, so
the resumed run executes the same compiled programs on the same inputs.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxsparse.train import checkpoint as ckpt
from jaxsparse.train import config as cfg
from jaxsparse.train import registry, rundir
from jaxsparse.train.step import TrainState
from jaxsparse.train.sweep import Sweep, Task, build_sweep, n_hparams, to_host

PyTree = Any


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the step and the seed."""


class ConfigMismatch(cfg.ConfigError):
    """``resume`` was given a config that differs from the saved one."""


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _run_ids(train: cfg.TrainConfig, h: int | None) -> list[dict[str, int]]:
    """Identifiers of the runs in ``[S(, H)]`` order."""
    if h is None:
        return [{"seed": s} for s in train.seed_values]
    return [{"seed": s, "hparam": j} for s in train.seed_values for j in range(h)]


def _flat_runs(x: np.ndarray, h: int | None) -> np.ndarray:
    """``[S(, H), ...]`` -> ``[S*H, ...]``."""
    return x if h is None else x.reshape((-1,) + x.shape[2:])


def _first_nonfinite(loss: np.ndarray) -> int | None:
    """Index (in the chunk) of the first step whose loss is not finite in some run; ``loss: [runs, n]``."""
    bad = ~np.isfinite(loss)
    if not bad.any():
        return None
    return int(np.argmax(bad.any(axis=0)))


def _log_rows(metrics: dict[str, np.ndarray], ids: list[dict[str, int]], start: int, upto: int, train: cfg.TrainConfig):
    """Rows for logged steps among ``start+1 .. start+upto`` (``metrics`` leaves ``[runs, n]``)."""
    rows = []
    for i in range(upto):
        step = start + i + 1
        if step % train.log_every and step != train.steps:
            continue
        for r, run in enumerate(ids):
            rows.append({"step": step, **run, **{k: float(v[r, i]) for k, v in metrics.items()}})
    return rows


def _header(exp: registry.Experiment, config: Any) -> dict[str, Any]:
    import jaxsparse

    return {
        "experiment": exp.name,
        "module": exp.module,
        "config": cfg.to_dict(config),
        "versions": {"jaxsparse": jaxsparse.__version__, "jax": jax.__version__},
    }


@functools.lru_cache(maxsize=8)
def compiled(exp: registry.Experiment, config: Any) -> tuple[Task, Sweep]:
    """The task and sharded sweep of ``config``, cached: restoring or re-running the same frozen
    config in one process reuses the compiled programs instead of compiling them again."""
    task = exp.build(config)
    return task, build_sweep(task, config.train.seed_values)


def load_config(run_dir: str | os.PathLike) -> tuple[registry.Experiment, Any]:
    """The experiment and the resolved config saved in ``run_dir/config.json``."""
    saved = rundir.read_json(Path(run_dir) / rundir.CONFIG)
    exp = registry.get(saved["experiment"], module=saved.get("module"))
    return exp, cfg.from_dict(exp.config_cls, saved["config"])


def fit(
    experiment: registry.Experiment | str,
    config: Any,
    run_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train every seed of ``config.train`` as one sharded program; write the run directory.

    Args:
      experiment: a registered :class:`~jaxsparse.train.registry.Experiment` or its name.
      config: the experiment's frozen config (``None`` with ``resume=True``: the saved one).
      run_dir: ``runs/<experiment>/<name>``.
      overwrite: replace an existing run directory (otherwise it is refused).
      resume: continue the run in ``run_dir`` from its latest good checkpoint; ``config`` must
        equal the saved one (the differing fields are listed otherwise).
      progress: show a progress bar (step, loss, steps/s) on process 0.
    Returns:
      the contents of ``results.json``.
    Raises:
      RunDirError, ConfigMismatch, TrainingDiverged (last good checkpoint kept).
    """
    exp = registry.get(experiment) if isinstance(experiment, str) else experiment
    run_dir = Path(run_dir)
    if resume:
        saved_exp, saved = load_config(run_dir)
        if saved_exp.name != exp.name:
            raise ConfigMismatch(f"{run_dir} holds experiment {saved_exp.name!r}, not {exp.name!r}")
        if config is not None and (differences := cfg.diff(saved, config)):
            raise ConfigMismatch(
                f"cannot resume {run_dir}: the config differs from the saved one in\n  " + "\n  ".join(differences)
            )
        config = saved
    else:
        rundir.check_new(run_dir, overwrite=overwrite)
        _barrier("jaxsparse-checked")
        rundir.create(run_dir)
        _barrier("jaxsparse-created")
        rundir.write_json(run_dir / rundir.CONFIG, _header(exp, config))
    train: cfg.TrainConfig = config.train
    task, sweep = compiled(exp, config)
    states, sources = sweep.init()
    mgr = ckpt.manager(run_dir / rundir.CHECKPOINTS, train)
    try:
        start = 0
        if resume and mgr.all_steps():
            start, states = ckpt.restore_latest(mgr, sweep.abstract_state())
            rundir.truncate_metrics(run_dir / rundir.METRICS, start)
        elif resume:
            rundir.truncate_metrics(run_dir / rundir.METRICS, 0)
        states = _train(task, sweep, states, sources, train, mgr, run_dir, start, progress)
    finally:
        mgr.close()
    _barrier("jaxsparse-trained")
    results = score(task, train, states, sources, final_metrics=_final_metrics(run_dir, train.steps))
    rundir.write_json(run_dir / rundir.RESULTS, {"experiment": exp.name, "step": train.steps, **results})
    _barrier("jaxsparse-results")
    return results


def _train(task: Task, sweep: Sweep, states: TrainState, sources: PyTree, train: cfg.TrainConfig, mgr, run_dir: Path,
           start: int, progress: bool) -> TrainState:
    """The chunk loop of :func:`fit` from step ``start``."""
    from tqdm.auto import tqdm

    h = n_hparams(task)
    ids = _run_ids(train, h)
    log = rundir.MetricsLog(run_dir / rundir.METRICS)
    bar = tqdm(total=train.steps, initial=start, unit="step", disable=not (progress and rundir.is_writer()),
               dynamic_ncols=True)
    step, last_saved, t0 = start, (max(mgr.all_steps()) if mgr.all_steps() else None), time.perf_counter()
    try:
        while step < train.steps:
            n = min(train.checkpoint_every - step % train.checkpoint_every, train.steps - step)
            new_states, metrics = sweep.chunk(n)(states, sources, start=step)
            metrics = {k: _flat_runs(np.asarray(v), h) for k, v in to_host(metrics).items()}
            if train.best_metric not in metrics:
                raise cfg.ConfigError(f"`train.best_metric` {train.best_metric!r} is not a logged metric {sorted(metrics)}")
            bad = _first_nonfinite(metrics["loss"])
            if bad is not None:
                log.write(_log_rows(metrics, ids, step, bad, train))
                r = int(np.argmax(~np.isfinite(metrics["loss"][:, bad])))
                where = ", ".join(f"{k} {v}" for k, v in ids[r].items())
                kept = (f"the last good checkpoint (step {last_saved}) is kept in {run_dir / rundir.CHECKPOINTS}"
                        if last_saved is not None else "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"non-finite loss ({metrics['loss'][r, bad]}) at step {step + bad + 1} for {where}; "
                    f"training stopped; {kept}"
                )
            log.write(_log_rows(metrics, ids, step, n, train))
            states, step = new_states, step + n
            ckpt.save(mgr, states, step=step, metrics={train.best_metric: float(np.mean(metrics[train.best_metric][:, -1]))})
            last_saved = step
            bar.update(n)
            bar.set_postfix(loss=f"{np.mean(metrics['loss'][:, -1]):.4g}",
                            steps_per_s=f"{(step - start) / (time.perf_counter() - t0):.0f}")
    finally:
        bar.close()
        log.close()
    return states


def _final_metrics(run_dir: Path, step: int) -> dict[tuple, dict[str, float]]:
    """The training metrics logged at ``step``, keyed by ``(seed, hparam)``, prefixed ``train_``."""
    rows = rundir.read_metrics(run_dir / rundir.METRICS)
    skip = ("step", "seed", "hparam")
    return {(r["seed"], r.get("hparam")): {f"train_{k}": v for k, v in r.items() if k not in skip}
            for r in rows if r["step"] == step}


def score(
    task: Task,
    train: cfg.TrainConfig,
    states: TrainState,
    sources: PyTree,
    *,
    final_metrics: dict[tuple, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Final scores of every run: ``task.evaluate(params, source)`` per run, plus mean and spread.

    ``final_metrics`` (``{(seed, hparam): {name: value}}``) adds the last logged training metrics.
    """
    h = n_hparams(task)
    ids = _run_ids(train, h)
    params = jax.tree.map(lambda x: _flat_runs(np.asarray(x), h), to_host(states.params))
    steps = np.asarray(to_host(states.step)).ravel()
    src = to_host(sources)
    runs = []
    for r, run in enumerate(ids):
        scores = {"step": int(steps[r]), **(final_metrics or {}).get((run["seed"], run.get("hparam")), {})}
        if task.evaluate is not None:
            s = r if h is None else r // h
            one = task.evaluate(jax.tree.map(lambda x: x[r], params), jax.tree.map(lambda x: x[s], src))
            scores.update({k: float(v) for k, v in one.items()})
        runs.append({**run, **scores})
    out = rundir.summarize(runs)
    if h is not None:
        out["by_hparam"] = [rundir.summarize([r for r in runs if r["hparam"] == j]) for j in range(h)]
        out["hparams"] = jax.tree.map(lambda x: np.asarray(x).tolist(), task.hparams)
    return out


def restore(run_dir: str | os.PathLike, step: int | None = None) -> tuple[Any, TrainState]:
    """``(config, state)`` of a run directory, in one line from a notebook.

    ``state`` is the stacked :class:`TrainState` (leading seed axis, then the hyperparameter axis if
    any) at ``step`` (default: the latest checkpoint that restores; a damaged latest one falls back
    to the previous with a warning), sharded over the devices present now.
    """
    config, state, _, _ = restore_run(run_dir, step, with_sources=False)
    return config, state


def restore_run(
    run_dir: str | os.PathLike, step: int | None = None, *, with_sources: bool = True
) -> tuple[Any, TrainState, Task, PyTree]:
    """Like :func:`restore`, also returning the task and the runs' data sources (or ``None``)."""
    exp, config = load_config(run_dir)
    task, sweep = compiled(exp, config)
    sources = sweep.sources() if with_sources else None
    mgr = ckpt.manager(Path(run_dir) / rundir.CHECKPOINTS, config.train, read_only=True)
    try:
        _, state = ckpt.restore_latest(mgr, sweep.abstract_state(), step=step)
    finally:
        mgr.close()
    return config, state, task, sources


def checkpoint_steps(run_dir: str | os.PathLike) -> list[int]:
    """Steps of the checkpoints kept in ``run_dir``."""
    _, config = load_config(run_dir)
    mgr = ckpt.manager(Path(run_dir) / rundir.CHECKPOINTS, config.train, read_only=True)
    try:
        return sorted(mgr.all_steps())
    finally:
        mgr.close()


def evaluate(run_dir: str | os.PathLike, steps: list[int] | None = None) -> dict[str, Any]:
    """Re-score the kept checkpoints (default: all) with the experiment's ``evaluate``; writes ``eval.json``."""
    steps = checkpoint_steps(run_dir) if steps is None else steps
    out = {}
    for s in steps:
        config, state, task, sources = restore_run(run_dir, s)
        out[str(s)] = score(task, config.train, state, sources)
    rundir.write_json(Path(run_dir) / "eval.json", out)
    return out


def replace_train(config: Any, **changes: Any) -> Any:
    """``config`` with fields of its ``train`` section replaced."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


def run_experiment(
    experiment: registry.Experiment | str,
    config: Any,
    run_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """The experiment's own ``run`` if it registered one, else :func:`fit` and the default report."""
    exp = registry.get(experiment) if isinstance(experiment, str) else experiment
    if exp.run is not None:
        return exp.run(config, run_dir, overwrite=overwrite, resume=resume, progress=progress)
    from jaxsparse.train.report import write_report

    results = fit(exp, config, run_dir, overwrite=overwrite, resume=resume, progress=progress)
    write_report(run_dir)
    return results

"""The trainer every experiment shares: sharded multi-seed sweeps into one run-directory layout.

An experiment's ``build(config)`` returns one :class:`Task`, or an ordered mapping
``{method: Task}`` for an experiment that compares several methods. ``fit`` trains each task as a
sweep vmapped over seeds: chunks of steps (one jitted ``lax.scan`` each) ending at every multiple
of ``train.log_every`` and ``train.checkpoint_every``; it logs metrics, checks the loss is finite,
checkpoints, and scores every run with the task's ``evaluate``.

Layout: a one-task experiment writes ``config.json``, ``checkpoints/``, ``metrics.jsonl``,
``results.json`` and ``figures/`` into the run directory. A several-method experiment writes the
same layout for each method into ``methods/<method>/`` (so every method checkpoints, resumes and
restores on its own) and, at the top, ``config.json``, ``results.json`` (the experiment's
``analyze`` of the trained methods, or the methods' results) and ``figures/``.

``fit(..., resume=True)`` skips finished methods, restores the method in flight from its latest
good checkpoint and continues bit-identically: chunk boundaries depend only on the step and batches
depend only on the step, so the resumed run executes the same compiled programs on the same inputs.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxsparse.train import checkpoint as ckpt
from jaxsparse.train import config as cfg
from jaxsparse.train import registry, rundir
from jaxsparse.train.checkpoint import CheckpointError
from jaxsparse.train.rundir import RunDirError
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


def _log_rows(metrics: dict[str, np.ndarray], ids: list[dict[str, int]], start: int, upto: int, train: cfg.TrainConfig,
              steps: int):
    """Rows for logged steps among ``start+1 .. start+upto`` (``metrics`` leaves ``[runs, n]``)."""
    rows = []
    for i in range(upto):
        step = start + i + 1
        if step % train.log_every and step != steps:
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


class Trained(NamedTuple):
    """One trained method of a run, handed to an experiment's ``analyze``.

    Attributes:
      task: its :class:`Task`.  state: the stacked final :class:`TrainState` ``[S(, H), ...]``.
      sources: the runs' data sources ``[S, ...]``.  results: its ``results.json`` contents.
      run_dir: its run directory (``methods/<method>/`` of a several-method run).
    """

    task: Task
    state: TrainState
    sources: PyTree
    results: dict[str, Any]
    run_dir: Path


_METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*(/[A-Za-z0-9][A-Za-z0-9._+-]*)*")


def tasks_of(exp: registry.Experiment, config: Any) -> dict[str | None, Task]:
    """``{None: task}`` for a one-task experiment, else ``{method: task}`` in training order."""
    built = exp.build(config)
    if isinstance(built, Task):
        return {None: built}
    if not isinstance(built, Mapping) or not built or not all(isinstance(t, Task) for t in built.values()):
        raise TypeError(f"`build` of {exp.name!r} must return a Task or a non-empty mapping of method names to Tasks")
    for name in built:
        if not isinstance(name, str) or not _METHOD_NAME.fullmatch(name):
            raise ValueError(f"method name {name!r} of {exp.name!r} must be path-safe words joined by '/'")
    return dict(built)


@functools.lru_cache(maxsize=64)
def compiled(exp: registry.Experiment, config: Any, method: str | None = None) -> tuple[Task, Sweep]:
    """The task (of ``method``) and its sharded sweep, cached: restoring or re-running the same frozen
    config in one process reuses the compiled programs instead of compiling them again."""
    tasks = tasks_of(exp, config)
    if method not in tasks:
        raise RunDirError(f"experiment {exp.name!r} has no method {method!r}; its methods: {_method_list(tasks)}")
    task = tasks[method]
    return task, build_sweep(task, config.train.seed_values)


def _method_list(tasks: Mapping) -> list:
    return [m for m in tasks if m is not None]


def load_run(run_dir: str | os.PathLike) -> tuple[registry.Experiment, Any, str | None]:
    """``(experiment, config, method)`` saved in ``run_dir/config.json`` (``method`` is ``None``
    except in a method directory of a several-method run). Errors name the file and the problem."""
    header = rundir.read_header(run_dir)
    try:
        exp = registry.get(header["experiment"], module=header.get("module"))
    except (cfg.ConfigError, ImportError) as e:
        raise RunDirError(f"{Path(run_dir) / rundir.CONFIG}: cannot load its experiment: {e}") from None
    try:
        config = cfg.from_dict(exp.config_cls, header["config"])
    except cfg.ConfigError as e:
        raise RunDirError(f"{Path(run_dir) / rundir.CONFIG} does not hold a valid {exp.name!r} config: {e}") from None
    return exp, config, header.get("method")


def load_config(run_dir: str | os.PathLike) -> tuple[registry.Experiment, Any]:
    """The experiment and the resolved config saved in ``run_dir/config.json``."""
    exp, config, _ = load_run(run_dir)
    return exp, config


def fit(
    experiment: registry.Experiment | str,
    config: Any,
    run_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    jobs: int = 1,
) -> dict[str, Any]:
    """Train every method of ``config`` (every seed as one sharded program); write the run directory.

    Args:
      experiment: a registered :class:`~jaxsparse.train.registry.Experiment` or its name.
      config: the experiment's frozen config (``None`` with ``resume=True``: the saved one).
      run_dir: ``runs/<experiment>/<name>``.
      overwrite: replace the engine's files of an existing run of the same experiment (other files
        in the directory are kept; a directory of anything else is refused).
      resume: continue the run in ``run_dir``: finished methods are kept, the one in flight continues
        from its latest good checkpoint; ``config`` must equal the saved one (the differing fields
        are listed otherwise).
      progress: show a progress bar per method (steps/s, ETA) on process 0.
      jobs: with several methods, train up to ``jobs`` of them at once, each in its own worker process
        pinned to its share of the cores (single-process runs only), the costliest first
        (``Task.cost``). The analysis starts here at once: the ``trained`` mapping it gets waits for
        each method it reads, and :func:`as_completed` gives the methods in the order they finish, so
        that each one's analysis runs while the others train. Each method runs the same compiled programs as
        with ``jobs=1``, on fewer threads: its numbers are the same up to the rounding of
        multi-threaded kernels (the main job's table was identical but for MLP-256, whose wide
        matmuls round differently on one thread: latent MCC 0.655 -> 0.645, within its seed spread).
        Small models leave a CPU's other cores idle (a 5-seed 16x8 SAE steps as fast on 1 core as
        on 2): with ``jobs=2`` the main job took 4 min 21-28 s on 2 AMD cores, 6 min 25 s before the
        workers were pinned and 7 min 48 s with ``jobs=1`` (:func:`default_jobs`); 2 min 56 s to 3 min 1 s on the
        Xeon VM later (``experiments/amortisation_gap/__init__.py``).
    Returns:
      the contents of ``results.json``.
    Raises:
      RunDirError, ConfigMismatch, TrainingDiverged (last good checkpoint kept). Everything is
      checked before anything is written: a refused call leaves the directory as it was.
    """
    exp = registry.get(experiment) if isinstance(experiment, str) else experiment
    run_dir = Path(run_dir)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"`jobs` must be an int >= 1, got {jobs!r}")
    if jobs > 1 and jax.process_count() > 1:
        raise ValueError("`jobs` > 1 needs a single-process run (each worker would be a new jax.distributed process)")
    if resume:
        saved_exp, saved, method = load_run(run_dir)
        if method is not None:
            raise RunDirError(f"{run_dir} is method {method!r} of the run in {run_dir.parents[method.count('/') + 1]}; "
                              "resume that run")
        if saved_exp.name != exp.name:
            raise ConfigMismatch(f"{run_dir} holds experiment {saved_exp.name!r}, not {exp.name!r}")
        if config is not None and (differences := cfg.diff(saved, config)):
            raise ConfigMismatch(
                f"cannot resume {run_dir}: the config differs from the saved one in\n  " + "\n  ".join(differences)
            )
        config = saved
    else:
        if not isinstance(config, exp.config_cls):
            raise TypeError(f"`config` must be a {exp.config_cls.__name__} for {exp.name!r}, got {type(config).__name__}")
        rundir.check_new(run_dir, overwrite=overwrite, experiment=exp.name)
        if overwrite and (run_dir / rundir.CONFIG).exists():
            load_run(run_dir)  # overwrite only a run that reads back as a valid run of this experiment
    tasks = tasks_of(exp, config)  # a bad config fails here, before anything is written
    _barrier("jaxsparse-checked")
    if rundir.is_writer():
        run_dir.mkdir(parents=True, exist_ok=True)
    _barrier("jaxsparse-made")
    with rundir.lock(run_dir):
        if not resume:
            rundir.create(run_dir)
            rundir.write_json(run_dir / rundir.CONFIG, _header(exp, config))
        _barrier("jaxsparse-created")
        loss_drawn = False
        if None in tasks:
            results = _fit_method(exp, config, None, run_dir, resume=resume, progress=progress).results
        else:
            workers = _Workers(exp, config, run_dir, tasks, jobs, resume=resume, progress=progress) if jobs > 1 else None

            def load(method: str) -> Trained:  # train it here, or restore it once trained (here or by a worker)
                if workers is not None:
                    workers.wait(method)
                sub = run_dir / rundir.METHODS / method
                started = (sub / rundir.CONFIG).is_file()  # by an interrupted run, or finished by a worker
                return _fit_method(exp, config, method, sub, progress=progress,
                                   resume=started and (resume or (sub / rundir.RESULTS).is_file()))

            try:
                if workers is None or not workers.pending:
                    trained: Mapping[str, Trained] = {method: load(method) for method in tasks}
                else:  # the analysis starts now, reading each method when it is trained (`as_completed`)
                    trained = _LazyTrained(list(tasks), load, workers)
                if exp.analyze is not None:
                    results = {"experiment": exp.name, **exp.analyze(config, trained, run_dir, progress)}
                else:
                    results = _methods_results(exp, trained)
            finally:
                if workers is not None:
                    workers.close()
                    loss_drawn = workers.loss_drawn
            rundir.write_json(run_dir / rundir.RESULTS, results)
        _barrier("jaxsparse-results")
        from jaxsparse.train.report import report_locked

        report_locked(run_dir, results, loss_drawn=loss_drawn)
    return results


def default_jobs() -> int:
    """Methods trained at once by ``jaxsparse run``: 2 on a CPU with at least 2 cores in a single-process
    run, else 1 (an accelerator runs one program at a time). Measured on 2 cores
    (``python benchmarks/worker_pinning.py``, seconds per 1000 steps of 5 seeds): paper 1's LISTA-3
    0.89 on both cores, 0.88 pinned to one, 0.91 and 0.95 in two pinned workers side by side, so
    two workers train 1.87x as much as one process on both cores (SAE 2.42x, MLP-32 1.96x)."""
    if jax.default_backend() == "cpu" and (os.cpu_count() or 1) >= 2 and jax.process_count() == 1:
        return 2
    return 1


class _Workers:
    """The unfinished methods of ``tasks`` training in ``min(jobs, len)`` spawned worker processes,
    each pinned to its share of the cores (:func:`_core_shares`), the costliest first (``Task.cost``).

    Nothing starts when fewer than two methods are left (``pending`` is empty; the caller trains the
    last one itself). Results are collected in the calling process: :meth:`wait` blocks until one
    method has finished, :meth:`wait_any` until the next one does, :meth:`close` until all have
    finished (or, on ``KeyboardInterrupt``, stops them).
    """

    def __init__(self, exp: registry.Experiment, config: Any, run_dir: Path, tasks: Mapping[str, Task], jobs: int, *,
                 resume: bool, progress: bool) -> None:
        todo = []
        for method in tasks:
            sub = run_dir / rundir.METHODS / method
            if not (sub / rundir.RESULTS).is_file():
                todo.append((exp.name, exp.module, config, method, str(sub), resume and (sub / rundir.CONFIG).is_file()))
        self.pending: set[str] = set()
        self._run_dir, self._figure = str(run_dir), None
        self.loss_drawn = False  # whether a worker drew the run's loss figure (`close` waits for it)
        if len(todo) < 2:
            return
        todo.sort(key=lambda job: -(tasks[job[3]].cost or 0.0))  # the longest first (stable: then build order)
        from tqdm.auto import tqdm

        self.n = min(jobs, len(todo))
        ctx = multiprocessing.get_context("spawn")  # JAX is not fork-safe
        self._shares = ctx.Queue()
        for share in _core_shares(self.n):
            self._shares.put(share)
        self._pool = ctx.Pool(self.n, initializer=_pin_worker, initargs=(self._shares,))
        self._bar = tqdm(total=len(todo), desc=f"methods ({self.n} at once)", unit="method", disable=not progress,
                         dynamic_ncols=True)
        self._results = self._pool.imap_unordered(_worker_fit, todo)
        self.pending = {job[3] for job in todo}

    def _collect_one(self) -> None:
        method, error = next(self._results)
        self.pending.discard(method)
        self._bar.set_postfix_str(method)
        self._bar.update()
        if error is not None:  # the others keep training; `close` waits for them
            raise error
        if not self.pending:  # every method's metrics are written: a free worker draws the loss figure
            from jaxsparse.train.report import draw_loss_figure

            self._figure = self._pool.apply_async(draw_loss_figure, (self._run_dir,))

    def wait(self, method: str) -> None:
        """Block until ``method`` has finished (at once if it is not being trained here)."""
        while method in self.pending:
            self._collect_one()

    def wait_any(self) -> None:
        """Block until one more method has finished (at once if none is training)."""
        if self.pending:
            self._collect_one()

    def close(self) -> None:
        """Wait for every method (and the loss figure a worker draws once they are all done), then stop
        the workers; on ``KeyboardInterrupt`` (here or while waiting) stop them at once (the methods in
        flight resume from their last checkpoint). A method that failed in a worker raises here, after
        the others have finished (the first such error; later ones, or any while another exception
        propagates, are warnings)."""
        if not hasattr(self, "_pool"):  # nothing started, or closed already
            return
        try:
            handling = sys.exc_info()[1]  # close() in a `finally` while an exception propagates
            interrupted = isinstance(handling, KeyboardInterrupt)
            failure = None
            while self.pending and not interrupted:
                try:
                    self._collect_one()
                except Exception as e:  # noqa: BLE001  (a method failed in its worker: let the others finish)
                    failure = failure or e
            if failure is not None:
                if handling is None:
                    raise failure
                warnings.warn(f"another method failed too: {failure}", RuntimeWarning, stacklevel=2)
            if self._figure is not None and not interrupted:
                try:
                    self.loss_drawn = bool(self._figure.get())
                except Exception as e:  # noqa: BLE001  (the report draws it again; the run's results are not at stake)
                    warnings.warn(f"drawing the loss figure in a worker failed ({type(e).__name__}: {e}); "
                                  "drawing it here", RuntimeWarning, stacklevel=2)
        finally:
            if self.pending or (self._figure is not None and not self._figure.ready()):
                self._pool.terminate()  # interrupted (or failing while waiting): stop the workers now
            else:
                self._pool.close()  # all done: let the workers exit on their own, running their finalizers
                # (terminated, a worker left the semaphore of tqdm's lock to the resource tracker's warning)
            self._pool.join()
            self._bar.close()
            # Close the queue and stop its feeder thread now rather than at interpreter exit.
            self._shares.close()
            self._shares.join_thread()
            del self._pool  # closed: a second `close` does nothing


class _LazyTrained(Mapping):
    """``{method: Trained}`` handed to ``analyze`` while methods are still training in workers:
    reading a method waits for it (then restores it, once); :func:`as_completed` gives the methods in
    the order they finish, so the analysis of each runs while the others train."""

    def __init__(self, methods: list[str], load, workers: _Workers | None = None) -> None:
        self._methods, self._load, self._loaded, self._workers = methods, load, {}, workers

    def _completed(self, methods: list[str]):
        left = list(methods)
        while left:
            ready = next((m for m in left if self._workers is None or m not in self._workers.pending), None)
            if ready is None:
                self._workers.wait_any()
            else:
                left.remove(ready)
                yield ready

    def __getitem__(self, method: str) -> Trained:
        if method not in self._loaded:
            if method not in self._methods:
                raise KeyError(method)
            self._loaded[method] = self._load(method)
        return self._loaded[method]

    def __contains__(self, method: object) -> bool:  # without waiting (Mapping's default would read it)
        return method in self._methods

    def __iter__(self):
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)


def as_completed(trained: Mapping[str, Any], methods: Iterable[str] | None = None) -> Iterator[str]:
    """The methods of ``trained`` (default: all, in build order) in the order their training finishes.

    ``analyze`` gets ``trained`` while the methods still train in worker processes (``jaxsparse run``
    on a multi-core CPU, :func:`default_jobs`); reading ``trained[method]`` waits for that method.
    Iterating this instead yields the methods already trained first (in the given order), then each
    one as its worker finishes it, so the analysis of every method overlaps the training of the
    others and only the last one's is left when training ends. For any other mapping (one process):
    the given order.

    Example::

        for method in jaxsparse.train.as_completed(trained):
            rows[method] = my_scores(trained[method])

    Raises:
      KeyError: a method in ``methods`` that ``trained`` does not hold.
    """
    methods = list(trained) if methods is None else list(methods)
    missing = [m for m in methods if m not in trained]
    if missing:
        raise KeyError(f"`methods` names methods that `trained` does not hold: {missing}")
    if isinstance(trained, _LazyTrained):
        return trained._completed(methods)
    return iter(methods)


def _core_shares(n: int) -> list[tuple[int, ...]]:
    """This process's cores dealt into ``n`` disjoint shares, one per worker; empty shares (no pinning)
    where the platform cannot pin threads (no ``os.sched_setaffinity``) or has fewer than ``n`` cores.

    Pinned, each worker's XLA sizes its thread pool to its own share. Unpinned, two workers on 2 cores
    each ran a 2-thread pool, and the small models of the main job, which gain nothing from a second
    thread, trained up to half as fast side by side: 5 seeds of paper 1's LISTA-3 took 1.86 s per
    1000 steps in an unpinned worker (``train_s`` of a main-job run before this change) and 0.91-0.95 s
    in a pinned one beside another (``python benchmarks/worker_pinning.py``).
    """
    if not hasattr(os, "sched_setaffinity"):
        return [()] * n
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < n:
        return [()] * n
    return [tuple(cores[i::n]) for i in range(n)]


def _pin_worker(shares) -> None:
    """Pool initializer: pin this worker to the next share of cores, before JAX starts its backend."""
    share = shares.get()
    if share:
        os.sched_setaffinity(0, share)


def _worker_fit(job: tuple) -> tuple[str, Exception | None]:
    """One method trained in a worker process of :class:`_Workers`: ``(method, None)``, or the
    exception that stopped it, with the worker's traceback as a note (re-raised by the caller)."""
    name, module, config, method, sub, resume = job
    try:
        exp = registry.get(name, module=module)
        _fit_method(exp, config, method, Path(sub), resume=resume, progress=False)
    except Exception as e:  # noqa: BLE001  (handed to the main process, which raises it)
        import traceback

        e.add_note(f"(raised in the worker process training {method!r}:\n{traceback.format_exc()})")
        return method, e
    return method, None


def _methods_results(exp: registry.Experiment, trained: dict[str, Trained]) -> dict[str, Any]:
    """Default results of a several-method run: the first method's summary at the top, every
    method's summary under ``methods``."""
    entries = [{"method": m, **{k: v for k, v in t.results.items() if k != "experiment"}} for m, t in trained.items()]
    first = entries[0]
    return {"experiment": exp.name, **{k: first[k] for k in ("per_seed", "n_runs", "std_ddof", "mean", "std", "min", "max")},
            "methods": entries}


def _fit_method(exp: registry.Experiment, config: Any, method: str | None, run_dir: Path, *, resume: bool,
                progress: bool) -> Trained:
    """Train (or finish, or just restore) one task into ``run_dir``; write its ``results.json``."""
    train: cfg.TrainConfig = config.train
    task, sweep = compiled(exp, config, method)
    steps = task.steps or train.steps
    if resume and (run_dir / rundir.RESULTS).is_file():  # finished before the interruption
        _, states, _, sources = restore_run(run_dir, steps)
        return Trained(task, states, sources, rundir.read_json(run_dir / rundir.RESULTS), run_dir)
    if not resume and method is not None and rundir.is_writer():
        (run_dir / rundir.FIGURES).mkdir(parents=True, exist_ok=True)
        rundir.write_json(run_dir / rundir.CONFIG, {**_header(exp, config), "method": method})
    states, sources = sweep.init()
    mgr = ckpt.manager(run_dir / rundir.CHECKPOINTS, train)
    try:
        start = 0
        if resume and mgr.all_steps():
            start, states = ckpt.restore_latest(mgr, sweep.abstract_state())
        if resume:
            rundir.truncate_metrics(run_dir / rundir.METRICS, start)
        compile0, t0 = sweep.compile_seconds(), time.perf_counter()
        try:
            states = _train(task, sweep, states, sources, train, steps, mgr, run_dir, start, progress,
                            desc=method or exp.name)
        except TrainingDiverged as e:
            if method is None:
                raise
            raise TrainingDiverged(f"method {method!r}: {e}") from None
        compile_s = sweep.compile_seconds() - compile0
        train_s = time.perf_counter() - t0 - compile_s
    finally:
        mgr.close()
    _barrier("jaxsparse-trained")
    results = score(task, train, states, sources, final_metrics=_final_metrics(run_dir, steps))
    results = {"experiment": exp.name, **({"method": method} if method else {}), "step": steps, **results,
               "timing": {"train_s": train_s, "compile_s": compile_s, "resumed_from_step": start}}
    rundir.write_json(run_dir / rundir.RESULTS, results)
    return Trained(task, states, sources, results, run_dir)


def chunk_lengths(start: int, steps: int, train: cfg.TrainConfig) -> list[int]:
    """Lengths of the chunks from ``start`` to ``steps``: each ends at the next multiple of
    ``log_every`` or ``checkpoint_every``, or at ``steps``. A function of the step only, so a run
    resumed from a checkpoint runs the same chunks (the same compiled programs) as an uninterrupted one."""
    out, step = [], start
    while step < steps:
        end = min(steps, (step // train.log_every + 1) * train.log_every,
                  (step // train.checkpoint_every + 1) * train.checkpoint_every)
        out.append(end - step)
        step = end
    return out


def _train(task: Task, sweep: Sweep, states: TrainState, sources: PyTree, train: cfg.TrainConfig, steps: int, mgr,
           run_dir: Path, start: int, progress: bool, desc: str) -> TrainState:
    """The chunk loop of :func:`fit` from step ``start`` to ``steps``."""
    from tqdm.auto import tqdm

    h = n_hparams(task)
    ids = _run_ids(train, h)
    log = rundir.MetricsLog(run_dir / rundir.METRICS)
    bar = tqdm(total=steps, initial=start, unit="step", desc=desc, disable=not (progress and rundir.is_writer()),
               dynamic_ncols=True)
    step, last_saved = start, (max(mgr.all_steps()) if mgr.all_steps() else None)
    try:
        for n in chunk_lengths(start, steps, train):
            new_states, metrics = sweep.chunk(n)(states, sources, start=step)
            metrics = {k: _flat_runs(np.asarray(v), h) for k, v in to_host(metrics).items()}
            if train.best_metric not in metrics:
                raise cfg.ConfigError(f"`train.best_metric` {train.best_metric!r} is not a logged metric {sorted(metrics)}")
            bad = _first_nonfinite(metrics["loss"])
            if bad is not None:
                log.write(_log_rows(metrics, ids, step, bad, train, steps))
                r = int(np.argmax(~np.isfinite(metrics["loss"][:, bad])))
                where = ", ".join(f"{k} {v}" for k, v in ids[r].items())
                kept = (f"the last good checkpoint (step {last_saved}) is kept in {run_dir / rundir.CHECKPOINTS}"
                        if last_saved is not None else "no checkpoint had been written yet")
                raise TrainingDiverged(
                    f"non-finite loss ({metrics['loss'][r, bad]}) at step {step + bad + 1} for {where}; "
                    f"training stopped; {kept}"
                )
            log.write(_log_rows(metrics, ids, step, n, train, steps))
            states, step = new_states, step + n
            if step % train.checkpoint_every == 0 or step == steps:
                ckpt.save(mgr, states, step=step,
                          metrics={train.best_metric: float(np.mean(metrics[train.best_metric][:, -1]))})
                last_saved = step
            bar.update(n)
            bar.set_postfix(loss=f"{np.mean(metrics['loss'][:, -1]):.4g}")
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
    """Final scores of every run: ``task.evaluate(params, source)`` per run, plus mean and spread
    (:func:`jaxsparse.train.rundir.summarize`).

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


def _method_dir(run_dir: Path, method: str | None) -> tuple[Path, registry.Experiment, Any, str | None]:
    """The directory of ``method`` of the run in ``run_dir`` (``run_dir`` itself for one-task runs or
    a method directory), with the experiment, config and method it holds."""
    exp, config, saved_method = load_run(run_dir)
    if saved_method is not None:
        if method is not None and method != saved_method:
            raise RunDirError(f"{run_dir} holds method {saved_method!r}, not {method!r}")
        return run_dir, exp, config, saved_method
    tasks = tasks_of(exp, config)
    if None in tasks:
        if method is not None:
            raise RunDirError(f"{run_dir} is a one-task run; it has no method {method!r}")
        return run_dir, exp, config, None
    if method is None:
        raise RunDirError(f"{run_dir} is a run of several methods; pass `method=` (one of {_method_list(tasks)})")
    if method not in tasks:
        raise RunDirError(f"{run_dir} has no method {method!r}; its methods: {_method_list(tasks)}")
    sub = run_dir / rundir.METHODS / method
    if not (sub / rundir.CONFIG).is_file():
        raise RunDirError(f"method {method!r} of {run_dir} has not started training yet (no {sub / rundir.CONFIG})")
    return sub, exp, config, method


def restore(run_dir: str | os.PathLike, step: int | None = None, *, method: str | None = None) -> tuple[Any, TrainState]:
    """``(config, state)`` of a run directory, in one line from a notebook.

    ``state`` is the stacked :class:`TrainState` (leading seed axis, then the hyperparameter axis if
    any) at ``step`` (default: the latest checkpoint that restores; a damaged latest one falls back
    to the previous with a warning), sharded over the devices present now. For a run of several
    methods pass ``method`` (e.g. ``restore("runs/amortisation-gap/x", method="unknown/SAE")``)
    or the method's directory ``methods/<method>``.
    """
    config, state, _, _ = restore_run(run_dir, step, method=method, with_sources=False)
    return config, state


def restore_run(
    run_dir: str | os.PathLike, step: int | None = None, *, method: str | None = None, with_sources: bool = True
) -> tuple[Any, TrainState, Task, PyTree]:
    """Like :func:`restore`, also returning the task and the runs' data sources (or ``None``)."""
    sub, exp, config, method = _method_dir(Path(run_dir), method)
    task, sweep = compiled(exp, config, method)
    sources = sweep.sources() if with_sources else None
    mgr = ckpt.manager(sub / rundir.CHECKPOINTS, config.train, read_only=True)
    try:
        _, state = ckpt.restore_latest(mgr, sweep.abstract_state(), step=step)
    finally:
        mgr.close()
    return config, state, task, sources


def methods(run_dir: str | os.PathLike) -> list[str] | None:
    """The method names of a several-method run (``None`` for a one-task run)."""
    exp, config, _ = load_run(run_dir)
    tasks = tasks_of(exp, config)
    return None if None in tasks else list(tasks)


def checkpoint_steps(run_dir: str | os.PathLike, *, method: str | None = None) -> list[int]:
    """Steps of the checkpoints kept in ``run_dir`` (of ``method`` in a several-method run)."""
    sub, _, config, _ = _method_dir(Path(run_dir), method)
    if not (sub / rundir.CHECKPOINTS).is_dir():
        return []
    mgr = ckpt.manager(sub / rundir.CHECKPOINTS, config.train, read_only=True)
    try:
        return sorted(mgr.all_steps())
    finally:
        mgr.close()


def evaluate(run_dir: str | os.PathLike, steps: list[int] | None = None) -> dict[str, Any]:
    """Re-score kept checkpoints (default: all) with each task's ``evaluate``; writes ``eval.json``.

    One-task run: ``{step: summary}``. Several methods: ``{"methods": {method: {step: summary}}}``
    (methods that have not started are left out). Refused while the run is being written.
    """
    run_dir = Path(run_dir)
    exp, config, saved_method = load_run(run_dir)
    tasks = tasks_of(exp, config)
    names = None if saved_method is not None or None in tasks else list(tasks)
    with rundir.lock(run_dir):
        plan = {m: checkpoint_steps(run_dir, method=m) for m in (names or [None])
                if m is None or (run_dir / rundir.METHODS / m / rundir.CONFIG).is_file()}
        for m, kept in plan.items():
            missing = sorted(set(steps or []) - set(kept))
            if missing:
                raise CheckpointError(f"`step` {missing} not among the kept checkpoints {kept}" + (f" of {m!r}" if m else ""))
        if not any(plan.values()):
            raise CheckpointError(f"no checkpoints to evaluate in {run_dir}")
        scored = {}
        for m, kept in plan.items():
            scored[m] = {}
            for s in (steps or kept):
                config, state, task, sources = restore_run(run_dir, s, method=m)
                scored[m][str(s)] = score(task, config.train, state, sources)
        out = scored[None] if names is None else {"methods": scored}
        rundir.write_json(run_dir / rundir.EVAL, out)
    return out

"""Sweeps as one program: states stacked on a leading seed axis (and an optional hyperparameter
axis), the chunk of steps ``vmap``-ped over them, and the seed axis sharded over all devices.

A :class:`Task` bundles what one run needs. Keys: seed ``s`` gives ``k = key(s)``; the data source
is built from ``fold_in(k, 0)``, the parameters from ``fold_in(k, 1)`` (and the source) and the
training key (step randomness) is ``fold_in(k, 2)``. So seed ``s`` in a sweep and a single run with seed ``s`` use
the same keys, and every run of a hyperparameter grid with the same seed shares data and init.
"""

from __future__ import annotations

import math
import os
import time
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxsparse.host import side_by_side, usable_cores
from jaxsparse.train.step import TrainState, init_state, largest_layer_bytes, make_step, scan_batches, scan_steps

PyTree = Any
SEED_AXIS = "seed"


class Task(NamedTuple):
    """What an experiment hands the engine for one run (see ``step.py`` for the contracts).

    Attributes:
      init: ``init(key, source) -> params`` (``source`` is the run's data source, for models that
        start from the data, e.g. dictionary atoms drawn from the training signals).
      loss_fn: ``loss_fn(params, batch, key[, hparams]) -> (loss, aux)``; ``None`` when ``update``
        is given.
      optimizer: any optax ``GradientTransformation`` (``optax.identity()`` with ``update``), or with
        ``hparams`` a function ``optimizer(hparams) -> GradientTransformation`` of one grid point's
        hyperparameters, so a learning-rate x weight-decay grid runs as one vmapped program
        (e.g. ``lambda hp: optax.adamw(hp["lr"], weight_decay=hp["wd"])``).
      data_fn: ``data_fn(source, step) -> batch``, on device; ``None`` when ``feed`` is given.
      make_source: ``make_source(key) -> source``: the run's data source (default: the key itself).
      project: optional ``project(params) -> params`` after each update.
      evaluate: optional ``evaluate(params, source) -> {name: float}`` final scores of one run, on
        host arrays (may use non-jittable metrics such as Hungarian matching).
      hparams: optional pytree whose leaves have a leading ``[n_hparams]`` axis (a grid, e.g. of
        the sparsity weight); then every seed trains once per grid point.
      feed: optional ``feed(start, n) -> batches`` on the host (leaves ``[n, ...]``, the batches of
        steps ``start .. start+n-1``, shared by every seed), for data that does not live on device
        (e.g. a memory-mapped activation dataset). It must be a function of the step range only,
        so that a resumed run is fed the same batches.
      update: optional ``update(params, batch, key[, hparams]) -> (params, metrics)`` replacing the
        gradient step, for learners that are not gradient descent (e.g. alternating minimisation);
        ``metrics`` must contain ``"loss"``.
      steps: optional number of steps of this task (default: the config's ``train.steps``), for
        experiments whose methods train for different budgets.
      grid_init: optional ``grid_init(params, hparams) -> params``: grid point ``hparams``'s initial
        parameters from the seed's draw ``init(key, source)`` (e.g. layers rescaled by the grid
        point); without it every grid point starts from the seed's draw.
      monitor: optional ``monitor(params, source[, hparams]) -> {name: scalar}``, measured on the
        state at the end of every chunk (so at every logged step) rather than at every step, for
        diagnostics too costly for the loss's ``aux`` (held-out accuracy, NTK Gram matrices). Its
        names must differ from the ``aux`` names; in a chunk's metrics its values sit at the last
        step and are NaN before it.
      seed_batch: how many seeds are vmapped together on a device: ``"auto"`` (default), ``None``
        (all of them) or an int ``g``. With ``g`` below the device's seeds, the chunk ``lax.map``-s
        over groups of ``g`` seeds, one group after another inside the same compiled program. Large
        groups share each operation's fixed cost; small ones keep a group's activations in cache,
        which is what counts on CPU for wide layers. ``"auto"`` vmaps all seeds on accelerators and
        on CPU takes :func:`auto_seed_batch`. Values are the same either way up to float rounding.
        On one CPU device the groups (or the seeds of one vmap) are also dealt into parts trained side
        by side from host threads (:func:`build_sweep`'s ``threads``, :func:`seed_parts`).
      cost: optional relative cost of training this task (e.g. its training FLOPs). Methods trained
        side by side (``fit(..., jobs=2)``) start in decreasing ``cost`` (the longest first, so the
        workers end together), then in build order; it changes nothing else.
      microbatches: ``n > 1`` computes each step's loss and gradient as the mean over ``n`` equal
        slices of the batch (every batch leaf cut along its leading sample axis; gradient
        accumulation, :func:`jaxsparse.train.step.microbatched`); ``"auto"`` slices only on CPU and
        only layers wider than the cache (:func:`jaxsparse.train.step.auto_microbatches`). For
        losses that are means over samples only; it is the same update up to float rounding.
    """

    init: Callable[[jax.Array], PyTree]
    loss_fn: Callable[..., Any]
    optimizer: optax.GradientTransformation | Callable[[PyTree], optax.GradientTransformation]
    data_fn: Callable[[PyTree, jax.Array], PyTree] | None
    make_source: Callable[[jax.Array], PyTree] = lambda key: key
    project: Callable[[PyTree], PyTree] | None = None
    evaluate: Callable[[PyTree, PyTree], dict[str, float]] | None = None
    hparams: PyTree = None
    feed: Callable[[int, int], PyTree] | None = None
    update: Callable[..., Any] | None = None
    steps: int | None = None
    grid_init: Callable[[PyTree, PyTree], PyTree] | None = None
    monitor: Callable[..., dict[str, Any]] | None = None
    seed_batch: int | str | None = "auto"
    cost: float | None = None
    microbatches: int | str = 1


def n_hparams(task: Task) -> int | None:
    """Length of the hyperparameter grid, or ``None`` without one."""
    leaves = jax.tree.leaves(task.hparams)
    return None if not leaves else int(np.shape(leaves[0])[0])


def init_source(task: Task, seed: jax.Array) -> PyTree:
    """The data source of the run with integer ``seed``: ``make_source(fold_in(key(seed), 0))``."""
    return task.make_source(jax.random.fold_in(jax.random.key(seed), 0))


def init_run(task: Task, seed: jax.Array, hparams: PyTree = None, source: PyTree = None) -> tuple[TrainState, PyTree]:
    """State and data source of one run with integer ``seed`` (and grid point ``hparams``; traceable, so it vmaps).

    ``source``: the run's data source when already made (``init_source(task, seed)``), else made here.
    """
    k = jax.random.key(seed)
    source = init_source(task, seed) if source is None else source
    params = task.init(jax.random.fold_in(k, 1), source)
    if hparams is not None and task.grid_init is not None:
        params = task.grid_init(params, hparams)
    return init_state(jax.random.fold_in(k, 2), params, task.optimizer, hparams), source


def init_sweep(task: Task, seeds: jax.Array, sources: PyTree = None) -> tuple[TrainState, PyTree]:
    """Stacked states ``[S(, H), ...]`` and sources ``[S, ...]`` for ``seeds: int32 [S]`` (``sources``:
    the runs' data sources when already made, ``vmap(init_source)(seeds)``)."""
    h = n_hparams(task)

    def one(seed, source):
        if h is None:
            return init_run(task, seed, source=source)
        state, source = jax.vmap(lambda hp: init_run(task, seed, hp, source))(task.hparams)
        return state, jax.tree.map(lambda x: x[0], source)

    return jax.vmap(one)(seeds, sources)


def sweep_chunk(task: Task, n_steps: int) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """``chunk(states, sources, batches, hparams) -> (states, metrics)``: ``n_steps`` steps of every run.

    ``states: [S(, H), ...]``, ``sources: [S, ...]``, ``batches``: ``None`` (made on device by
    ``task.data_fn``) or host-fed leaves ``[n_steps, ...]`` shared by all runs, ``hparams:
    [H, ...] | None``; metrics come back as ``{name: [S(, H), n_steps]}``. One ``lax.scan`` per run,
    ``vmap``-ped over the axes.
    """
    return over_seeds(seed_chunk(task, n_steps), task.seed_batch)


def seed_chunk(task: Task, n_steps: int) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """``chunk(state, source, batches, hparams) -> (state, metrics)``: ``n_steps`` steps of one seed's
    runs (state ``[(H,) ...]``, metrics ``{name: [(H,) n_steps]}``); :func:`sweep_chunk` maps it over seeds."""
    if (task.data_fn is None) == (task.feed is None):
        raise ValueError("a Task needs exactly one of `data_fn` (on device) and `feed` (from the host)")
    sb = task.seed_batch
    if not (sb is None or sb == "auto" or (isinstance(sb, int) and not isinstance(sb, bool) and sb >= 1)):
        raise ValueError(f"`Task.seed_batch` must be 'auto', None or an int >= 1, got {sb!r}")
    step = make_step(task.loss_fn, task.optimizer, project=task.project, update=task.update,
                     microbatches=task.microbatches)
    if task.feed is None:
        on_device = scan_steps(step, task.data_fn, n_steps)
        chunk = lambda st, src, batches, hp: on_device(st, src, hp)  # noqa: E731
    else:
        fed = scan_batches(step)
        chunk = lambda st, src, batches, hp: fed(st, batches, hp)  # noqa: E731
    if task.monitor is not None:
        chunk = _monitored(chunk, task.monitor, n_steps)
    return chunk if n_hparams(task) is None else jax.vmap(chunk, in_axes=(0, None, None, 0))


def over_seeds(per_seed: Callable, seed_batch: int | str | None) -> Callable:
    """``per_seed(state, source, batches, hp)`` over a leading seed axis of ``state`` and ``source``:
    one ``vmap`` (``seed_batch=None``, or at least the number of seeds), else ``lax.map`` over groups
    of ``seed_batch`` seeds (``"auto"``: :func:`auto_seed_batch`; see :class:`Task`)."""
    vmapped = jax.vmap(per_seed, in_axes=(0, 0, None, None))

    def run(states, sources, batches, hp):
        n = jax.tree.leaves(states)[0].shape[0]
        g = auto_seed_batch(per_seed, states, sources, batches, hp) if seed_batch == "auto" else seed_batch
        if g is None or g >= n:
            return vmapped(states, sources, batches, hp)
        return _in_groups(per_seed, g)(states, sources, batches, hp)

    return run


def _in_groups(per_seed: Callable, group: int) -> Callable:
    """``per_seed`` over the leading seed axis, ``lax.map``-ped over groups of ``group`` seeds."""
    return lambda states, sources, batches, hp: jax.lax.map(lambda sx: per_seed(sx[0], sx[1], batches, hp),
                                                            (states, sources), batch_size=None if group == 1 else group)


def seed_parts(n_seeds: int, group: int | None, cores: int) -> list[int]:
    """Seeds per part of a one-device CPU sweep of ``n_seeds`` seeds vmapped in groups of ``group``
    (``None``: one vmap over all), each part trained by its own host thread: ``[n_seeds]`` for one part.

    Several groups: the whole groups are dealt over up to ``cores`` parts as evenly as possible (larger
    parts first; a remainder of fewer than ``group`` seeds rides with the last part), and each part maps
    over its groups as the one program does. One group: the seeds are dealt over up to ``cores`` parts,
    each vmapped over its own seeds. The parts' programs run side by side (:mod:`jaxsparse.host`), which
    pays most for small models, whose operations gain nothing from XLA's threads: on 2 cores of the
    Xeon VM, 8 seeds of an 8->16 SAE in two vmaps of 4 train at 2.34-2.36x eight single-seed runs,
    against 1.42-1.46x in one vmap of 8; a 64->256 SAE, one seed a group, in two parts of 4 at
    1.25-1.27x against 1.00x in one program (``python benchmarks/sweep.py``, three runs each).

    Parts of whole groups compute what the one program computes, bit for bit; parts of one vmap the
    same up to float rounding, as XLA:CPU may round a seed of a vmap of 2 differently from one of 4
    (``tests/test_train_sweep.py``). The parts depend only on the seeds, the model and ``cores``, so a
    run resumed on the same machine runs the same programs.
    """
    if cores < 2 or n_seeds < 2:
        return [n_seeds]
    unit = 1 if group is None or group >= n_seeds else group
    units, rest = divmod(n_seeds, unit)
    t = min(cores, units)
    parts = [unit * (units // t + (i < units % t)) for i in range(t)]
    parts[-1] += rest
    return parts


CPU_GROUP_BYTES = 512 * 1024
""":func:`auto_seed_batch`'s budget on CPU for one group's largest matmul or convolution output (about
a core's L2)."""


def auto_seed_batch(per_seed: Callable, states: PyTree, sources: PyTree, batches: PyTree, hp: PyTree) -> int | None:
    """Seeds per vmapped group: all (``None``) on accelerators; on CPU the largest divisor of the number
    of seeds that is at most ``max(1, CPU_GROUP_BYTES // b)``, ``b`` the bytes of the largest matmul or
    convolution output of one seed's chunk (traced, not run).

    Measured on 2 CPU cores: paper 1's 5-seed MLP-256 encoder (``[1024, 256]`` activations, 1 MiB)
    steps in 2.5 s per 1000 steps one seed at a time vs 3.9 s in one vmap (best of 3, twice); the
    8-seed SAE 64->256 of ``python benchmarks/sweep.py --steps 500 --repeats 3`` ran at 1.09-1.16x of
    8 single-seed runs one seed at a time vs 0.71-0.85x in one vmap (three runs, timings
    interleaved); at 64 KiB per seed (paper 1's SAE) this picks one vmap, 1.26-1.59x faster than the
    single-seed runs.
    """
    if jax.default_backend() != "cpu":
        return None
    return _cpu_group(seed_layer_bytes(per_seed, states, sources, batches, hp), jax.tree.leaves(states)[0].shape[0])


def _cpu_group(layer_bytes: int, n_seeds: int) -> int:
    """:func:`auto_seed_batch` on CPU from one seed's largest layer output."""
    limit = max(1, CPU_GROUP_BYTES // max(layer_bytes, 1))
    return max(g for g in range(1, min(limit, n_seeds) + 1) if n_seeds % g == 0)  # equal groups: one compiled body


def seed_layer_bytes(per_seed: Callable, states: PyTree, sources: PyTree, batches: PyTree, hp: PyTree) -> int:
    """Bytes of the largest matmul or convolution output of one seed's chunk (traced, not run;
    :func:`jaxsparse.train.step.largest_layer_bytes`), for stacked arguments."""
    one = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), t)  # noqa: E731
    shaped = lambda t: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), t)  # noqa: E731
    return largest_layer_bytes(jax.make_jaxpr(per_seed)(one(states), one(sources), shaped(batches), shaped(hp)).jaxpr)


def _monitored(chunk: Callable, monitor: Callable, n_steps: int) -> Callable:
    """``chunk`` followed by ``monitor`` on its final state, its values placed at the last step."""

    def run(state, source, batches, hp):
        state, metrics = chunk(state, source, batches, hp)
        metrics = dict(metrics)
        measured = monitor(state.params, source) if hp is None else monitor(state.params, source, hp)
        if clash := sorted(set(measured) & set(metrics)):
            raise ValueError(f"`monitor` names {clash} are already the loss's metrics; rename them")
        for name, value in measured.items():
            value = jnp.asarray(value, jnp.float32)
            if value.shape != ():
                raise ValueError(f"`monitor` must return scalars; {name!r} has shape {value.shape}")
            metrics[name] = jnp.full((n_steps,), jnp.nan, jnp.float32).at[-1].set(value)
        return state, metrics

    return run


def seed_mesh(n_seeds: int, devices: list | None = None) -> Mesh:
    """A 1-D mesh named ``"seed"`` over the largest number of devices dividing ``n_seeds``.

    With 8 devices and 8 seeds each device trains one seed; with 1 device this is a trivial mesh.
    Across hosts (``jax.distributed``) ``jax.devices()`` lists every process's devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = math.gcd(n_seeds, len(devices))
    return Mesh(np.array(devices[:n]), (SEED_AXIS,))


def seed_sharding(mesh: Mesh) -> NamedSharding:
    """Shard the leading (seed) axis over the mesh."""
    return NamedSharding(mesh, PartitionSpec(SEED_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def global_array(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full (works multi-host)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


class Sweep(NamedTuple):
    """Compiled pieces of one sharded sweep: ``init()``, ``sources()`` and ``chunk(n)(states, sources)``;
    ``compile_seconds()`` is the time spent compiling chunk programs so far (compiled ahead of time on
    first use, so training wall times exclude compilation)."""

    mesh: Mesh
    init: Callable[[], tuple[TrainState, PyTree]]
    sources: Callable[[], PyTree]
    chunk: Callable[[int], Callable[..., tuple[TrainState, dict[str, jax.Array]]]]
    abstract_state: Callable[[], TrainState]
    compile_seconds: Callable[[], float]


_SOURCE_PROGRAMS: dict[tuple, Any] = {}
"""Compiled data-source programs of this process, by ``(make_source, seeds, mesh)``: the methods of an
experiment usually share one data maker (an equal ``functools.partial``), and compiling it once
instead of per method saved 27 s of the main job's 2 CPU cores (12 methods restored for analysis)."""
_MAX_SOURCE_PROGRAMS = 64


def one_shot_options(mesh: Mesh) -> dict[str, Any] | None:
    """XLA options for the programs a sweep runs once: its data sources and initial states.

    On CPU, LLVM's -O1 pipeline instead of -O2 (``xla_backend_optimization_level=1``). These programs
    are mostly threefry random bits, whose unrolled rounds kept -O2 busy for 1-3.5 s per program while
    they run in milliseconds: paper 1's sources and 12 initial states compiled in 3.9 + 29.0 s at -O2
    and 1.6 + 10.8 s at -O1 (one core of the Xeon), with every output bit for bit the same. Values
    are the same up to float rounding in general: -O2 vectorises sums that -O1 leaves scalar, so a
    4-feature SAE's unit-norm atoms differ in the last bit or so (``tests/test_train_sweep.py``).
    Training chunks keep the default, as they run many times. Elsewhere ``None``: the backend's
    defaults.
    """
    return {"xla_backend_optimization_level": 1} if mesh.devices.flat[0].platform == "cpu" else None


def _value_key(fn: Callable) -> Any:
    """``fn`` by value where it is a ``functools.partial`` of hashable arguments (two equal partials
    compute the same thing), else ``fn`` itself."""
    if isinstance(fn, partial):
        key = (_value_key(fn.func), fn.args, tuple(sorted(fn.keywords.items())))
        try:
            hash(key)
            return key
        except TypeError:
            return fn
    return fn


def build_sweep(task: Task, seeds: list[int], *, devices: list | None = None, threads: int | None = None) -> Sweep:
    """Jit the sweep with the seed axis sharded over ``seed_mesh(len(seeds))``.

    Example::

      sw = build_sweep(task, [0, 1, 2, 3])
      states, sources = sw.init()
      states, metrics = sw.chunk(100)(states, sources)   # metrics: {name: [4, 100]}
      # host-fed data (task.feed): sw.chunk(100)(states, sources, start=step)

    On one CPU device the seeds train in up to ``threads`` parts side by side, one host thread each
    (default :func:`default_threads`: the cores this process may use): whole groups of
    :func:`auto_seed_batch` where it makes several (the one program's numbers, bit for bit), else parts
    of the one vmap (the same up to float rounding; :func:`seed_parts`), when each part has at least
    :data:`MIN_PART_WORK`. While they run, the parts hold their activations at once instead of one
    group's. ``threads=1``: one program.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`threads` must be a positive int or None (the usable cores), got {threads!r}")
    mesh = seed_mesh(len(seeds), devices)
    shard, rep = seed_sharding(mesh), replicated(mesh)
    seeds_arr = np.asarray(seeds, np.int32)
    hparams = None if task.hparams is None else jax.tree.map(lambda x: global_array(x, rep), task.hparams)
    init_jit = jax.jit(partial(init_sweep, task), in_shardings=shard, out_shardings=shard,
                       compiler_options=one_shot_options(mesh))
    chunks: dict[int, Callable] = {}
    compile_s = [0.0]

    def sources():
        seeds_global = global_array(seeds_arr, shard)
        key = (_value_key(task.make_source), tuple(seeds), mesh)
        if key not in _SOURCE_PROGRAMS:
            if len(_SOURCE_PROGRAMS) >= _MAX_SOURCE_PROGRAMS:  # bounded, like `engine.compiled`: drop the oldest
                _SOURCE_PROGRAMS.pop(next(iter(_SOURCE_PROGRAMS)))
            fn = jax.jit(jax.vmap(partial(init_source, task)), in_shardings=shard, out_shardings=shard)
            _SOURCE_PROGRAMS[key] = fn.lower(seeds_global).compile(compiler_options=one_shot_options(mesh))
        return _SOURCE_PROGRAMS[key](seeds_global)

    def init():
        return init_jit(global_array(seeds_arr, shard), sources())

    def chunk(n_steps: int):
        if n_steps not in chunks:
            per_seed, program = seed_chunk(task, n_steps), []

            def run(states, sources, start=None):
                batches = None
                if task.feed is not None:
                    if start is None:
                        raise ValueError("a host-fed sweep chunk needs `start`, the step of its first batch")
                    batches = jax.tree.map(lambda x: global_array(x, rep), task.feed(int(start), n_steps))
                if not program:  # compile ahead of time, so compilation is timed apart from training
                    t0 = time.perf_counter()
                    program.append(_chunk_program(per_seed, task.seed_batch, mesh, threads, n_steps,
                                                  (states, sources, batches, hparams)))
                    compile_s[0] += time.perf_counter() - t0
                return program[0](states, sources, batches, hparams)

            chunks[n_steps] = run
        return chunks[n_steps]

    def abstract_state():
        states, _ = jax.eval_shape(partial(init_sweep, task), jax.ShapeDtypeStruct(seeds_arr.shape, jnp.int32))
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=shard), states)

    return Sweep(mesh, init, sources, chunk, abstract_state, lambda: compile_s[0])


THREADS_ENV = "JAXSPARSE_SWEEP_THREADS"
"""Environment variable with the default ``threads`` of :func:`build_sweep` (``jaxsparse run --threads N``
sets it, so that worker processes read it too)."""


def default_threads() -> int:
    """:func:`build_sweep`'s default ``threads``: ``$JAXSPARSE_SWEEP_THREADS`` where set, else the cores
    this process may use (:func:`jaxsparse.host.usable_cores`)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return usable_cores()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${THREADS_ENV} must be a positive int (host threads per CPU sweep), got {value!r}")
    return int(value)


MIN_PART_WORK = 1 << 20
"""Least work for a part of a CPU sweep in its own thread, as (one seed's largest layer output in bytes)
x (seeds of the part) x (steps of the chunk): each part costs a thread hand-off and a join per chunk
(:func:`jaxsparse.host.side_by_side`), and 1 MiB of it is about 2.7 ms of a small SAE's training on
the Xeon (8 seeds of an 8->16 SAE, 64 KiB each, 2000 steps in 1.36-1.40 s in one program:
``python benchmarks/sweep.py``). Paper 4's single
neuron (28 bytes a seed, 200 chunks of 100 steps) stays in one program; split, it trained in 0.81 s
instead of 0.47 s (``train_s`` of ``JAXSPARSE_COMPILE_CACHE=off jaxsparse run rich-lazy-neuron``)."""


def _chunk_program(per_seed: Callable, seed_batch: int | str | None, mesh: Mesh, threads: int | None,
                   n_steps: int, args: tuple) -> Callable:
    """The compiled chunk of a sweep: ``run(states, sources, batches, hparams) -> (states, metrics)``.

    On one CPU device whose seeds split into several :func:`seed_parts`, a program compiled for each
    part size (it slices its seeds from the whole stack at a given offset) runs each part from its own
    host thread, all at once, and the parts are joined again; otherwise the one program of
    :func:`over_seeds`.
    """
    shard, rep = seed_sharding(mesh), replicated(mesh)
    n = jax.tree.leaves(args[0])[0].shape[0]
    parts, group = [n], seed_batch
    if mesh.size == 1 and mesh.devices.flat[0].platform == "cpu" and jax.process_count() == 1:
        layer = seed_layer_bytes(per_seed, *args)  # traced once here: "auto" is resolved for both paths below
        group = _cpu_group(layer, n) if seed_batch == "auto" else seed_batch
        parts = seed_parts(n, group, default_threads() if threads is None else threads)
        if layer * n_steps * n < MIN_PART_WORK * len(parts):  # too little work per thread
            parts = [n]
    if len(parts) == 1:
        body = over_seeds(per_seed, group)
        if seed_batch is not None and mesh.size > 1:  # groups of each device's own seeds
            body = jax.shard_map(body, mesh=mesh, in_specs=(PartitionSpec(SEED_AXIS), PartitionSpec(SEED_AXIS),
                                                            PartitionSpec(), PartitionSpec()),
                                 out_specs=PartitionSpec(SEED_AXIS))
        return jax.jit(body, in_shardings=(shard, shard, rep, rep), out_shardings=shard).lower(*args).compile()

    if group is None or group >= n:  # one group: each part one vmap
        body = jax.vmap(per_seed, in_axes=(0, 0, None, None))
    else:  # as the one program maps them, also where a part is one group
        body = _in_groups(per_seed, group)

    def part_program(size: int):
        def one_part(states, sources, batches, hp, offset):
            take = lambda x: jax.lax.dynamic_slice_in_dim(x, offset, size)  # noqa: E731
            return body(jax.tree.map(take, states), jax.tree.map(take, sources), batches, hp)

        return jax.jit(one_part, in_shardings=(shard, shard, rep, rep, rep), out_shardings=shard).lower(
            *args, jax.ShapeDtypeStruct((), jnp.int32)).compile()

    programs = {size: part_program(size) for size in dict.fromkeys(parts)}  # unequal parts: two programs
    offsets = [global_array(np.int32(o), rep) for o in np.cumsum([0] + parts[:-1])]
    join = jax.jit(lambda outs: jax.tree.map(lambda *a: jnp.concatenate(a), *outs), out_shardings=shard)

    def run(states, sources, batches, hp):
        return join(side_by_side([partial(programs[size], states, sources, batches, hp, o)
                                  for size, o in zip(parts, offsets, strict=True)]))

    return run


def to_host(tree: PyTree) -> PyTree:
    """NumPy copies of (possibly sharded, possibly multi-host) arrays, identical on every process."""
    if jax.process_count() > 1:
        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)

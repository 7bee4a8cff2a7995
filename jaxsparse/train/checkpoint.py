"""Orbax checkpoints of stacked train states, with our own integrity check and fallback.

Each step directory holds two orbax items: ``state`` (the arrays, written collectively by all
processes) and ``meta`` (JSON: the step and a fingerprint of every leaf). Orbax commits a step
atomically but keeps no checksums of array data, so :func:`restore_latest` recomputes the
fingerprint and, if the latest step is unreadable or does not match, warns and falls back to the
previous step. Nothing is deleted on failure.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as pp  # public API (no orbax private modules)

from jaxsparse.train.config import TrainConfig

PyTree = Any


class CheckpointError(RuntimeError):
    """No checkpoint in a run directory could be restored."""


def _leaf_fingerprint(x: jax.Array) -> jax.Array:
    """uint32 ``sum_i u_i * (2 i + 1) mod 2**32`` over the leaf's bits ``u`` (any bit flip changes it).

    Integer sums are exact, so the value does not depend on sharding or device count.
    """
    if x.dtype == jnp.bool_:
        u = x.astype(jnp.uint32).ravel()
    elif x.dtype.itemsize < 4:
        u = jax.lax.bitcast_convert_type(x, {1: jnp.uint8, 2: jnp.uint16}[x.dtype.itemsize]).astype(jnp.uint32).ravel()
    else:  # 4 bytes -> one word, 8 bytes -> two words
        u = jax.lax.bitcast_convert_type(x, jnp.uint32).ravel()
    weights = jnp.arange(u.size, dtype=jnp.uint32) * jnp.uint32(2) + jnp.uint32(1)
    return jnp.sum(u * weights, dtype=jnp.uint32)


@jax.jit
def _fingerprints(tree: PyTree) -> list[jax.Array]:
    return [_leaf_fingerprint(x) for x in jax.tree.leaves(tree)]


def _host_fingerprint(x: np.ndarray) -> int:
    """:func:`_leaf_fingerprint` of a host array, in NumPy (uint32 products and sums wrap mod 2**32 alike)."""
    x = np.ascontiguousarray(x)
    if x.dtype == np.bool_:
        u = x.astype(np.uint32).ravel()
    else:
        u = x.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[x.dtype.itemsize]).astype(np.uint32).ravel()
    weights = np.arange(u.size, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    return int(np.sum(u * weights, dtype=np.uint32))


def _on_host(x: Any) -> bool:
    """Whether a leaf can be fingerprinted in NumPy: a host array, or a fully addressable CPU array of at
    most 4-byte items (8-byte items keep the device path, whose word order XLA defines)."""
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return False
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable or any(dev.platform != "cpu" for dev in x.sharding.device_set):
            return False
    elif not isinstance(x, np.ndarray):
        return False
    return np.dtype(x.dtype).itemsize <= 4


def fingerprint(tree: PyTree) -> list[int]:
    """One uint32 per leaf of ``tree`` (works on sharded and multi-host arrays).

    Leaves on the CPU are summed in NumPy, the others by one jitted program on their devices: the
    same numbers, without compiling a program for every new tree structure (about 0.2 s each, once per
    method in a worker and again when the analysis restores it: 2.5 s of paper 1's analysis).
    """
    leaves = jax.tree.leaves(tree)
    host = [_on_host(x) for x in leaves]
    device = iter(_fingerprints([x for x, h in zip(leaves, host) if not h])) if not all(host) else iter(())
    return [_host_fingerprint(np.asarray(x)) if h else int(np.asarray(next(device))) for x, h in zip(leaves, host)]


def manager(directory: str | os.PathLike, train: TrainConfig, *, read_only: bool = False) -> ocp.CheckpointManager:
    """One orbax ``CheckpointManager`` for ``directory``: keeps the latest ``train.keep_checkpoints``
    steps plus the best by ``train.best_metric`` (``train.best_mode``); synchronous saves.

    ``read_only=True`` does not create the directory (and the caller must not save); orbax's own
    ``read_only`` option is not used because it only logs warnings for our options.
    """
    best_fn = lambda m: float(m[train.best_metric])  # noqa: E731
    policy = pp.AnyPreservationPolicy(
        [
            pp.LatestN(n=train.keep_checkpoints),
            pp.BestN(get_metric_fn=best_fn, reverse=train.best_mode == "min", n=1),
        ]
    )
    options = ocp.CheckpointManagerOptions(
        best_fn=best_fn,
        best_mode=train.best_mode,
        preservation_policy=policy,
        enable_async_checkpointing=False,
        create=not read_only,
    )
    return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=("state", "meta"))


def save(mgr: ocp.CheckpointManager, state: PyTree, *, step: int, metrics: dict[str, float]) -> None:
    """Save ``state`` at ``step`` with its fingerprint; ``metrics`` feed the best-checkpoint choice."""
    meta = {"step": int(step), "fingerprint": fingerprint(state)}
    args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
    mgr.save(step, args=args, metrics={k: float(v) for k, v in metrics.items()}, force=True)
    mgr.wait_until_finished()


def _restore_step(mgr: ocp.CheckpointManager, step: int, abstract: PyTree) -> PyTree:
    args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    out = mgr.restore(step, args=args)
    if out.meta is None or out.meta.get("step") != step:
        raise CheckpointError(f"checkpoint {step}: missing or inconsistent meta item")
    if fingerprint(out.state) != list(out.meta["fingerprint"]):
        raise CheckpointError(f"checkpoint {step}: array data does not match its fingerprint (corrupt)")
    return out.state


@contextlib.contextmanager
def _quiet_closed_event_loop():
    """Silence ``RuntimeError('Event loop is closed')`` from orbax's leftover coroutines.

    When tensorstore fails on a damaged file, orbax's ``asyncio.run`` returns with other reads
    still pending; their finalisers later raise this error as "unraisable" noise. Collect them
    here, inside the hook, so only that one message is dropped.
    """
    previous = sys.unraisablehook

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(unraisable.exc_value)):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        gc.collect()
        sys.unraisablehook = previous


def restore_latest(mgr: ocp.CheckpointManager, abstract: PyTree, *, step: int | None = None) -> tuple[int, PyTree]:
    """Restore ``step`` (default: the latest), falling back to earlier steps with a warning.

    Args:
      mgr: the run's manager.
      abstract: ``jax.ShapeDtypeStruct`` tree (with target shardings) of the state.
      step: a specific step; then no fallback happens and a failure raises.
    Returns:
      ``(step, state)``.
    """
    steps = sorted(mgr.all_steps(), reverse=True)
    if step is not None:
        if step not in steps:
            raise CheckpointError(f"`step` {step} is not among the saved checkpoints {sorted(steps)}")
        return step, _restore_step(mgr, step, abstract)
    if not steps:
        raise CheckpointError(f"no checkpoints in {mgr.directory}")
    errors = []
    for s in steps:
        state = None
        with _quiet_closed_event_loop():
            try:
                state = _restore_step(mgr, s, abstract)
            except Exception as e:  # noqa: BLE001  (orbax/tensorstore raise many types on damaged files)
                errors.append(f"step {s}: {type(e).__name__}: {str(e)[:300]}")
        if state is None:
            continue
        if errors:
            warnings.warn(
                "could not restore the latest checkpoint(s), fell back to step "
                f"{s}:\n  " + "\n  ".join(errors),
                RuntimeWarning,
                stacklevel=2,
            )
        return s, state
    raise CheckpointError(f"no checkpoint in {mgr.directory} could be restored:\n  " + "\n  ".join(errors))

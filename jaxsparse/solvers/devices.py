"""A batched solver with its signals split over several devices, each solving its share on its own.

``over_devices(solver)(dictionary, x, **kwargs)`` returns what ``solver(dictionary, x, **kwargs)``
returns, computed by ``jax.shard_map`` over a one-axis mesh of ``devices``: the dictionary is
replicated, the samples of ``x [..., M]`` are dealt to the devices in contiguous blocks (zero signals
pad the batch to a multiple of the device count and are dropped again), and every output keeps
``x``'s batch shape.

Each device runs the solver's own control flow on its block. The active-set solvers gain most:
``homotopy`` steps its whole batch in lock step until the slowest path ends (then compacts it), so
with one program per device a block's loop ends with that block's paths, and the devices' programs
run side by side instead of one program's operations being split across threads.

On CPU, XLA shows one device unless it is told to split the cores, before JAX starts::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python my_script.py

Measured on 2 cores of an AVX-512 Xeon VM (``python benchmarks/solvers.py --quick --devices 2
--max-active 32``, 4096 signals x 64 x 256, 8-sparse, lam = 0.05, three runs): homotopy 76-78 ms on
2 devices against 99-106 ms on one, 1.04-1.09x SPAMS ``lasso`` on the same 2 cores (0.80-0.81x on
one device); OMP 14.3-14.5 ms against 16.9-17.2 ms, 1.32-1.33x SPAMS ``omp``.
The result is the same up to float rounding as one call on the whole batch (the blocks' paths are
the same paths; the compaction and the float sums follow other batch sizes).

Without that flag (in a notebook, say, where JAX has already started), ``over_threads(solver)``
gets part of the gain on the one CPU device: it calls the solver on a few blocks of the batch at
once, each from its own host thread, and XLA:CPU runs the calls side by side on the device's cores.
It works on concrete arrays only (a call under ``jit``, ``grad`` or ``vmap`` is one call of the
solver), and on CPU only. It pays for homotopy, not for OMP, whose one program already keeps both
cores busy. ``python benchmarks/solvers.py --quick --max-active 32 --no-fista --threads T`` (same 2
cores, five runs alternating T = 4, 2, 4, 2, 4; SPAMS in the same rounds): homotopy in 2 blocks
76.2 and 78.7 ms, **1.00x and 1.01x** SPAMS ``lasso``, in 4 blocks 76.4-78.7 ms (0.96-0.99x), one
call 82.4-87.9 ms (0.87-0.92x); OMP (k = 8) in 2 blocks 17.3-17.8 ms and in 4 18.7-19.5 ms against
15.8-16.2 ms in one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from jaxsparse.host import side_by_side, usable_cores

BATCH_AXIS = "batch"


def over_devices(solver: Callable[..., Any], *, devices: Sequence[jax.Device] | None = None) -> Callable[..., Any]:
    """``solver`` (``solver(dictionary, x, **kwargs)``, e.g. :func:`~jaxsparse.solvers.homotopy`) with the
    samples of ``x`` split over ``devices`` (default: all of ``jax.devices()``); see the module docstring.

    Example::

        solve = jax.jit(lambda d, x: over_devices(homotopy)(d, x, lam=0.05, max_active=32))
        z = solve(d, x)   # x: [4096, 64], one block of 2048 per device with 2 devices

    Args:
      solver: a batched solver whose outputs (array or pytree) all lead with the batch axes of ``x``.
      devices: the devices to split over (one device: ``solver`` itself is called).
    Returns:
      ``run(dictionary, x, **kwargs)``.
    """
    if not callable(solver):
        raise TypeError(f"`solver` must be callable, got {type(solver).__name__}")
    if devices is not None:
        devices = list(devices)
        if not devices or not all(isinstance(d, jax.Device) for d in devices):
            raise ValueError(f"`devices` must be a non-empty sequence of jax devices, got {devices!r}")

    def run(dictionary: jax.Array, x: jax.Array, **kwargs: Any) -> Any:
        devs = list(jax.devices()) if devices is None else devices
        if len(devs) == 1:
            return solver(dictionary, x, **kwargs)
        x = jnp.asarray(x)
        flat = _padded(x, len(devs))
        mesh = Mesh(np.array(devs), (BATCH_AXIS,))
        # check_vma=False: the solvers' loops start from constants that are the same on every device
        blocks = jax.shard_map(lambda d, xs: solver(d, xs, **kwargs), mesh=mesh,
                               in_specs=(PartitionSpec(), PartitionSpec(BATCH_AXIS)),
                               out_specs=PartitionSpec(BATCH_AXIS), check_vma=False)
        return _unpadded(blocks(dictionary, flat), x.shape[:-1])

    return run


def _padded(x: jax.Array, n_blocks: int) -> jax.Array:
    """Signals ``x [..., M]`` as ``[B', M]``: flattened, then zero signals up to a multiple of ``n_blocks``."""
    if x.ndim < 1:
        raise ValueError(f"`x` must be signals [..., n_features], got shape {x.shape}")
    flat = x.reshape(-1, x.shape[-1])
    pad = -flat.shape[0] % n_blocks
    return jnp.concatenate([flat, jnp.zeros((pad, flat.shape[1]), flat.dtype)]) if pad else flat


def _unpadded(out: Any, batch_shape: tuple[int, ...]) -> Any:
    """Every leaf ``[B', ...]`` of a solver's output back to ``batch_shape + [...]`` (padding dropped)."""
    b = int(np.prod(batch_shape))
    return jax.tree.map(lambda a: a[:b].reshape(batch_shape + a.shape[1:]), out)


def default_thread_blocks() -> int:
    """Blocks :func:`over_threads` uses by default: one per CPU core this process may run on (on 2
    cores, 2 blocks took homotopy 1.00-1.01x SPAMS and 4 blocks 0.96-0.99x: module docstring)."""
    return usable_cores()


MIN_BLOCK = 256
"""Fewest signals per block :func:`over_threads` makes by default (smaller blocks cost more in
per-call overhead than they gain)."""


def _enable_x64(value: bool) -> Any:
    """``jax.enable_x64(value)`` (``jax.experimental.enable_x64`` in older JAX)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(value)
    from jax.experimental import enable_x64

    return enable_x64(value)


def over_threads(solver: Callable[..., Any], *, blocks: int | None = None) -> Callable[..., Any]:
    """``solver`` (``solver(dictionary, x, **kwargs)``) with the samples of ``x`` split into ``blocks``
    contiguous blocks, each solved by its own call from its own host thread, the calls running side
    by side on the CPU device (module docstring).

    A call on traced arrays (inside ``jit``, ``grad``, ``vmap``), on a backend other than CPU, or with
    a single block is one call of ``solver``. Zero signals pad the batch to a multiple of ``blocks``
    (one compiled program serves every block) and are dropped again. The result is the same up to
    float rounding as one call on the whole batch, and bit for bit each block's own call.

    Example::

        solve = over_threads(homotopy)
        z = solve(d, x, lam=0.05, max_active=32)   # x: [4096, 64]: 2 blocks of 2048 on 2 cores

    Args:
      solver: a batched solver whose outputs (array or pytree) all lead with the batch axes of ``x``.
      blocks: blocks to split the batch into (static); default :func:`default_thread_blocks`, at most
        ``B / MIN_BLOCK`` (``B`` signals).
    Returns:
      ``run(dictionary, x, **kwargs)``.
    """
    if not callable(solver):
        raise TypeError(f"`solver` must be callable, got {type(solver).__name__}")
    if blocks is not None and (isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1):
        raise ValueError(f"`blocks` must be a positive int or None, got {blocks!r}")

    def run(dictionary: jax.Array, x: jax.Array, **kwargs: Any) -> Any:
        traced = any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves((dictionary, x, kwargs)))
        if traced or jax.default_backend() != "cpu":
            return solver(dictionary, x, **kwargs)
        x = jnp.asarray(x)
        flat = _padded(x, 1)
        n_blocks = blocks if blocks is not None else min(default_thread_blocks(), flat.shape[0] // MIN_BLOCK)
        n_blocks = min(n_blocks, flat.shape[0])
        if n_blocks <= 1:
            return solver(dictionary, x, **kwargs)
        flat = _padded(flat, n_blocks)
        # JAX keeps the matmul precision and x64 mode per thread: the workers re-enter the caller's
        precision, x64 = jax.config.jax_default_matmul_precision, jax.config.jax_enable_x64

        def solve(block: jax.Array) -> Any:
            with contextlib.ExitStack() as stack:
                if precision is not None:
                    stack.enter_context(jax.default_matmul_precision(precision))
                if x64 != jax.config.jax_enable_x64:
                    stack.enter_context(_enable_x64(x64))
                return solver(dictionary, block, **kwargs)

        outs = side_by_side([partial(solve, block) for block in jnp.split(flat, n_blocks)])
        return _unpadded(jax.tree.map(lambda *a: jnp.concatenate(a), *outs), x.shape[:-1])

    return run


__all__ = ["BATCH_AXIS", "MIN_BLOCK", "default_thread_blocks", "over_devices", "over_threads"]

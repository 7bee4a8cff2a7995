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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

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
        if x.ndim < 1:
            raise ValueError(f"`x` must be signals [..., n_features], got shape {x.shape}")
        batch_shape, n_features = x.shape[:-1], x.shape[-1]
        flat = x.reshape(-1, n_features)
        b = flat.shape[0]
        pad = -b % len(devs)
        if pad:
            flat = jnp.concatenate([flat, jnp.zeros((pad, n_features), flat.dtype)])
        mesh = Mesh(np.array(devs), (BATCH_AXIS,))
        # check_vma=False: the solvers' loops start from constants that are the same on every device
        blocks = jax.shard_map(lambda d, xs: solver(d, xs, **kwargs), mesh=mesh,
                               in_specs=(PartitionSpec(), PartitionSpec(BATCH_AXIS)),
                               out_specs=PartitionSpec(BATCH_AXIS), check_vma=False)
        out = blocks(dictionary, flat)
        return jax.tree.map(lambda a: a[:b].reshape(batch_shape + a.shape[1:]), out)

    return run


__all__ = ["BATCH_AXIS", "over_devices"]

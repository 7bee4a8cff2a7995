"""The host's CPU cores: how many this process may use, and running calls side by side on them.

XLA:CPU splits each operation of one program over its thread pool; for the small operations of
sparse solvers and narrow models that split costs more than it gains. Two programs started from two
host threads run side by side instead, each mostly on its own core (XLA:CPU executes calls from
different threads concurrently; calls dispatched from one thread run one after another). Both
:func:`jaxsparse.solvers.over_threads` and the training engine's CPU sweeps
(:func:`jaxsparse.train.build_sweep`) use this. Measured on 2 cores of an AVX-512 Xeon VM: homotopy
on 4096 signals in 2 blocks 1.00-1.01x SPAMS ``lasso`` against 0.87-0.92x in one call
(:mod:`jaxsparse.solvers.devices`); 8 seeds of a 64->256 SAE in two parts of 4 at 1.25-1.27x eight
single-seed runs against 1.00x in one program (``python benchmarks/sweep.py``, three runs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def side_by_side(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """``[call() for call in calls]``, each call in its own host thread, all at once; every result is
    waited for (``jax.block_until_ready``) in its thread. One call runs in the caller's thread.

    The threads are kept for the next call (a sweep calls this once per chunk, and starting threads
    costs more than handing work to kept ones); a call made while they are busy (from another thread,
    or from inside a call) gets threads of its own.
    """
    if len(calls) == 1:
        return [jax.block_until_ready(calls[0]())]
    if not _POOL_LOCK.acquire(blocking=False):
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return _run(pool, calls)
    try:
        if _POOL[1] < len(calls):
            if _POOL[0] is not None:
                _POOL[0].shutdown()
            _POOL[:] = [ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="jaxsparse"), len(calls)]
        return _run(_POOL[0], calls)
    finally:
        _POOL_LOCK.release()


def _run(pool: ThreadPoolExecutor, calls: Sequence[Callable[[], Any]]) -> list[Any]:
    futures = [pool.submit(lambda call=call: jax.block_until_ready(call())) for call in calls]
    return [f.result() for f in futures]


_POOL_LOCK = threading.Lock()
_POOL: list = [None, 0]
"""The kept thread pool of :func:`side_by_side` and its size."""


__all__ = ["side_by_side", "usable_cores"]

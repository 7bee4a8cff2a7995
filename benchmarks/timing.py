"""Timing shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import argparse
import os
import time
from typing import Callable, Mapping


def devices_from_argv() -> int:
    """The script's ``--devices N`` (default 1), with XLA told to show N CPU devices
    (``--xla_force_host_platform_device_count``, unless ``XLA_FLAGS`` already sets it), so that a
    benchmark can split its work over one device per core. Call it before JAX is imported."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--devices", type=int, default=1)
    n = pre.parse_known_args()[0].devices
    flags = os.environ.get("XLA_FLAGS", "")
    if n > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    return n


def best_time(fn: Callable[[], object], repeats: int, *, warmup: bool = True) -> float:
    """Best wall time in seconds of ``fn()``, which must block until its result is ready.

    With ``warmup`` one untimed call comes first (compilation, caches).
    """
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def best_of_rounds(timers: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Best seconds per entry over ``rounds`` rounds, each round calling every timer once in turn.

    A timer returns the seconds of one call (``lambda: best_time(fn, 1, warmup=False)``, or a time
    measured elsewhere, e.g. in a child process). Interleaving puts the drift of a machine whose
    speed changes between minutes on every entry alike.
    """
    best = {name: float("inf") for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer())
    return best

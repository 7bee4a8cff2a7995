"""Timing shared by the benchmark scripts (run them as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import time
from typing import Callable


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

"""SPAMS in a process of its own, for the benchmarks that time it against our solvers.

SPAMS 2.6.14's float32 ``omp`` returns wrong codes in some processes (all zero, a residual of
``||x||^2``; a few times a partly wrong set), every call of such a process alike, whether or not JAX
is loaded: 17 of the 40 processes started on this project's 2-core VM while measuring, some with
numpy and spams only. On a 16-core H100 machine the first float32 ``omp`` call of each of 5
processes was wrong and the later calls right. Its float64 ``omp`` and its ``lasso`` have not failed.
A valid float32 time therefore needs SPAMS started again until its float32 ``omp`` is right:
:class:`SpamsWorker` starts this file as a child process (numpy and spams only), checks the second
float32 call, and restarts it up to ``tries`` times. The
caller then times SPAMS call by call between its own calls (``worker.call(name)`` returns the
seconds SPAMS took in the child, without the pipe), so both sides see the same drift of the machine.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time

import numpy as np

CALLS = ("lasso float32", "lasso float64", "omp float32", "omp float64")


def _residual(x: np.ndarray, d: np.ndarray, z) -> float:
    """Mean ``||x - z D||^2`` in float64 for SPAMS's sparse ``[N, B]`` codes."""
    z = z.T.tocsr().astype(np.float64)
    return float(np.mean(np.sum((x - np.asarray(z @ d)) ** 2, axis=1)))


class SpamsWorker:
    """SPAMS in a child process; ``call(name)`` runs one of :data:`CALLS` there and returns ``(seconds, codes)``.

    Args:
      x: ``[B, M]`` signals, d: ``[N, M]`` dictionary (rows are atoms), as our solvers take them.
      lam: SPAMS ``lasso``'s ``lambda1`` (``mode=2``: ``0.5 ||x - D z||^2 + lam ||z||_1``, as ours).
      k: SPAMS ``omp``'s ``L``.
      tries: child processes to try for a valid float32 ``omp`` (the residual of its second call within
        1.5x of the float64 one's); 0: one child, unchecked (three SPAMS calls fewer, for large problems).
    Attributes:
      valid: the float32 ``omp`` of the last child tried was right (``None``: unchecked);
      ``tried``: children started.
    Raises:
      ImportError: SPAMS is not installed (``pip install spams-bin``).
    """

    def __init__(self, x: np.ndarray, d: np.ndarray, *, lam: float, k: int, tries: int = 5):
        import importlib.util

        if importlib.util.find_spec("spams") is None:
            raise ImportError("SPAMS is not installed (pip install spams-bin)")
        self._setup = (np.asarray(x, np.float32), np.asarray(d, np.float32), float(lam), int(k))
        x64, d64 = np.asarray(x, np.float64), np.asarray(d, np.float64)
        self.tried, self.valid, self._proc = 0, None, None
        if tries == 0:
            self._start()
        while self.tried < tries and not self.valid:  # the last one tried is kept: the caller flags its rows
            self.close()
            self._start()
            self.tried += 1
            self.call("omp float32")  # the first call can be wrong where later ones are right (module docstring)
            _, z32 = self.call("omp float32")
            _, z64 = self.call("omp float64")
            self.valid = _residual(x64, d64, z32) <= 1.5 * _residual(x64, d64, z64)

    def _start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._send(self._setup)

    def _send(self, obj) -> None:
        pickle.dump(obj, self._proc.stdin)
        self._proc.stdin.flush()

    def call(self, name: str):
        """Run ``name`` (one of :data:`CALLS`) once in the child: ``(seconds, codes as scipy sparse [N, B])``."""
        if name not in CALLS:
            raise ValueError(f"`name` must be one of {CALLS}, got {name!r}")
        self._send(name)
        return pickle.load(self._proc.stdout)

    def close(self) -> None:
        if self._proc is not None:
            self._send(None)
            self._proc.wait(timeout=30)
            self._proc = None


def _serve() -> None:
    """The child: read the problem, then time each requested call until ``None``."""
    import spams

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    x, d, lam, k = pickle.load(stdin)
    arrays = {dt: (np.asfortranarray(x.T.astype(dt)), np.asfortranarray(d.T.astype(dt)))
              for dt in ("float32", "float64")}

    def run(name):
        solver, dt = name.split()
        xf, df = arrays[dt]
        if solver == "lasso":
            return spams.lasso(xf, D=df, lambda1=lam, mode=2, numThreads=-1)
        return spams.omp(xf, D=df, L=k, numThreads=-1)

    while (name := pickle.load(stdin)) is not None:
        t = time.perf_counter()
        codes = run(name)
        t = time.perf_counter() - t
        pickle.dump((t, codes), stdout)
        stdout.flush()


if __name__ == "__main__":
    _serve()

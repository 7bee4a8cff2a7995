"""Streaming an activation store: read throughput and the process's memory against the store's size.

Writes a synthetic store of ``--gib`` GiB (float32 rows of width ``--d``, through
``jaxsparse.data.activations.extract``), then draws ``--steps`` training batches of ``--batch`` rows
(``ActivationStore.batches``, rows drawn uniformly from ``fold_in(key, step)``) in chunks of
``--chunk`` steps, as ``Task.feed`` does, and prints:

- rows/s and MB/s of batches delivered;
- the process's anonymous resident memory (``RssAnon``, what the process itself allocates: the
  batches, JAX, NumPy) before and at its peak while streaming, next to the store's size; the
  memory-mapped shards' pages are file-backed (``RssFile``) and the kernel drops them under
  pressure, so a store larger than RAM streams in bounded memory.

Baseline for the ratio: ``np.load`` of the whole store into memory (what a loader without memory
mapping needs), i.e. the store's size.

    python benchmarks/activation_store.py --gib 4          # writes to a temporary directory, removed after
    python benchmarks/activation_store.py --dir /data/acts  # an existing store (nothing written)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import jax
import numpy as np

from jaxsparse.data import activations as act


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field)) * 1024


class PeakSampler:
    """Samples ``RssAnon`` every few milliseconds in a thread; ``peak`` is the largest value seen."""

    def __init__(self, interval: float = 0.005):
        self.peak, self._stop, self._interval = _status("RssAnon:"), threading.Event(), interval
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _status("RssAnon:"))
            time.sleep(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_store(path: Path, gib: float, d: int, rows_per_doc: int = 4096) -> None:
    n_docs = max(1, int(gib * 2**30 / (rows_per_doc * d * 4)))

    def fn(texts):
        start = int(texts[0].split()[1])
        rows = np.random.default_rng(start).standard_normal((len(texts) * rows_per_doc, d), dtype=np.float32)
        pos = np.stack([np.repeat(np.arange(len(texts)), rows_per_doc), np.tile(np.arange(rows_per_doc), len(texts))], 1)
        return rows, pos

    act.extract(path, [f"doc {i}" for i in range(n_docs)], fn, model="synthetic", layer=0, d=d,
                text_source="benchmarks/activation_store.py", docs_per_shard=16)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gib", type=float, default=2.0, help="size of the synthetic store")
    p.add_argument("--d", type=int, default=384)
    p.add_argument("--dir", default=None, help="stream an existing store instead of writing one")
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--chunk", type=int, default=10, help="steps per feed call")
    p.add_argument("--steps", type=int, default=2000)
    args = p.parse_args()
    tmp = None
    if args.dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="jaxsparse-store-"))
        t0 = time.perf_counter()
        write_store(tmp / "store", args.gib, args.d)
        print(f"wrote {args.gib} GiB in {time.perf_counter() - t0:.1f} s")
    try:
        store = act.ActivationStore(args.dir or tmp / "store")
        size = store.n * store.d * store.shards[0].dtype.itemsize
        key = jax.random.key(0)
        store.batches(key, 0, 1, args.batch)  # compile the index draw
        before = _status("RssAnon:")
        with PeakSampler() as sampler:
            t0 = time.perf_counter()
            for start in range(0, args.steps, args.chunk):
                store.batches(key, start, min(args.chunk, args.steps - start), args.batch)
            seconds = time.perf_counter() - t0
        rows = args.steps * args.batch
        chunk_bytes = args.chunk * args.batch * store.d * 4
        print(f"store: {store.n:,} rows x {store.d} = {size / 2**20:,.0f} MiB in {len(store.shards)} shards; "
              f"{args.steps} batches of {args.batch} rows in chunks of {args.chunk} ({chunk_bytes / 2**20:.0f} MiB each)")
        print(f"read: {rows / seconds:,.0f} rows/s, {rows * store.d * 4 / seconds / 2**20:,.0f} MB/s; "
              f"{rows * store.d * 4 / size:.1f} x the store read in {seconds:.1f} s")
        print(f"anonymous memory: {before / 2**20:,.0f} MiB before, peak {sampler.peak / 2**20:,.0f} MiB while "
              f"streaming (+{(sampler.peak - before) / 2**20:,.0f} MiB); loading the store whole would add "
              f"{size / 2**20:,.0f} MiB: ratio {size / max(sampler.peak - before, 1):.1f}x less")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    main()

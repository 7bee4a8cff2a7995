"""Activation datasets on disk: memory-mapped shards with a manifest, a resumable extractor, and
batches drawn from ``fold_in(key, step)`` so that SAE training on them resumes exactly.

**Layout** of a store directory::

    manifest.json            format, model, layer, d, dtype, text source, documents, shards, complete
    shard_00000.npy          activations [n_0, d]    (NumPy .npy, read memory-mapped)
    shard_00000.index.npy    int32 [n_0, 2]: (document, token position) of every row
    shard_00001.npy ...

Shard ``i`` holds the activations of documents ``[i * docs_per_shard, (i + 1) * docs_per_shard)``,
in order, every token of a document one row. The manifest lists each shard with its document range
and row count; its ``n_tokens`` is the total.

**Extraction** (:func:`extract`) is a pure function of the documents and ``activations_fn``: it
writes shard ``i`` to a temporary file, renames it into place, then rewrites the manifest
(temporary file and rename). A run killed at any moment therefore leaves a manifest that lists
only whole shards; calling :func:`extract` again with the same arguments checks that the documents,
model, layer, dtype and shard size are the ones recorded (a mismatch is an error that names the
fields, and nothing is deleted), rewrites the first unlisted shard and goes on: no duplicates, no
gaps.

**Reading** (:class:`ActivationStore`): the shards are opened with ``mmap_mode="r"``, so a store
larger than memory costs only the pages a batch touches. Batch ``step`` is ``batch_size`` rows
drawn uniformly with replacement from all rows with ``jax.random.randint(fold_in(key, step), ...)``
(the big_vision recipe: no iterator state to save, a resumed run reads the same batches).

Example::

    extract("acts/", docs, fn, model="all-MiniLM-L6-v2", layer=3, d=384, text_source="numpy docstrings")
    store = ActivationStore("acts/")
    x = store.batch(jax.random.key(0), step=12, batch_size=4096)          # [4096, 384] float32
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from jaxsparse._checks import check_key, positive_int

FORMAT = "jaxsparse-activations/1"
MANIFEST = "manifest.json"
DTYPES = ("float32", "float16")


class StoreError(ValueError):
    """A store directory that cannot be read, or that does not match the requested extraction."""


def _shard_name(i: int) -> str:
    return f"shard_{i:05d}.npy"


def _index_name(i: int) -> str:
    return f"shard_{i:05d}.index.npy"


def fingerprint(documents: Sequence[str]) -> str:
    """SHA-256 of the documents (each UTF-8 encoded, length-prefixed), to recognise a corpus on resume."""
    h = hashlib.sha256()
    for doc in documents:
        b = doc.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, obj: Any) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")

    _write_atomic(path, write)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a temporary name
        np.save(f, array, allow_pickle=False)


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the store in ``directory``; a :class:`StoreError` names a missing or foreign file."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise StoreError(f"{path} does not exist: `directory` must be an activation store written by `extract`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise StoreError(f"{path} is not valid JSON: {e}") from None
    if manifest.get("format") != FORMAT:
        raise StoreError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def extract(
    directory: str | os.PathLike,
    documents: Sequence[str],
    activations_fn: Callable[[list[str]], tuple[np.ndarray, np.ndarray]],
    *,
    model: str,
    layer: int | str,
    d: int,
    text_source: str,
    dtype: str = "float32",
    docs_per_shard: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """Write (or finish) the activation store of ``documents`` in ``directory``; return its manifest.

    Args:
      directory: the store; created if missing. An existing directory must be empty or hold a store
        of the same extraction (resumed); anything else is refused, and no file is ever deleted.
      documents: the texts, in order (document ``j`` is ``documents[j]``).
      activations_fn: ``fn(texts) -> (acts [n, d], positions int [n])`` for a list of texts: one row per
        kept token, in text order, with ``positions`` giving ``(text number within the list, token
        position)`` as an ``[n, 2]`` integer array. Must be deterministic.
      model, layer, text_source: recorded in the manifest (and checked on resume).
      d: activation width.
      dtype: storage dtype, ``float32`` or ``float16`` (batches are read as float32).
      docs_per_shard: documents per shard (the unit of resumption).
      progress: show a progress bar over shards.
    """
    directory = Path(directory)
    d = positive_int("d", d)
    docs_per_shard = positive_int("docs_per_shard", docs_per_shard)
    if dtype not in DTYPES:
        raise ValueError(f"`dtype` must be one of {DTYPES}, got {dtype!r}")
    if isinstance(documents, (str, bytes)) or not all(isinstance(t, str) for t in documents):
        raise TypeError("`documents` must be a sequence of str")
    if len(documents) == 0:
        raise ValueError("`documents` must not be empty")
    header = {"format": FORMAT, "model": str(model), "layer": layer, "d": d, "dtype": dtype,
              "text_source": str(text_source), "n_documents": len(documents), "docs_per_shard": docs_per_shard,
              "documents_sha256": fingerprint(documents)}
    if (directory / MANIFEST).is_file():
        manifest = read_manifest(directory)
        differ = [k for k in header if manifest.get(k) != header[k]]
        if differ:
            raise StoreError(f"{directory} holds a different extraction (fields {differ} differ: "
                             + ", ".join(f"{k} saved {manifest.get(k)!r} vs {header[k]!r}" for k in differ)
                             + "); use another directory")
    elif directory.exists() and any(p for p in directory.iterdir() if not p.name.startswith(".shard_")):
        raise StoreError(f"{directory} is not empty and holds no {MANIFEST}; refusing to write an activation store "
                         "into it (pick a new or empty directory)")
    else:
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {**header, "n_tokens": 0, "shards": [], "complete": False}
        _write_json(directory / MANIFEST, manifest)
    n_shards = -(-len(documents) // docs_per_shard)
    store_dtype = np.dtype(dtype)
    todo = range(len(manifest["shards"]), n_shards)
    if progress and len(todo):
        from tqdm.auto import tqdm

        todo = tqdm(todo, desc="extract", unit="shard", initial=len(manifest["shards"]), total=n_shards)
    for i in todo:
        lo, hi = i * docs_per_shard, min(len(documents), (i + 1) * docs_per_shard)
        acts, positions = activations_fn(list(documents[lo:hi]))
        acts, positions = np.asarray(acts), np.asarray(positions)
        if acts.ndim != 2 or acts.shape[1] != d:
            raise ValueError(f"`activations_fn` must return activations [n, d={d}], got {acts.shape} for shard {i}")
        if positions.shape != (acts.shape[0], 2) or not np.issubdtype(positions.dtype, np.integer):
            raise ValueError(f"`activations_fn` must return integer positions [n, 2] with n = {acts.shape[0]}, got "
                             f"{positions.dtype} {positions.shape} for shard {i}")
        if not np.all(np.isfinite(acts)):
            raise ValueError(f"`activations_fn` returned NaN or infinite activations for shard {i}")
        index = positions.astype(np.int32) + np.array([lo, 0], np.int32)
        _write_atomic(directory / _shard_name(i), lambda p: _save_npy(p, acts.astype(store_dtype)))
        _write_atomic(directory / _index_name(i), lambda p: _save_npy(p, index))
        manifest["shards"].append({"file": _shard_name(i), "index": _index_name(i), "documents": [lo, hi],
                                   "n": int(acts.shape[0])})
        manifest["n_tokens"] = int(sum(s["n"] for s in manifest["shards"]))
        manifest["complete"] = i == n_shards - 1
        _write_json(directory / MANIFEST, manifest)
    return manifest


@functools.partial(jax.jit, static_argnums=(3,))
def _draw(key: jax.Array, steps: jax.Array, n: int, batch_size: int) -> jax.Array:
    """``[len(steps), batch_size]`` row numbers: ``randint(fold_in(key, t), (batch_size,), 0, n)`` per step."""
    return jax.vmap(lambda t: jax.random.randint(jax.random.fold_in(key, t), (batch_size,), 0, n))(steps)


class ActivationStore:
    """A finished store opened for reading; shards are memory-mapped (see the module docstring).

    Attributes:
      directory: the store.  manifest: its manifest.  shards: the memory-mapped shards.  offsets:
      ``[n_shards + 1]`` the first row of every shard, then ``n``.  d: activation width.  n: total rows.
    """

    def __init__(self, directory: str | os.PathLike, *, allow_incomplete: bool = False):
        directory = Path(directory)
        manifest = read_manifest(directory)
        if not manifest["complete"] and not allow_incomplete:
            raise StoreError(f"{directory} is an unfinished extraction ({len(manifest['shards'])} shards written); "
                             "run `extract` again with the same arguments to finish it, or pass allow_incomplete=True")
        shards = []
        for s in manifest["shards"]:
            a = np.load(directory / s["file"], mmap_mode="r", allow_pickle=False)
            if a.shape != (s["n"], manifest["d"]):
                raise StoreError(f"{directory / s['file']} has shape {a.shape}, the manifest says ({s['n']}, "
                                 f"{manifest['d']})")
            shards.append(a)
        self.directory, self.manifest, self.shards = directory, manifest, tuple(shards)
        self.offsets = np.concatenate([[0], np.cumsum([s["n"] for s in manifest["shards"]])]).astype(np.int64)

    @property
    def d(self) -> int:
        return int(self.manifest["d"])

    @property
    def n(self) -> int:
        return int(self.offsets[-1])

    def __len__(self) -> int:
        return self.n

    def rows(self, idx: Any) -> np.ndarray:
        """Rows ``idx`` (any integer array of global row numbers) as float32 ``[*idx.shape, d]``; reads
        each shard once, in increasing row order."""
        idx = np.asarray(idx)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"`idx` must be integer row numbers, got {idx.dtype}")
        flat = idx.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.n):
            raise ValueError(f"`idx` must be row numbers in [0, {self.n}), got values in [{flat.min()}, {flat.max()}]")
        order = np.argsort(flat, kind="stable")
        shard_of = np.searchsorted(self.offsets, flat[order], side="right") - 1
        out = np.empty((flat.size, self.d), np.float32)
        for s in np.unique(shard_of):
            sel = order[shard_of == s]
            out[sel] = self.shards[s][flat[sel] - self.offsets[s]]
        return out.reshape(idx.shape + (self.d,))

    def positions(self, idx: Any) -> np.ndarray:
        """``(document, token position)`` of rows ``idx``, int32 ``[*idx.shape, 2]``."""
        idx = np.asarray(idx)
        shard_of = np.searchsorted(self.offsets, idx.reshape(-1), side="right") - 1
        out = np.empty((idx.size, 2), np.int32)
        for s in np.unique(shard_of):
            sel = shard_of == s
            index = np.load(self.directory / self.manifest["shards"][s]["index"], mmap_mode="r")
            out[sel] = index[idx.reshape(-1)[sel] - self.offsets[s]]
        return out.reshape(idx.shape + (2,))

    def batch_indices(self, key: jax.Array, step: int, batch_size: int, n_steps: int = 1, *,
                      high: int | None = None) -> np.ndarray:
        """Row numbers of batches ``step .. step + n_steps - 1``, ``[n_steps, batch_size]``: batch ``t`` is
        ``randint(fold_in(key, t), (batch_size,), 0, high)`` (``high``: the first rows only, e.g. the
        training documents; default all ``n``)."""
        check_key("key", key)
        batch_size = positive_int("batch_size", batch_size)
        high = self.n if high is None else positive_int("high", high, maximum=self.n)
        steps = np.arange(step, step + positive_int("n_steps", n_steps))
        return np.asarray(_draw(key, steps, high, batch_size))

    def batch(self, key: jax.Array, step: int, batch_size: int, *, high: int | None = None) -> np.ndarray:
        """Batch ``step``: ``[batch_size, d]`` float32 rows (see :meth:`batch_indices`)."""
        return self.rows(self.batch_indices(key, step, batch_size, high=high)[0])

    def batches(self, key: jax.Array, start: int, n_steps: int, batch_size: int, *,
                high: int | None = None) -> np.ndarray:
        """Batches ``start .. start + n_steps - 1`` as ``[n_steps, batch_size, d]`` float32 (a
        :class:`jaxsparse.train.Task` ``feed``)."""
        return self.rows(self.batch_indices(key, start, batch_size, n_steps, high=high))

    def first_row(self, document: int) -> int:
        """The first row of ``document`` (rows are in document order), or ``n`` past the last one."""
        shard = min(int(document) // self.manifest["docs_per_shard"], len(self.shards))
        if shard == len(self.shards):
            return self.n
        index = np.load(self.directory / self.manifest["shards"][shard]["index"], mmap_mode="r")
        return int(self.offsets[shard] + np.searchsorted(index[:, 0], document))

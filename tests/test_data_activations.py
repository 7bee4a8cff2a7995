"""The activation store: exact round trip, a killed extraction resumed without duplicates or gaps,
refusals that keep the user's files, reproducible batches, bounded memory, and the text corpora."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from jaxsparse.data import activations as act
from jaxsparse.data import text

DOCS = [f"document {i} " + "word " * (i % 7 + 1) for i in range(23)]


def fake_activations(texts):
    """Deterministic stand-in for a model: one row per word, values from the word and its position."""
    rows, pos = [], []
    for j, t in enumerate(texts):
        words = t.split()
        for p, w in enumerate(words):
            rng = np.random.default_rng(sum(map(ord, w)) * 131 + p)
            rows.append(rng.normal(size=4).astype(np.float32))
            pos.append((j, p))
    return np.stack(rows), np.asarray(pos, np.int32)


def _extract(path, docs=DOCS, **kw):
    kw = {"model": "fake", "layer": 1, "d": 4, "text_source": "test", "docs_per_shard": 5, "progress": False, **kw}
    return act.extract(path, docs, fake_activations, **kw)


def test_round_trip_is_exact_and_positions_point_back_to_the_text(tmp_path):
    manifest = _extract(tmp_path / "s")
    expected, pos = fake_activations(DOCS)
    store = act.ActivationStore(tmp_path / "s")
    assert manifest["complete"] and store.n == manifest["n_tokens"] == len(expected)
    assert [s["documents"] for s in manifest["shards"]] == [[0, 5], [5, 10], [10, 15], [15, 20], [20, 23]]
    np.testing.assert_array_equal(store.rows(np.arange(store.n)), expected)
    np.testing.assert_array_equal(store.positions(np.arange(store.n)), pos)
    idx = np.array([[7, 0], [store.n - 1, 3]])
    np.testing.assert_array_equal(store.rows(idx), expected[idx])
    doc, p = store.positions(np.array([40]))[0]
    assert DOCS[doc].split()[p] == DOCS_WORDS[40]
    starts = [store.first_row(j) for j in range(len(DOCS) + 1)]
    assert starts == list(np.searchsorted(pos[:, 0], np.arange(len(DOCS) + 1)))


DOCS_WORDS = [w for d in DOCS for w in d.split()]


def test_float16_storage_reads_back_as_float32(tmp_path):
    _extract(tmp_path / "h", dtype="float16")
    store = act.ActivationStore(tmp_path / "h")
    assert store.shards[0].dtype == np.float16 and store.rows(np.arange(3)).dtype == np.float32
    np.testing.assert_allclose(store.rows(np.arange(store.n)), fake_activations(DOCS)[0], atol=2e-3)


def test_batches_are_a_function_of_the_key_and_step(tmp_path):
    _extract(tmp_path / "s")
    store = act.ActivationStore(tmp_path / "s")
    key = jax.random.key(3)
    many = store.batches(key, 10, 4, 8)
    assert many.shape == (4, 8, 4)
    for t in range(4):
        np.testing.assert_array_equal(store.batch(key, 10 + t, 8), many[t])
        idx = np.asarray(jax.random.randint(jax.random.fold_in(key, 10 + t), (8,), 0, store.n))
        np.testing.assert_array_equal(many[t], store.rows(idx))
    assert not np.array_equal(many[0], many[1])
    assert store.batch_indices(key, 0, 64, 3, high=10).max() < 10
    with pytest.raises(ValueError, match="high"):
        store.batches(key, 0, 1, 8, high=store.n + 1)


def test_refusals_keep_every_file(tmp_path):
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(act.StoreError, match="not empty"):
        _extract(tmp_path / "user")
    assert (tmp_path / "user" / "notes.txt").read_text() == "mine"
    _extract(tmp_path / "s")
    before = sorted(os.listdir(tmp_path / "s"))
    with pytest.raises(act.StoreError, match="layer"):
        _extract(tmp_path / "s", layer=2)
    with pytest.raises(act.StoreError, match="documents_sha256"):
        _extract(tmp_path / "s", docs=DOCS[:-1] + ["changed"])
    assert sorted(os.listdir(tmp_path / "s")) == before
    with pytest.raises(act.StoreError, match="manifest.json"):
        act.ActivationStore(tmp_path / "user")
    with pytest.raises(ValueError, match="dtype"):
        _extract(tmp_path / "t", dtype="int8")
    with pytest.raises(ValueError, match="activations_fn"):
        act.extract(tmp_path / "u", DOCS, lambda t: (np.zeros((3, 5)), np.zeros((3, 2), int)), model="m", layer=0,
                    d=4, text_source="x", progress=False)


_KILLED = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_data_activations import DOCS, fake_activations
    from jaxsparse.data import activations as act

    def slow(texts):
        time.sleep(0.3)
        return fake_activations(texts)

    act.extract({path!r}, DOCS, slow, model="fake", layer=1, d=4, text_source="test", docs_per_shard=5,
                progress=False)
""")


def test_a_killed_extraction_resumes_without_duplicates_or_gaps(tmp_path):
    path = tmp_path / "k"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED.format(tests=os.path.dirname(__file__), path=str(path))])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if (path / "manifest.json").is_file() and len(json.loads((path / "manifest.json").read_text())["shards"]) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    partial = json.loads((path / "manifest.json").read_text())
    assert 2 <= len(partial["shards"]) < 5 and not partial["complete"]
    with pytest.raises(act.StoreError, match="unfinished"):
        act.ActivationStore(path)
    _extract(path)
    _extract(tmp_path / "ref")
    resumed, ref = act.ActivationStore(path), act.ActivationStore(tmp_path / "ref")
    assert resumed.manifest == ref.manifest
    np.testing.assert_array_equal(resumed.rows(np.arange(resumed.n)), ref.rows(np.arange(ref.n)))
    np.testing.assert_array_equal(resumed.positions(np.arange(resumed.n)), ref.positions(np.arange(ref.n)))


def test_streaming_a_store_keeps_anonymous_memory_bounded(tmp_path):
    """Batches from a 64 MiB store: the process's anonymous memory grows by far less than the store."""
    d, per_doc = 256, 2048
    docs = [f"doc {i}" for i in range(32)]

    def big(texts):
        rows = np.ones((len(texts) * per_doc, d), np.float32)
        pos = np.stack([np.repeat(np.arange(len(texts)), per_doc), np.tile(np.arange(per_doc), len(texts))], 1)
        return rows, pos

    act.extract(tmp_path / "big", docs, big, model="m", layer=0, d=d, text_source="x", docs_per_shard=4,
                progress=False)
    store = act.ActivationStore(tmp_path / "big")
    assert store.n * d * 4 == 64 * 2**20
    key = jax.random.key(0)
    store.batches(key, 0, 2, 256)  # warm up (compile the index draw)

    def anon_kib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("RssAnon"))

    before = anon_kib()
    for step in range(0, 400, 4):
        b = store.batches(key, step, 4, 256)
    assert b.shape == (4, 256, d)
    assert anon_kib() - before < 16 * 1024  # < 16 MiB, a quarter of the store, after reading 100 MiB of rows


def test_paragraphs_and_corpora(tmp_path):
    text_ = "short\n\n  A paragraph   that is long enough\n to keep.  \n\n" + "x" * 30
    assert text.paragraphs(text_, min_chars=20, max_chars=25) == ["A paragraph that is long ", "x" * 25]
    (tmp_path / "a.txt").write_text(text_ + "\n\nA paragraph that is long enough to keep.")
    assert text.text_files([tmp_path / "a.txt"], min_chars=20) == ["A paragraph that is long enough to keep.",
                                                                   "x" * 30]
    docs = text.docstring_corpus(("json",), min_chars=40, max_docs=5)
    assert len(docs) == 5 and len(set(docs)) == 5 and all(len(d) >= 40 for d in docs)
    assert docs == text.docstring_corpus(("json",), min_chars=40, max_docs=5)
    with pytest.raises(ValueError, match="packages"):
        text.docstring_corpus(("no_such_package_xyz",))
    with pytest.raises(FileNotFoundError, match="paths"):
        text.text_files([tmp_path / "missing.txt"])
    assert text.describe(("numpy",)).startswith("docstrings of numpy ")

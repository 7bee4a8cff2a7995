"""The corpus, its MiniLM activation store (extracted once, resumable) and the text snippet of a token."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse.data import activations, text
from jaxsparse.experiments.llm_saes.config import LLMSAEConfig
from jaxsparse.models import bert

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EXTRACT_BATCH = 32


def corpus(config: LLMSAEConfig) -> tuple[list[str], str]:
    """``(documents, description)`` of the configured corpus."""
    if config.text_files:
        docs = text.text_files(config.text_files, max_docs=config.max_docs)
        return docs, "text files " + ", ".join(os.path.basename(p) for p in config.text_files)
    return text.docstring_corpus(config.packages, max_docs=config.max_docs), text.describe(config.packages)


def store_dir(config: LLMSAEConfig, documents: list[str]) -> Path:
    """The store of ``config`` (see ``LLMSAEConfig.store``)."""
    if config.store:
        return Path(config.store)
    cache = Path(os.environ.get("JAXSPARSE_CACHE", Path.home() / ".cache" / "jaxsparse"))
    tag = f"{activations.fingerprint(documents)[:12]}-{config.store_dtype}"
    return cache / "activations" / f"all-MiniLM-L6-v2-layer{config.layer}-len{config.max_length}-{tag}"


@functools.lru_cache(maxsize=1)
def minilm():
    """``(params, bert_config, tokenizer)`` of the shipped all-MiniLM-L6-v2 (loaded once per process)."""
    params, cfg = bert.load()
    return params, cfg, bert.tokenizer()


@functools.lru_cache(maxsize=8)
def _hidden(cfg, layer: int):
    return jax.jit(lambda p, ids, mask: bert.apply(p, cfg, ids, mask)[layer])


def residual_fn(layer: int, max_length: int):
    """``fn(texts) -> (acts [n, 384], positions [n, 2])``: MiniLM's residual stream after block ``layer`` at
    every token but [CLS], [SEP] and padding (the store's ``activations_fn``)."""
    params, cfg, tok = minilm()
    run = _hidden(cfg, layer)

    def fn(texts):
        rows, pos = [], []
        for lo in range(0, len(texts), EXTRACT_BATCH):
            ids, mask = bert.encode(tok, texts[lo:lo + EXTRACT_BATCH], max_length=max_length)
            h = np.asarray(run(params, jnp.asarray(ids), jnp.asarray(mask)))
            keep = mask.astype(bool)
            keep[:, 0] = False  # [CLS]
            keep[np.arange(len(ids)), mask.sum(1) - 1] = False  # [SEP]
            b, t = np.nonzero(keep)
            rows.append(h[b, t])
            pos.append(np.stack([b + lo, t], axis=1))
        return np.concatenate(rows), np.concatenate(pos).astype(np.int32)

    return fn


def ensure_store(config: LLMSAEConfig, *, progress: bool = True) -> tuple[activations.ActivationStore, list[str]]:
    """The finished store of ``config`` (extracting or finishing it first) and its documents."""
    docs, source = corpus(config)
    path = store_dir(config, docs)
    manifest = activations.read_manifest(path) if (path / activations.MANIFEST).is_file() else None
    if manifest is None or not manifest["complete"]:
        activations.extract(path, docs, residual_fn(config.layer, config.max_length), model=MODEL, layer=config.layer,
                            d=bert_width(), text_source=source, dtype=config.store_dtype, docs_per_shard=64,
                            progress=progress)
    return activations.ActivationStore(path), docs


def bert_width() -> int:
    return int(minilm()[1].hidden_size)


def snippets(documents: list[str], positions: np.ndarray, *, max_length: int, window: int) -> list[str]:
    """The text of token ``p`` of document ``j`` with ``window`` tokens each side, for every ``(j, p)`` of
    ``positions [n, 2]`` (character spans from the tokenizer's offsets)."""
    tok = minilm()[2]
    out = []
    for j, p in np.asarray(positions):
        enc = tok.encode(documents[j])
        last = min(max(i for i, s in enumerate(enc.special_tokens_mask) if s == 0), max_length - 2)
        lo, hi = max(1, p - window), min(last, p + window)
        out.append(documents[j][enc.offsets[lo][0]:enc.offsets[hi][1]])
    return out

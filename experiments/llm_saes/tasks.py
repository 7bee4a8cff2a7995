"""The trained encoders of ``llm-saes`` as engine tasks fed from the activation store."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxsparse import eval as metrics
from jaxsparse.data.activations import ActivationStore
from jaxsparse.experiments.llm_saes import store as store_lib
from jaxsparse.experiments.llm_saes.config import LLMSAEConfig
from jaxsparse.losses import reconstruction_l1
from jaxsparse.models import encoders as enc_lib
from jaxsparse.models import sae
from jaxsparse.train import ConfigError, Task

DATA_SEED = 0  # batches: fold_in(key(DATA_SEED), step), the same for every seed (seeds differ in their init)
SCALE_ROWS = 8192


class Data(NamedTuple):
    """The store, its documents, the training rows ``[0, n_train_rows)``, the activation scale ``c``
    (``x / c`` has mean squared norm ``d`` on the training rows) and the held-out rows scored."""

    store: ActivationStore
    documents: list[str]
    n_train_rows: int
    scale: float
    eval_rows: np.ndarray


@functools.lru_cache(maxsize=4)
def data(config: LLMSAEConfig, progress: bool = True) -> Data:
    """The experiment's data (extracting the store on first use)."""
    store, docs = store_lib.ensure_store(config, progress=progress)
    n_train_docs = int(round(len(docs) * (1 - config.eval_fraction)))
    n_train = store.first_row(n_train_docs)
    if n_train == 0 or store.n - n_train < config.n_eval:
        raise ConfigError(f"`n_eval`={config.n_eval} held-out tokens: the store has {store.n} tokens, {n_train} of "
                          "them in the training documents (raise max_docs or eval_fraction, or lower n_eval)")
    sample = store.batch(jax.random.key(12345), 0, SCALE_ROWS, high=n_train)
    scale = float(np.sqrt(np.mean(np.sum(sample.astype(np.float64) ** 2, axis=1)) / store.d))
    eval_rows = np.linspace(n_train, store.n - 1, config.n_eval).round().astype(np.int64)
    return Data(store, docs, n_train, scale, eval_rows)


def encoder_specs(config: LLMSAEConfig) -> list[tuple[str, str, enc_lib.Encoder, dict[str, Any]]]:
    """``(label, family, encoder, flops kwargs)`` of every configured encoder."""
    specs = []
    for name in config.encoders:
        if name == "topk":
            specs.append((f"TopK-{config.topk_k}", name, enc_lib.make_encoder("topk", k=config.topk_k), {}))
        elif name == "mlp":
            h = config.mlp_hidden
            specs.append((f"MLP-{h}", name, enc_lib.make_encoder("mlp", hidden=h), {"hidden": h}))
        else:
            specs.append(({"sae": "SAE", "jumprelu": "JumpReLU"}[name], name, enc_lib.make_encoder(name), {}))
    return specs


def loss(encoder: enc_lib.Encoder, lam: float, params, x, key):
    """:func:`jaxsparse.losses.reconstruction_l1` of ``x [B, d]`` and its reconstruction by ``params``."""
    z = encoder.apply(params["encoder"], x)
    return reconstruction_l1(x, sae.decode(params["decoder"], z), z, lam)


def code_scores(x: np.ndarray, z: np.ndarray, decoder) -> dict[str, float]:
    """FVU of ``z``'s reconstruction by ``decoder``, L0 (mean nonzero latents per token) and the fraction of
    latents never active, for tokens ``x [n, d]`` and codes ``z [n, N]``."""
    x_hat = np.asarray(sae.decode(decoder, z))
    return {"fvu": metrics.fvu(x, x_hat), "l0": metrics.l0(z), "dead_fraction": metrics.dead_fraction(z)}


def scores(encoder: enc_lib.Encoder, x: np.ndarray, params) -> dict[str, float]:
    """:func:`code_scores` of ``encoder``'s codes of ``x``."""
    return code_scores(x, np.asarray(jax.jit(encoder.apply)(params["encoder"], x)), params["decoder"])


def build(config: LLMSAEConfig) -> dict[str, Task]:
    """One task per encoder: Adam on ``reconstruction_l1`` with a learned unit-norm decoder, fed
    ``batch_size`` training tokens per step from the store."""
    d = data(config)
    m = d.store.d
    n = config.expansion * m
    x_eval = d.store.rows(d.eval_rows) / d.scale
    key = jax.random.key(DATA_SEED)

    def feed(start, n_steps):
        return d.store.batches(key, start, n_steps, config.batch_size, high=d.n_train_rows) / np.float32(d.scale)

    tasks = {}
    for label, _, encoder, _ in encoder_specs(config):
        def init(k, source, encoder=encoder):
            k_enc, k_dec = jax.random.split(k)
            return {"encoder": encoder.init(k_enc, m, n), "decoder": sae.init_decoder(k_dec, n, m)}

        tasks[label] = Task(init=init, loss_fn=functools.partial(loss, encoder, config.lam),
                            optimizer=optax.adam(config.lr), data_fn=None, feed=feed, project=sae.project_sae,
                            evaluate=lambda params, source, encoder=encoder: scores(encoder, x_eval, params))
    return tasks

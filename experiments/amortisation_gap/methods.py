"""The methods of the amortisation-gap experiment: trained encoders, sparse coding, and solvers.

Every method produces, for all seeds at once (leading seed axis ``S``), test codes
``z_hat [S, n_test, N]``, the dictionary it decodes with (``[S, N, M]``), its inference FLOPs per
sample and its training FLOPs (``jaxsparse.eval.flops``), and wall times. Training uses the
engine's pieces (:class:`jaxsparse.train.Task`, ``init_sweep``, ``sweep_chunk``): one jitted
``lax.scan`` over all steps, ``vmap``-ped over seeds, full batch.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.amortisation_gap.config import AmortisationGapConfig
from jaxsparse.data import sparse_coding_data
from jaxsparse.models import encoders as enc_lib
from jaxsparse.models import sparse_coding as sc
from jaxsparse.models.sae import Encoder, init_decoder, project_sae
from jaxsparse.train import Task
from jaxsparse.train.sweep import init_sweep, sweep_chunk

PyTree = Any


class Method(NamedTuple):
    """One method's outputs for all seeds.

    Attributes:
      regime, name: e.g. ``("unknown", "SAE+ITO")``.  family: plot group (``encoder``, ``adam``,
        ``fista``, ``fista-warm``, ``omp``, ``homotopy``, ``peer``).
      codes: ``[S, n_test, N]`` test codes.  dictionary: ``[S, N, M]`` decoder used (learned or true).
      inference_flops: per sample (``None`` where no closed form, e.g. homotopy).
      training_flops: total over training (0 when nothing is trained).
      train_s, infer_s: wall seconds (all seeds together; training includes compilation).
      learned_dictionary: whether ``dictionary`` was learned (scored by dictionary MCC).
    """

    regime: str
    name: str
    family: str
    codes: Any
    dictionary: Any
    inference_flops: int | None
    training_flops: int
    train_s: float
    infer_s: float
    learned_dictionary: bool


def make_source(config: AmortisationGapConfig, key: jax.Array) -> dict[str, jax.Array]:
    """One seed's data: train and test sets drawn on one random unit-norm dictionary."""
    d = config.data
    k_train, k_test = jax.random.split(key)
    x, z, dictionary = sparse_coding_data(k_train, d.n_train, d.n_latents, d.n_features, d.k)
    x_test, z_test, _ = sparse_coding_data(k_test, d.n_test, d.n_latents, d.n_features, d.k, dictionary=dictionary)
    return {"x": x, "z": z, "x_test": x_test, "z_test": z_test, "dictionary": dictionary}


def full_batch(source: dict[str, jax.Array], step: jax.Array) -> dict[str, jax.Array]:
    """Full-batch training: every step sees the whole training set."""
    return source


def column_cosine(z_true: jax.Array, z_hat: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Mean over latents of the cosine similarity of the columns ``z_true[:, i]``, ``z_hat[:, i]``."""
    num = jnp.sum(z_true * z_hat, axis=0)
    den = jnp.maximum(jnp.linalg.norm(z_true, axis=0) * jnp.linalg.norm(z_hat, axis=0), eps)
    return jnp.mean(num / den)


def autoencoder_loss(regime: str, encoder: Encoder, lam: float, params: PyTree, batch: dict, key: jax.Array):
    """Paper 1's objectives. ``unknown``/``known_d``: ``mean (x - z D)^2 + lam mean |z|`` with the
    learned / true ``D``; ``known_z``: ``-column_cosine(z_true, z)`` (the paper's regression loss)."""
    z = encoder.apply(params["encoder"], batch["x"])
    if regime == "known_z":
        cos = column_cosine(batch["z"], z)
        return -cos, {"cosine": cos}
    d = params["decoder"]["w"] if regime == "unknown" else batch["dictionary"]
    mse = jnp.mean((batch["x"] - z @ d) ** 2)
    l1 = jnp.mean(jnp.abs(z))
    return mse + lam * l1, {"mse": mse, "l1": l1}


def project_decoder(params: PyTree) -> PyTree:
    """Unit-norm decoder rows (when a decoder is learned)."""
    return project_sae(params) if "decoder" in params else params


def encoder_specs(config: AmortisationGapConfig, regime: str) -> list[tuple[str, str, Encoder, dict]]:
    """``(label, flops method, encoder, flops kwargs)`` for every configured encoder."""
    m = config.methods
    bias = True if regime == "known_z" else m.bias
    specs = []
    for name in (m.encoders if regime == "unknown" else m.known_encoders):
        if name == "mlp":
            for h in m.mlp_hidden:
                specs.append((f"MLP-{h}", "mlp", enc_lib.make_encoder("mlp", hidden=h, bias=bias), {"hidden": h}))
        elif name == "topk":
            specs.append((f"TopK-{m.topk_k}", "topk", enc_lib.make_encoder("topk", k=m.topk_k, bias=bias), {}))
        elif name == "lista":
            specs.append((f"LISTA-{m.lista_iters}", "lista", enc_lib.make_encoder("lista", n_iter=m.lista_iters),
                          {"n_iter": m.lista_iters}))
        else:
            specs.append(({"sae": "SAE", "jumprelu": "JumpReLU"}[name], name, enc_lib.make_encoder(name, bias=bias), {}))
    return specs


def encoder_task(config: AmortisationGapConfig, regime: str, encoder: Encoder) -> Task:
    """The engine task training ``encoder`` in ``regime`` (a decoder is learned only when ``unknown``)."""
    n, m = config.data.n_latents, config.data.n_features

    def init(key):
        k_enc, k_dec = jax.random.split(key)
        params = {"encoder": encoder.init(k_enc, m, n)}
        if regime == "unknown":
            params["decoder"] = {"w": init_decoder(k_dec, n, m)["w"]}
        return params

    return Task(init=init, loss_fn=partial(autoencoder_loss, regime, encoder, config.methods.lam),
                optimizer=optax.adam(config.methods.lr), data_fn=full_batch,
                make_source=partial(make_source, config), project=project_decoder)


def sparse_coding_task(config: AmortisationGapConfig) -> Task:
    """Sparse coding: free exp-codes per training sample and a dictionary, learned jointly (paper 1)."""
    d = config.data
    return Task(
        init=lambda key: sc.init_sparse_coding(key, d.n_train, d.n_features, d.n_latents),
        loss_fn=lambda params, batch, key: sc.sparse_coding_loss(params, batch["x"], lam=config.methods.lam),
        optimizer=optax.adam(config.methods.lr), data_fn=full_batch,
        make_source=partial(make_source, config), project=sc.project_sparse_coding)


def seeds_of(config: AmortisationGapConfig) -> jax.Array:
    """``int32 [S]`` seed values."""
    return jnp.asarray(config.train.seed_values, jnp.int32)


def sources_of(config: AmortisationGapConfig) -> dict[str, jax.Array]:
    """Stacked data of all seeds (keys as the engine derives them: ``fold_in(key(seed), 0)``)."""
    task = Task(init=lambda k: {}, loss_fn=None, optimizer=optax.identity(), data_fn=full_batch,
                make_source=partial(make_source, config))
    return jax.jit(jax.vmap(lambda s: task.make_source(jax.random.fold_in(jax.random.key(s), 0))))(seeds_of(config))


def train(task: Task, config: AmortisationGapConfig, n_steps: int) -> tuple[PyTree, dict[str, np.ndarray], float]:
    """Train every seed for ``n_steps`` full-batch steps: ``(params [S, ...], final metrics, wall s)``."""
    t0 = time.perf_counter()

    @jax.jit
    def run(seeds):
        states, sources = init_sweep(task, seeds)
        states, metrics = sweep_chunk(task, n_steps)(states, sources, None, None)
        return states.params, jax.tree.map(lambda v: v[:, -1], metrics)

    params, metrics = jax.block_until_ready(run(seeds_of(config)))
    if not np.all(np.isfinite(np.asarray(metrics["loss"]))):
        raise FloatingPointError(f"non-finite final loss {np.asarray(metrics['loss'])}")
    return params, jax.tree.map(np.asarray, metrics), time.perf_counter() - t0


def timed(fn: Callable, *args) -> tuple[Any, float]:
    """``(fn(*args), wall seconds)`` with the result on device finished."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def per_seed(fn: Callable) -> Callable:
    """``jit(vmap(fn))`` over the leading seed axis of every argument."""
    return jax.jit(jax.vmap(fn))

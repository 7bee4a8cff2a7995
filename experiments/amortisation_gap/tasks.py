"""The trained methods of the amortisation-gap experiment as engine tasks (``build``).

Every method is a :class:`jaxsparse.train.Task` trained by :func:`jaxsparse.train.fit` into
``methods/<regime>/<label>/`` (checkpoints, ``metrics.jsonl``, ``results.json``), all seeds in one
vmapped program, full batch:

- ``<regime>/<encoder>``: encoders (SAE, TopK, JumpReLU, MLP-h, LISTA) on
  :func:`jaxsparse.losses.reconstruction_l1` with the true (``known_d``) or a learned unit-norm
  (``unknown``) decoder, or regressed on the true codes by the negative column cosine (``known_z``,
  the paper's loss);
- ``unknown/SC``: sparse coding, free exp-codes per training sample learned jointly with ``D``;
- ``unknown/DL``: batch dictionary learning (FISTA codes + block-coordinate atom updates, a
  non-gradient ``update``) at the per-sample Lasso weight ``methods.dl_lam``.

Each task's ``evaluate`` scores one seed's trained parameters on the test set (what
``jaxsparse eval`` re-scores at every kept checkpoint); the experiment's analysis
(:mod:`experiments.amortisation_gap.analysis`) adds inference-time methods on the trained models.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig
from jaxsparse.experiments.common import full_batch, sparse_source
from jaxsparse import eval as metrics
from jaxsparse import solvers

from jaxsparse.losses import lasso_lam, reconstruction_l1
from jaxsparse.models import encoders as enc_lib
from jaxsparse.models import sparse_coding as sc
from jaxsparse.models.matmul import to_feature_major
from jaxsparse.models.dictionary_learning import dictionary_learning_step, init_dictionary_learning
from jaxsparse.models.sae import Encoder, affine, init_decoder, normalize_rows, project_sae, use_feature_major
from jaxsparse.train import Task

PyTree = Any
EVAL_FISTA_ITERS = 300  # test codes of a learned dictionary in a task's `evaluate` (the analysis adds more)


def column_cosine(z_true: jax.Array, z_hat: jax.Array, eps: float = 1e-8, sample_axis: int = 0) -> jax.Array:
    """Mean over latents of the cosine similarity of the columns ``z_true[:, i]``, ``z_hat[:, i]``
    (codes ``[B, N]``; transposed codes ``[N, B]`` with ``sample_axis=1``)."""
    num = jnp.sum(z_true * z_hat, axis=sample_axis)
    den = jnp.maximum(jnp.linalg.norm(z_true, axis=sample_axis) * jnp.linalg.norm(z_hat, axis=sample_axis), eps)
    return jnp.mean(num / den)


def code_scores(codes: np.ndarray, dictionary: np.ndarray, source: dict[str, np.ndarray], *,
                learned_dictionary: bool) -> dict[str, float]:
    """One seed's test scores: latent MCC, FVU of ``codes @ dictionary``, L0 (|z| > 1e-3), and the
    dictionary MCC when the dictionary was learned."""
    codes, dictionary = np.asarray(codes), np.asarray(dictionary)
    row = {"mcc": metrics.mcc(source["z_test"], codes)["mcc"],
           "fvu": metrics.fvu(source["x_test"], codes @ dictionary),
           "l0": metrics.l0(np.where(np.abs(codes) > 1e-3, codes, 0.0))}
    if learned_dictionary:
        row["dictionary_mcc"] = metrics.dictionary_mcc(source["dictionary"], dictionary)["mcc"]
    return row


def encoder_loss(regime: str, encoder: Encoder, lam: float, params: PyTree, batch: dict, key: jax.Array, *,
                 feature_major: bool | str = False):
    """``unknown``/``known_d``: :func:`jaxsparse.losses.reconstruction_l1` with the learned / true ``D``;
    ``known_z``: ``-column_cosine(z_true, z)`` (the paper's regression loss).

    ``feature_major``: the same loss computed on transposed activations (``x^T [M, B]``, the encoder's
    ``apply_t``, ``x_hat^T = D^T z^T``), equal up to float rounding and faster on CPU for narrow layers
    (:func:`jaxsparse.models.matmul.matmul_t`); ``"auto"``: where the encoder has that form and
    :func:`jaxsparse.models.matmul.prefers_feature_major` holds for its parameters (when traced).
    """
    feature_major = use_feature_major(feature_major, encoder, params)
    layout = to_feature_major if feature_major else (lambda a: a)
    x = layout(batch["x"])
    z = (encoder.apply_t if feature_major else encoder.apply)(params["encoder"], x)
    if regime == "known_z":
        cos = column_cosine(layout(batch["z"]), z, sample_axis=1 if feature_major else 0)
        return -cos, {"cosine": cos}
    d = params["decoder"]["w"] if regime == "unknown" else batch["dictionary"]
    x_hat = affine({"w": d}, z, feature_major=feature_major)
    return reconstruction_l1(x, x_hat, z, lam, latent_axis=0 if feature_major else -1)


def encoder_evaluate(regime: str, encoder: Encoder, params: PyTree, source: dict[str, np.ndarray]) -> dict[str, float]:
    """Test scores of one seed's trained encoder (decoding with its learned or the true dictionary)."""
    codes = encoder.apply(params["encoder"], source["x_test"])
    d = params["decoder"]["w"] if regime == "unknown" else source["dictionary"]
    return code_scores(codes, d, source, learned_dictionary=regime == "unknown")


def encoder_specs(config: AmortisationGapConfig, regime: str) -> list[tuple[str, str, Encoder, dict]]:
    """``(label, flops method, encoder, flops kwargs)`` for every configured encoder of ``regime``."""
    m = config.methods
    bias = True if regime == "known_z" else m.bias
    specs = []
    for name in (m.encoders if regime == "unknown" else m.known_encoders):
        if name == "mlp":
            for h in (m.mlp_hidden if regime == "unknown" else m.known_mlp_hidden):
                specs.append((f"MLP-{h}", "mlp", enc_lib.make_encoder("mlp", hidden=h, bias=bias), {"hidden": h}))
        elif name == "topk":
            specs.append((f"TopK-{m.topk_k}", "topk", enc_lib.make_encoder("topk", k=m.topk_k, bias=bias), {}))
        elif name == "lista":
            specs.append((f"LISTA-{m.lista_iters}", "lista", enc_lib.make_encoder("lista", n_iter=m.lista_iters),
                          {"n_iter": m.lista_iters}))
        else:
            specs.append(({"sae": "SAE", "jumprelu": "JumpReLU"}[name], name, enc_lib.make_encoder(name, bias=bias), {}))
    return specs


def training_signals(source: dict[str, jax.Array], step: jax.Array) -> dict[str, jax.Array]:
    """Full batch of the training signals only, ``{"x": [n_train, M]}``: the unknown regime's batch,
    every leaf a sample axis, so that the engine may cut it into microbatches."""
    return {"x": source["x"]}


def encoder_task(config: AmortisationGapConfig, regime: str, encoder: Encoder) -> Task:
    """The task training ``encoder`` in ``regime`` (a decoder is learned only when ``unknown``).

    In the unknown regime the loss is a mean over samples of the signals alone, so the engine may
    compute its gradient in slices of the batch (``microbatches="auto"``: on CPU, the MLP-256's
    ``[1024, 256]`` hidden layer in 4 slices of 256 samples, 1.2x faster per step; the same update up
    to float rounding). The known-Z loss (a column cosine over the batch) cannot be sliced, and the
    known-D batch carries the true dictionary, so those train whole.

    On CPU the loss of an encoder whose layers are at most 64 wide runs on transposed activations
    (``feature_major="auto"`` in :func:`encoder_loss`): every encoder here but MLP-256, whose step
    is 1.1x slower that way. ``python benchmarks/feature_major.py`` measures both layouts.
    """
    n, m = config.data.n_latents, config.data.n_features

    def init(key, source):
        k_enc, k_dec = jax.random.split(key)
        params = {"encoder": encoder.init(k_enc, m, n)}
        if regime == "unknown":
            params["decoder"] = {"w": init_decoder(k_dec, n, m)["w"]}
        return params

    unknown = regime == "unknown"
    return Task(init=init, loss_fn=partial(encoder_loss, regime, encoder, config.methods.lam, feature_major="auto"),
                optimizer=optax.adam(config.methods.lr), data_fn=training_signals if unknown else full_batch,
                microbatches="auto" if unknown else 1,
                make_source=partial(sparse_source, config.data), project=project_sae if unknown else None,
                evaluate=partial(encoder_evaluate, regime, encoder),
                steps=config.train.steps if unknown else config.methods.steps_known)


def dictionary_evaluate(lam: float, dictionary_of, params: PyTree, source: dict[str, np.ndarray]) -> dict[str, float]:
    """Test scores of a learned dictionary with codes by FISTA at its own training Lasso weight ``lam``."""
    d = dictionary_of(params)
    codes = solvers.fista(d, jnp.asarray(source["x_test"]), lam=lam, n_iter=EVAL_FISTA_ITERS, nonneg=True)
    return code_scores(codes, d, source, learned_dictionary=True)


def sparse_coding_task(config: AmortisationGapConfig) -> Task:
    """Sparse coding: free exp-codes per training sample and a dictionary, learned jointly (paper 1)."""
    d, m = config.data, config.methods
    return Task(
        init=lambda key, source: sc.init_sparse_coding(key, d.n_train, d.n_features, d.n_latents),
        loss_fn=lambda params, batch, key: sc.sparse_coding_loss(params, batch["x"], lam=m.lam),
        optimizer=optax.adam(m.lr), data_fn=full_batch, make_source=partial(sparse_source, config.data),
        project=sc.project_sparse_coding,
        evaluate=partial(dictionary_evaluate, lasso_lam(m.lam, d.n_latents, d.n_features), lambda p: p["decoder"]["w"]),
        steps=config.train.steps)


def dictionary_learning_task(config: AmortisationGapConfig) -> Task:
    """Our batch dictionary learning at Lasso weight ``methods.dl_lam``, ``methods.dl_iters`` outer steps
    of ``methods.dl_inner`` warm-started FISTA iterations (:mod:`jaxsparse.models.dictionary_learning`)."""
    m = config.methods

    def update(params, batch, key):
        return dictionary_learning_step(params, batch["x"], lam=m.dl_lam, inner_iter=m.dl_inner)

    return Task(init=lambda key, source: init_dictionary_learning(key, source["x"], config.data.n_latents),
                loss_fn=None, optimizer=optax.identity(), data_fn=full_batch, make_source=partial(sparse_source, config.data),
                update=update, evaluate=partial(dictionary_evaluate, m.dl_lam, learned_dictionary),
                steps=m.dl_iters)


def learned_dictionary(params: PyTree) -> jax.Array:
    """The unit-norm dictionary ``[..., N, M]`` of a trained model (SAE/encoder decoder, SC or DL)."""
    if "dictionary" in params:
        return normalize_rows(params["dictionary"])
    return params["decoder"]["w"]


def training_flops(config: AmortisationGapConfig) -> dict[str, int]:
    """``{"<regime>/<label>": FLOPs}`` of training each method of ``config`` (all steps, one seed;
    :func:`jaxsparse.eval.flops`)."""
    d, m = config.data, config.methods
    sizes = {"n_latents": d.n_latents, "n_features": d.n_features, "phase": "training", "n_samples": d.n_train}
    out = {}
    for regime in m.regimes:
        steps = config.train.steps if regime == "unknown" else m.steps_known
        for label, kind, _, kw in encoder_specs(config, regime):
            out[f"{regime}/{label}"] = metrics.flops(kind, **sizes, **kw, n_steps=steps, learn_decoder=regime == "unknown")
        if regime == "unknown":
            out["unknown/SC"] = metrics.flops("adam_codes", **sizes, n_iter=1, n_steps=config.train.steps)
            if m.dl_iters:
                out["unknown/DL"] = metrics.flops("alternating", **sizes, n_iter=m.dl_inner, n_steps=m.dl_iters)
    return out


def build(config: AmortisationGapConfig) -> dict[str, Task]:
    """``{"<regime>/<label>": Task}`` for every trained method of ``config``; each task's ``cost`` is its
    training FLOPs (DL's raised above those of the methods with less than twice its FLOPs, see the
    code), so methods trained side by side (``--jobs 2``) start with the longest (the unknown
    regime's MLP-256) and end together."""
    tasks = {}
    for regime in config.methods.regimes:
        for label, _, encoder, _ in encoder_specs(config, regime):
            tasks[f"{regime}/{label}"] = encoder_task(config, regime, encoder)
        if regime == "unknown":
            tasks["unknown/SC"] = sparse_coding_task(config)
            if config.methods.dl_iters:
                tasks["unknown/DL"] = dictionary_learning_task(config)
    cost = {method: float(flops) for method, flops in training_flops(config).items()}
    if "unknown/DL" in cost:
        # DL's FLOPs (1.6e10 per seed) understate its time: 1000 steps of 20 FISTA iterations and 16
        # sequential atom updates took 8-9 s on one core, the known regimes' SAEs (2.8e10) 5-6 s; and
        # the analysis fits Adam codes to its dictionary (4 s), which should not wait at the end of
        # the run. It goes before every method cheaper than twice its FLOPs.
        cost["unknown/DL"] = 1.01 * max(c for c in cost.values() if c < 2 * cost["unknown/DL"])
    return {method: task._replace(cost=cost[method]) for method, task in tasks.items()}

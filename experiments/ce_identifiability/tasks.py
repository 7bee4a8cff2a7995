"""The tasks of the cross-entropy identifiability experiment: one per objective × d × κ, plus sprites.

A run's source holds its frozen mixing ``g`` and its cluster centres (both drawn from the run's
seed, as the official code draws them per run). A step draws ``batch_size`` instance labels
``i ~ U{0, .., n_instances - 1}``, their clusters ``c = i mod n_clusters``, fresh latents
``z ~ vMF(centre_c, κ)`` and observations ``x = g(z)``, all from ``fold_in(key, step)`` (so a
resumed run sees the same batches), and takes an Adam step on the method's objective
(:func:`jaxsparse.losses.linear_head_cross_entropy` or :func:`jaxsparse.losses.info_nce`).

``sprites-shape`` trains a conv classifier (the SlowVAE encoder's trunk, :func:`jaxsparse.models.vae.features`,
and a linear head with bias) on the shape of procedural sprites, and scores the linear readout of
every other factor from its 256 features against the same readout from raw pixels.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.data import hypersphere, sprites
from jaxsparse.eval import linear_r2
from jaxsparse.experiments.ce_identifiability.config import CEConfig
from jaxsparse.losses import info_nce, linear_head_cross_entropy
from jaxsparse.models import mlp, vae
from jaxsparse.train import Task

ENCODER_SLOPE = 0.01  # LeakyReLU of the encoder (PyTorch's default, as the official code)
MIXING_SLOPE = 0.2  # LeakyReLU between the mixing's layers (cl-ica)
SPRITES_TASK = "sprites-shape"
DECODED_FACTORS = (1, 2, 3, 4)  # scale, orientation, pos_x, pos_y: the continuous factors


def task_name(method: str, d: int, kappa: float) -> str:
    """``"<method>-d<d>-k<κ>"``, e.g. ``instance-d5-k10``."""
    return f"{method}-d{d}-k{kappa:g}"


def n_head_rows(config: CEConfig, method: str) -> int:
    """Rows of the classification head: instances, clusters, or none (InfoNCE)."""
    return {"instance": config.data.n_instances, "supervised": config.data.n_clusters, "infonce": 0}[method]


# --- hypersphere tasks ---------------------------------------------------------------------------------


def make_source(config: CEConfig, d: int, key: jax.Array) -> dict[str, Any]:
    """A run's frozen world: ``{"key", "mixing", "centres" [n_clusters, d]}``."""
    k_mix, k_centres, k_data = jax.random.split(key, 3)
    return {"key": jax.random.key_data(k_data),
            "mixing": hypersphere.mixing_init(k_mix, d, n_layers=config.data.mixing_layers,
                                              cond_threshold_ratio=0.0, n_candidates=config.data.mixing_candidates),
            "centres": hypersphere.cluster_centres(k_centres, config.data.n_clusters, d)}


def sample_world(config: CEConfig, source: dict[str, Any], kappa: float, key: jax.Array, n: int,
                 positive_kappa: float | None = None) -> dict[str, jax.Array]:
    """``n`` samples: instance labels, clusters, latents ``z``, observations ``x = g(z)`` (and, with
    ``positive_kappa``, InfoNCE positives ``x' = g(z')``, ``z' ~ vMF(z, positive_kappa)``)."""
    k_idx, k_z, k_pos = jax.random.split(key, 3)
    idx = jax.random.randint(k_idx, (n,), 0, config.data.n_instances)
    cluster = idx % config.data.n_clusters
    z = _vmf_rows(k_z, source["centres"][cluster], kappa)
    out = {"instance": idx, "cluster": cluster, "z": z,
           "x": hypersphere.mixing_apply(source["mixing"], z, slope=MIXING_SLOPE)}
    if positive_kappa is not None:
        out["x_pos"] = hypersphere.mixing_apply(source["mixing"], _vmf_rows(k_pos, z, positive_kappa), slope=MIXING_SLOPE)
    return out


def _vmf_rows(key: jax.Array, mus: jax.Array, kappa: float) -> jax.Array:
    """One vMF sample around each row of ``mus`` ``[n, d]``."""
    return hypersphere.vmf(key, mus, kappa, mus.shape[0])


def batch(config: CEConfig, method: str, kappa: float, source: dict[str, Any], step: jax.Array) -> dict[str, jax.Array]:
    """The batch of step ``step``: ``{"x", "label"}`` (``{"x", "x_pos"}`` for InfoNCE)."""
    key = jax.random.fold_in(jax.random.wrap_key_data(source["key"]), step)
    positive = config.model.infonce_kappa if method == "infonce" else None
    s = sample_world(config, source, kappa, key, config.data.batch_size, positive)
    if method == "infonce":
        return {"x": s["x"], "x_pos": s["x_pos"]}
    return {"x": s["x"], "label": s["instance"] if method == "instance" else s["cluster"]}


def init(config: CEConfig, method: str, d: int, key: jax.Array, source: Any = None) -> dict[str, Any]:
    """``{"encoder": the csi MLP, "head": [rows, d]}`` (no head for InfoNCE); the head as PyTorch's
    bias-free ``nn.Linear(d, rows)``: ``U(-1/sqrt(d), 1/sqrt(d))``."""
    m = config.model
    k_enc, k_head = jax.random.split(key)
    params = {"encoder": mlp.init(k_enc, mlp.csi_widths(d, n_hidden=m.n_hidden, wide=m.wide, narrow=m.narrow))}
    rows = n_head_rows(config, method)
    if rows:
        bound = 1.0 / np.sqrt(d)
        # a flat draw (one multi-axis draw costs seconds of XLA:CPU compile time)
        params["head"] = jax.random.uniform(k_head, (rows * d,), jnp.float32, -bound, bound).reshape(rows, d)
    return params


def encode(params: dict[str, Any], x: jax.Array, method: str) -> jax.Array:
    """Features ``[B, d]`` as the objective sees them (unit norm for InfoNCE), BatchNorm over ``x``."""
    f = mlp.apply(params["encoder"], x, slope=ENCODER_SLOPE)
    if method == "infonce":
        f = f / jnp.maximum(jnp.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    return f


def loss(config: CEConfig, method: str, params: dict[str, Any], batch: dict[str, jax.Array],
         key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The method's objective on one batch."""
    m = config.model
    if method == "infonce":
        n = batch["x"].shape[0]
        f = mlp.apply(params["encoder"], jnp.concatenate([batch["x"], batch["x_pos"]]), slope=ENCODER_SLOPE)
        return info_nce(f[:n], f[n:], temperature=1.0 / m.infonce_kappa, normalize=True)
    f = mlp.apply(params["encoder"], batch["x"], slope=ENCODER_SLOPE)
    return linear_head_cross_entropy(f, params["head"], batch["label"], normalize=m.normalize_head,
                                     temperature=m.temperature)


def control_key(source: dict[str, Any]) -> jax.Array:
    """The key of a run's random-network control: a split of its data key, so it is none of the
    batch keys ``fold_in(key, step)``."""
    return jax.random.split(jax.random.wrap_key_data(source["key"]))[1]


def _summary(prefix: str, fit: dict[str, Any]) -> dict[str, float]:
    s = np.asarray(fit["singular_values"])
    return {f"{prefix}r2": fit["r2"], f"{prefix}sv_ratio": float(s[-1] / s[0]) if s[0] > 0 else 0.0}


def scores(config: CEConfig, method: str, d: int, kappa: float, params: dict[str, Any],
           source: dict[str, Any]) -> dict[str, float]:
    """Held-out linear R² of the true latents from the features on ``eval.n_samples`` fresh samples,
    the singular-value ratio ``s_min / s_max`` of the fitted map (1: orthogonal up to scale), and two
    controls on the same samples: a randomly initialised encoder and the observations ``x`` themselves."""
    key = jax.random.key(config.eval.seed)
    s = _eval_samples(config, source, kappa, key)
    z = np.asarray(s["z"], np.float64)
    out = _summary("", linear_r2(z, np.asarray(_features(params, s["x"], method), np.float64)))
    random = init(config, method, d, control_key(source))
    out.update(_summary("random_", linear_r2(z, np.asarray(_features(random, s["x"], method), np.float64))))
    out.update(_summary("observed_", linear_r2(z, np.asarray(s["x"], np.float64))))
    return out


@partial(jax.jit, static_argnums=(0, 2))
def _eval_samples_jit(config, source, kappa, key):
    return sample_world(config, source, kappa, key, config.eval.n_samples)


def _eval_samples(config, source, kappa, key):
    return _eval_samples_jit(config, source, float(kappa), key)


@partial(jax.jit, static_argnums=2)
def _features(params, x, method):
    return encode(params, x, method)


# --- sprites: shape classifier, linear readout of the other factors -----------------------------------


def sprites_init(config: CEConfig, key: jax.Array, source: Any = None) -> dict[str, Any]:
    """``{"encoder": the SlowVAE encoder's convolutions, "head": {"w": [256, 3], "b": [3]}}``."""
    k_enc, k_head = jax.random.split(key)
    enc = vae.init(k_enc, n_latents=1, image_size=config.sprites.image_size)["encoder"]
    enc = {k: v for k, v in enc.items() if k.startswith("conv_")}
    bound = 1.0 / np.sqrt(vae.HIDDEN)
    n_shapes = sprites.FACTOR_SIZES[0]
    flat = jax.random.uniform(k_head, ((vae.HIDDEN + 1) * n_shapes,), jnp.float32, -bound, bound)
    head = {"w": flat[n_shapes:].reshape(vae.HIDDEN, n_shapes), "b": flat[:n_shapes]}
    return {"encoder": enc, "head": head}


def sprites_batch(config: CEConfig, source: dict[str, Any], step: jax.Array) -> dict[str, jax.Array]:
    """Images of uniformly drawn factors and their shape labels."""
    key = jax.random.fold_in(jax.random.wrap_key_data(source["key"]), step)
    factors = sprites.sample_factors(key, config.sprites.batch_size)
    return {"x": sprites.render(factors, image_size=config.sprites.image_size), "label": factors[:, 0]}


def sprites_logits(params: dict[str, Any], x: jax.Array) -> jax.Array:
    return vae.features(params, x) @ params["head"]["w"] + params["head"]["b"]


def sprites_loss(params: dict[str, Any], batch: dict[str, jax.Array], key: jax.Array):
    logits = sprites_logits(params, batch["x"])
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]))
    return loss, {"accuracy": jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))}


@partial(jax.jit, static_argnames="image_size")
def _sprites_eval(params, factors, *, image_size):
    x = sprites.render(factors, image_size=image_size)
    h = vae.features(params, x)
    return h, h @ params["head"]["w"] + params["head"]["b"], x.reshape(x.shape[0], -1)


def decode_factors(features: np.ndarray, values: np.ndarray) -> dict[str, list[float]]:
    """Held-out linear readout of each continuous factor: ``{"r2": [4], "pearson": [4]}``."""
    fit = linear_r2(values[:, DECODED_FACTORS], features)
    return {"r2": [float(v) for v in fit["r2_per_latent"]], "pearson": [float(v) for v in fit["pearson_per_latent"]]}


def sprites_scores(config: CEConfig, params: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """Shape accuracy and the linear readouts of scale, orientation, pos_x and pos_y from the
    classifier's 256 features, from a randomly initialised trunk (one per run), and from raw
    pixels, on ``sprites.n_decode`` fresh uniform sprites (the same for every run).

    Orientation is an angle in [0, 2π) and the square and ellipse are symmetric under rotations by
    π/2 and π, so no linear readout of the raw angle can be good: it is reported, not fixed."""
    s = config.sprites
    factors = sprites.sample_factors(jax.random.key(config.eval.seed), s.n_decode)
    values = np.asarray(sprites.factor_values(factors), np.float64)
    feats, logits, pixels = _sprites_eval(params, factors, image_size=s.image_size)
    random = sprites_init(config, control_key(source))
    random_feats = _sprites_eval(random, factors, image_size=s.image_size)[0]
    out: dict[str, Any] = {"shape_accuracy": float(np.mean(np.argmax(np.asarray(logits), -1) == np.asarray(factors[:, 0])))}
    for name, x in (("", feats), ("random_", random_feats), ("pixels_", pixels)):
        dec = decode_factors(np.asarray(x, np.float64), values)
        for j, f in enumerate(DECODED_FACTORS):
            factor = sprites.FACTOR_NAMES[f]
            out[f"{name}r2_{factor}"] = dec["r2"][j]
            out[f"{name}pearson_{factor}"] = dec["pearson"][j]
    return out


def build(config: CEConfig) -> dict[str, Task]:
    """``{task_name(method, d, κ): Task}`` for every method, ``d`` and κ, plus ``sprites-shape``."""
    tasks = {}
    for d in config.data.dims:
        for kappa in config.data.kappas:
            for method in config.model.methods:
                tasks[task_name(method, d, kappa)] = Task(
                    init=partial(init, config, method, d),
                    loss_fn=partial(loss, config, method),
                    optimizer=optax.adam(config.model.lr),
                    data_fn=partial(batch, config, method, kappa),
                    make_source=partial(make_source, config, d),
                    evaluate=partial(scores, config, method, d, kappa),
                )
    if config.sprites.enabled:
        tasks[SPRITES_TASK] = Task(
            init=partial(sprites_init, config),
            loss_fn=sprites_loss,
            optimizer=optax.adam(config.sprites.lr),
            data_fn=partial(sprites_batch, config),
            make_source=lambda key: {"key": jax.random.key_data(key)},
            evaluate=partial(sprites_scores, config),
            steps=config.sprites.steps,
        )
    return tasks

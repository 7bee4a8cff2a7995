"""DIET, SimCLR and BYOL as engine tasks on one backbone and one augmentation pipeline (paper 3).

Per step, for pretraining images ``X [N, H, W, C]`` and ``V`` = ``views_per_step``:

- **DIET** (Ibrahim, Klindt & Balestriero 2024): ``V`` indices ``i_b ~ U{0..N-1}``, one view
  ``t_b(x_{i_b})`` each; ``loss = CE_eps(f(t_b(x_{i_b})) W^T, i_b)`` with a bias-free linear head
  ``W [N, d]`` and label smoothing ``eps`` (:func:`jaxsparse.losses.linear_head_cross_entropy`);
- **SimCLR-style** (Chen et al. 2020): ``V / 2`` images, two views each, projector ``g``;
  symmetric InfoNCE between ``g(f(view_1))`` and ``g(f(view_2))`` with cosine similarity and
  temperature ``tau``, the other images' second views as negatives (:func:`jaxsparse.losses.info_nce`);
- **BYOL-style** (Grill et al. 2020): ``V / 2`` images, two views; online ``q(g(f(.)))``, teacher
  ``g'(f'(.))`` (a copy of ``f, g`` moved by ``xi <- m xi + (1 - m) theta`` after every update, as a
  ``Task.project`` step, and given zero optimiser updates); ``loss = byol(q_1, z'_2) + byol(q_2, z'_1)``
  (:func:`jaxsparse.losses.byol_loss`).

``f`` is :mod:`jaxsparse.models.resnet` (stem stride 1 for images of at most 8 pixels, 2 above);
``g`` and ``q`` are ``Linear - BatchNorm - ReLU - Linear`` (batch statistics of the step's views). AdamW (weight decay on weight matrices and
kernels only) with the grid point's learning rate and weight decay, constant. Each run is scored by a
linear probe of the backbone's features of the un-augmented images (:func:`jaxsparse.eval.linear_probe`):
fitted on the pretraining images' labels, tested on held-out images.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse import losses
from jaxsparse.data import sprites
from jaxsparse.data.augment import augment_batch, ssl_view
from jaxsparse.data.images import digits
from jaxsparse.eval import linear_probe
from jaxsparse.experiments.ssl_occam.config import SSLConfig
from jaxsparse.models import mlp as mlp_model
from jaxsparse.models import resnet
from jaxsparse.train import Task

PyTree = Any


def dataset(config: SSLConfig, name: str) -> dict[str, np.ndarray]:
    """``{"train_x" [N, H, W, 1], "train_y", "test_x", "test_y"}`` of dataset ``name`` (fixed draws)."""
    if name == "digits":
        images, labels = digits()
        order = np.random.default_rng(0).permutation(len(labels))
        images, labels = images[order, :, :, None], labels[order]
        n = config.n_train_digits
        return {"train_x": images[:n], "train_y": labels[:n], "test_x": images[n:], "test_y": labels[n:]}
    if name == "sprites":
        n = config.sprites_train + config.sprites_test
        factors = sprites.sample_factors(jax.random.key(0), n)
        images = np.asarray(sprites.render(factors, image_size=config.sprites_size, supersample=4))
        labels = np.asarray(factors[:, 0], np.int32)
        m = config.sprites_train
        return {"train_x": images[:m], "train_y": labels[:m], "test_x": images[m:], "test_y": labels[m:]}
    raise ValueError(f"`name` must be one of 'digits', 'sprites', got {name!r}")


def stem_stride(image_size: int) -> int:
    """1 for images of at most 8 pixels, 2 above (the first stage then runs at half the size)."""
    return 1 if image_size <= 8 else 2


def mlp_init(key: jax.Array, d_in: int, hidden: int, d_out: int) -> PyTree:
    """``Linear - BatchNorm - ReLU - Linear`` parameters in :mod:`jaxsparse.models.mlp`'s layout
    (Kaiming-uniform weights, zero biases), applied by :func:`mlp`."""
    k1, k2 = jax.random.split(key)
    return {"layers": [
        {"w": jax.random.uniform(k1, (d_in, hidden), minval=-1, maxval=1) * np.sqrt(3.0 / d_in),
         "b": jnp.zeros(hidden), "scale": jnp.ones(hidden), "shift": jnp.zeros(hidden)},
        {"w": jax.random.uniform(k2, (hidden, d_out), minval=-1, maxval=1) * np.sqrt(3.0 / hidden),
         "b": jnp.zeros(d_out)}]}


def mlp(p: PyTree, x: jax.Array) -> jax.Array:
    """``relu(BN(x W_1 + b_1)) W_2 + b_2`` for ``x [B, d_in]``, BatchNorm with the batch's statistics
    (SimCLR's and BYOL's projector; BYOL needs it to avoid collapse without negatives)."""
    return mlp_model.apply(p, x, slope=0.0)


def backbone(params: PyTree, method: str) -> PyTree:
    """The backbone's parameters inside a method's parameters."""
    return params["online"]["net"] if method == "byol" else params["net"]


def _decay_mask(params: PyTree) -> PyTree:
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def optimizer(method: str):
    """``hp -> AdamW(hp["lr"], hp["wd"])`` (BYOL's teacher gets zero updates)."""

    def make(hp):
        adamw = optax.adamw(hp["lr"], weight_decay=hp["wd"], mask=_decay_mask)
        if method != "byol":
            return adamw
        return optax.multi_transform({"online": adamw, "teacher": optax.set_to_zero()},
                                     {"online": "online", "teacher": "teacher"})

    return make


def _loss(config: SSLConfig, method: str, apply, params, batch, key, hp):
    views = batch["views"]  # [n_views, b, H, W, C]
    flat = views.reshape((-1,) + views.shape[2:])
    if method == "diet":
        return losses.linear_head_cross_entropy(apply(params["net"], flat), params["head"], batch["idx"],
                                                label_smoothing=config.label_smoothing)
    b = views.shape[1]
    if method == "simclr":
        z = mlp(params["proj"], apply(params["net"], flat))
        return losses.info_nce(z[:b], z[b:], temperature=config.temperature, symmetric=True)
    online, teacher = params["online"], jax.lax.stop_gradient(params["teacher"])
    q = mlp(online["pred"], mlp(online["proj"], apply(online["net"], flat)))
    t = mlp(teacher["proj"], apply(teacher["net"], flat))
    l12, a12 = losses.byol_loss(q[:b], t[b:])
    l21, a21 = losses.byol_loss(q[b:], t[:b])
    return l12 + l21, {"cosine": 0.5 * (a12["cosine"] + a21["cosine"])}


def build_task(config: SSLConfig, data: dict[str, np.ndarray], method: str) -> Task:
    """One method on one dataset: a task trained once per seed and (lr, wd) grid point."""
    train_x = jnp.asarray(data["train_x"])
    n, image_size = train_x.shape[0], train_x.shape[1]
    apply = functools.partial(resnet.apply, groups=config.groups, stem_stride=stem_stride(image_size))
    n_views = 1 if method == "diet" else 2
    per_view = config.views_per_step // n_views
    view = functools.partial(ssl_view, config=config.augment)
    d = config.widths[-1]

    def init(key, source):
        k_net, k_head, k_pred = jax.random.split(key, 3)
        net = resnet.init(k_net, image_shape=train_x.shape[1:], widths=config.widths, blocks=config.blocks,
                          groups=config.groups)
        if method == "diet":
            return {"net": net, "head": jax.random.normal(k_head, (n, d)) / np.sqrt(d)}
        proj = mlp_init(k_head, d, config.projector, config.projector)
        if method == "simclr":
            return {"net": net, "proj": proj}
        online = {"net": net, "proj": proj, "pred": mlp_init(k_pred, config.projector, config.projector,
                                                             config.projector)}
        return {"online": online, "teacher": {"net": net, "proj": proj}}

    def data_fn(key, step):
        k = jax.random.fold_in(key, step)
        idx = jax.random.randint(jax.random.fold_in(k, 0), (per_view,), 0, n)
        x = train_x[idx]
        views = jnp.stack([augment_batch(jax.random.fold_in(k, 1 + v), x, view) for v in range(n_views)])
        return {"views": views, "idx": idx}

    project = None
    if method == "byol":
        m = config.ema

        def project(params):
            online = params["online"]
            target = {"net": online["net"], "proj": online["proj"]}
            teacher = jax.tree.map(lambda t, o: m * t + (1 - m) * o, params["teacher"], target)
            return {"online": online, "teacher": teacher}

    features = jax.jit(apply)

    def evaluate(params, source):
        return probe_scores(features, backbone(params, method), data, config.probe_l2)

    grid = config.grid()
    hparams = {"lr": jnp.asarray([g[0] for g in grid], jnp.float32),
               "wd": jnp.asarray([g[1] for g in grid], jnp.float32)}
    return Task(init=init, loss_fn=lambda p, b, k, hp: _loss(config, method, apply, p, b, k, hp),
                optimizer=optimizer(method), data_fn=data_fn, project=project, evaluate=evaluate, hparams=hparams)


def probe_scores(features, net: PyTree, data: dict[str, np.ndarray], l2: float) -> dict[str, float]:
    """Linear-probe accuracy (held out and training) of ``features(net, images)`` and their effective rank."""
    f_train = np.asarray(features(net, jnp.asarray(data["train_x"])))
    f_test = np.asarray(features(net, jnp.asarray(data["test_x"])))
    scores = linear_probe(f_train, data["train_y"], f_test, data["test_y"], l2=l2)
    return {"probe_accuracy": scores["test_accuracy"], "probe_train_accuracy": scores["train_accuracy"],
            "feature_rank": effective_rank(f_train)}


def effective_rank(features: np.ndarray) -> float:
    """``exp(H(s / sum s))`` of the centred features' singular values ``s`` (Roy & Vetterli 2007): 1 for
    collapsed features, ``d`` for isotropic ones."""
    f = np.asarray(features, np.float64)
    s = np.linalg.svd(f - f.mean(0), compute_uv=False)
    if s.sum() <= 0:
        return 1.0
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def build(config: SSLConfig) -> dict[str, Task]:
    """``{"<dataset>/<method>": Task}`` for every dataset and method of ``config``."""
    tasks = {}
    for name in config.datasets:
        data = dataset(config, name)
        for method in config.methods:
            tasks[f"{name}/{method}"] = build_task(config, data, method)
    return tasks

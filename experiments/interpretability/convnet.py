"""A conv net's units vs directions in its activation space, layer by layer (Klindt et al. 2023, paper 5).

**Training** (one task on the engine, vmapped over seeds). A small conv classifier
(:mod:`jaxsparse.models.convnet`: conv 3x3 to 16 channels, conv 3x3 stride 2 to 32 channels, dense
64, linear readout) learns scikit-learn's digits (8 x 8, ``n_train`` of the 1,797 images, Adam,
minibatches from ``fold_in(key, step)``). Beside it, one ReLU SAE per hidden layer
(``sae_expansion x n_units`` latents, unit-norm decoder rows) learns that layer's units through a
stop-gradient, so it never changes the classifier. The classifier's learning rate drops to zero
after ``classifier_steps``; the remaining ``train.steps - classifier_steps`` steps train the SAEs on
the frozen net. The SAE sees each batch's units centred and rescaled to a mean squared norm of
``n_units`` (``(a - mean_b a) / c``, :func:`centred`), so one ``sae_lam`` suits every layer. (Without
the centring, the non-negative, strongly correlated units of a conv layer leave most latents of a
1x SAE dead from the first step: 10 of 16 in ``conv_0``.)

**Units** of a layer: a convolutional channel's spatial mean, a dense unit's value
(:func:`jaxsparse.models.convnet.units`). Four readouts per layer, on the held-out digits:

- *neurons*: the units themselves;
- *k-means*: spherical k-means on the L2-normalised units with ``k = n_units``; a new unit is the
  projection on a centroid (:func:`jaxsparse.eval.project`), as the paper;
- *SAE*: the SAE's latents ``ReLU(W centred(a) + b)`` (mean and scale from the held-out set);
- *SAE pre-activations*: ``W centred(a) + b`` before the ReLU, the same directions ranked without
  the ReLU's ties: about half of a latent's stimuli give exactly 0, and the index's "bottom" stimuli
  are then an arbitrary pick among them;
- *random*: ``n_units`` uniformly random directions projected like k-means: the control that shows how
  much of a gain comes from normalising and re-mixing alone.

Each readout's units are scored by the simulated 2AFC index (:func:`jaxsparse.eval.two_afc_index`,
pixel similarity of the digit images, 20 trials, 9 references per side; chance 0.5, ceiling 0.98),
averaged over its live units (activation std > 1e-8 over the held-out set).

Command: ``jaxsparse run interp-convnet``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse import eval as metrics
from jaxsparse.experiments.interpretability import figures as figs
from jaxsparse.data.images import digits
from jaxsparse.models import convnet, sae
from jaxsparse.train import ConfigError, Task, TrainConfig, Trained, register, rundir

NAME = "interp-convnet"
READOUTS = ("neurons", "kmeans", "sae", "sae_pre", "random")
N_CLASSES = 10


@dataclasses.dataclass(frozen=True)
class ConvNetConfig:
    """A digits classifier's layers read out as neurons, k-means directions, SAE latents and random directions.

    Attributes:
      channels: output channels of the convolutions (the first stride 1, the others stride 2).
      hidden: width of the dense hidden layer.
      n_train: training digits (the first ``n_train`` of a fixed permutation); the rest are held out and
        are the stimuli of the index (at least ``2 n_trials (n_refs + 1)`` of them).
      batch_size, lr: the classifier's minibatch and Adam learning rate.
      classifier_steps: steps after which the classifier is frozen (``<= train.steps``); the SAEs train
        for every step.
      sae_expansion: SAE latents per unit of the layer.
      sae_lam, sae_lr: the SAEs' L1 weight (on :func:`centred` units, mean squared norm ``n_units``) and Adam
        learning rate.
      n_trials, n_refs, quantile: the 2AFC index's trials, references per side and band
        (:func:`jaxsparse.eval.two_afc_index`; paper 20, 9, None).
      kmeans_init: k-means restarts (the best total cosine is kept).
    """

    channels: tuple[int, ...] = (16, 32)
    hidden: int = 64
    n_train: int = 1200
    batch_size: int = 128
    lr: float = 1e-3
    classifier_steps: int = 2000
    sae_expansion: int = 1
    sae_lam: float = 0.1
    sae_lr: float = 1e-3
    n_trials: int = 20
    n_refs: int = 9
    quantile: float | None = None
    kmeans_init: int = 10
    train: TrainConfig = TrainConfig(steps=3000, seeds=3, log_every=250, checkpoint_every=1000)

    def __post_init__(self):
        if not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"`channels` must be a non-empty tuple of positive channel counts, got {self.channels}")
        for name in ("hidden", "batch_size", "sae_expansion", "n_trials", "n_refs", "kmeans_init"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        n_test, need = N_DIGITS - self.n_train, 2 * self.n_trials * (self.n_refs + 1)
        if not 1 <= self.n_train or n_test < need:
            raise ConfigError(f"`n_train` must leave at least 2 n_trials (n_refs + 1) = {need} of the {N_DIGITS} digits "
                              f"held out for the index, got n_train={self.n_train} ({n_test} held out)")
        if not 0 <= self.classifier_steps <= self.train.steps:
            raise ConfigError(f"`classifier_steps` must be in 0..train.steps={self.train.steps}, "
                              f"got {self.classifier_steps}")
        if not self.lr > 0 or not self.sae_lr > 0 or not self.sae_lam >= 0:
            raise ConfigError(f"need lr > 0, sae_lr > 0 and sae_lam >= 0, got {self.lr}, {self.sae_lr}, {self.sae_lam}")
        if self.quantile is not None and not 0 <= self.quantile < 0.5:
            raise ConfigError(f"`quantile` must be None or in [0, 0.5), got {self.quantile}")

    def layer_units(self) -> dict[str, int]:
        """``{layer: n_units}`` of the hidden layers."""
        return {**{f"conv_{i}": c for i, c in enumerate(self.channels)}, "fc": self.hidden}


N_DIGITS = 1797


def split(config: ConvNetConfig) -> dict[str, np.ndarray]:
    """The digits as ``[n, 8, 8, 1]`` images with labels, cut by a fixed permutation (NumPy seed 0) into
    ``train_*`` (the first ``n_train``) and ``test_*``."""
    images, labels = digits()
    order = np.random.default_rng(0).permutation(len(labels))
    images, labels = images[order, :, :, None], labels[order]
    n = config.n_train
    return {"train_x": images[:n], "train_y": labels[:n], "test_x": images[n:], "test_y": labels[n:]}


def centred(a: jax.Array) -> jax.Array:
    """``(a - mean_b a) / c`` with ``c^2 = mean_b ||a_b - mean_b a||^2 / n`` (``a: [B, n]``): the rows
    centred, with mean squared norm ``n``."""
    a = a - jnp.mean(a, axis=0)
    c = jnp.sqrt(jnp.mean(jnp.sum(a * a, axis=-1)) / a.shape[-1])
    return a / jnp.maximum(c, 1e-12)


def _loss(config: ConvNetConfig, params, batch, key):
    logits, layers = convnet.apply(params["net"], batch["x"], return_layers=True)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    aux = {"ce": ce, "accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["y"])}
    total = ce
    for name, a in convnet.units(layers).items():
        x = centred(jax.lax.stop_gradient(a))
        loss, sae_aux = sae.sae_loss(params["sae"][name], x, lam=config.sae_lam)
        total = total + loss
        aux[f"{name}_mse"], aux[f"{name}_l0"] = sae_aux["mse"], sae_aux["l0"]
    return total, aux


def build(config: ConvNetConfig) -> dict[str, Task]:
    """One task: the classifier and its per-layer SAEs (see the module docstring)."""
    data = split(config)
    train_x, train_y = jnp.asarray(data["train_x"]), jnp.asarray(data["train_y"])
    widths = config.layer_units()

    def init(key, source):
        k_net, *k_sae = jax.random.split(key, 1 + len(widths))
        net = convnet.init(k_net, image_shape=train_x.shape[1:], channels=config.channels, hidden=config.hidden,
                           n_classes=N_CLASSES)
        saes = {name: sae.init_sae(k, n, config.sae_expansion * n) for k, (name, n) in zip(k_sae, widths.items())}
        return {"net": net, "sae": saes}

    def data_fn(key, step):
        idx = jax.random.randint(jax.random.fold_in(key, step), (config.batch_size,), 0, train_x.shape[0])
        return {"x": train_x[idx], "y": train_y[idx]}

    net_lr = optax.piecewise_constant_schedule(config.lr, {config.classifier_steps: 0.0})
    optimizer = optax.multi_transform({"net": optax.adam(net_lr), "sae": optax.adam(config.sae_lr)},
                                      {"net": "net", "sae": "sae"})

    def project(params):
        return {"net": params["net"], "sae": {k: sae.project_sae(v) for k, v in params["sae"].items()}}

    def evaluate(params, source):
        logits = np.asarray(convnet.apply(params["net"], jnp.asarray(data["test_x"])))
        return {"test_accuracy": float(np.mean(logits.argmax(-1) == data["test_y"]))}

    return {"classifier": Task(init=init, loss_fn=lambda p, b, k: _loss(config, p, b, k), optimizer=optimizer,
                               data_fn=data_fn, project=project, evaluate=evaluate)}


def layer_readouts(config: ConvNetConfig, params, images: np.ndarray, key: jax.Array) -> dict[str, dict[str, tuple]]:
    """``{layer: {readout: (units [n, k], SAE fvu or None)}}`` of one seed's net on ``images``."""
    _, layers = jax.jit(lambda p, x: convnet.apply(p, x, return_layers=True))(params["net"], jnp.asarray(images))
    out = {}
    for j, (name, a) in enumerate(convnet.units(layers).items()):
        a = np.asarray(a)
        k_km, k_rand = jax.random.split(jax.random.fold_in(key, j))
        k = a.shape[1]
        centroids = metrics.spherical_kmeans(k_km, a, k, n_init=config.kmeans_init)
        rand = jax.random.normal(k_rand, (k, k))
        rand = rand / jnp.linalg.norm(rand, axis=1, keepdims=True)
        p = params["sae"][name]
        x = centred(jnp.asarray(a))
        pre = sae.affine(p["encoder"], x)
        latents = jax.nn.relu(pre)
        fvu = metrics.fvu(np.asarray(x), np.asarray(sae.decode(p["decoder"], latents)))
        out[name] = {"neurons": (a, None), "kmeans": (np.asarray(metrics.project(a, centroids)), None),
                     "sae": (np.asarray(latents), fvu), "sae_pre": (np.asarray(pre), None),
                     "random": (np.asarray(metrics.project(a, rand)), None)}
    return out


def analyze(config: ConvNetConfig, trained: dict[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Index of every readout of every layer per seed, the classifier's held-out accuracy and the SAEs' fit."""
    data = split(config)
    shown = data["test_x"][..., 0]
    t = trained["classifier"]
    seeds = config.train.seed_values
    runs, examples = [], {}
    for i, seed in enumerate(seeds):
        params = jax.tree.map(lambda x: x[i], t.state.params)
        key = jax.random.fold_in(jax.random.key(seed), 7)
        row = {"seed": seed, "test_accuracy": t.results["per_seed"][i]["test_accuracy"]}
        for j, (layer, outs) in enumerate(layer_readouts(config, params, data["test_x"], key).items()):
            for m, (units, fvu) in outs.items():
                k_index = jax.random.fold_in(key, 1000 + 10 * j + READOUTS.index(m))
                index = np.asarray(metrics.two_afc_index(k_index, units, shown, metrics.pixel_similarity,
                                                         n_trials=config.n_trials, n_refs=config.n_refs,
                                                         quantile=config.quantile))
                alive = units.std(axis=0) > 1e-8
                row[f"{layer}_{m}_index"] = float(index[alive].mean()) if alive.any() else float("nan")
                row[f"{layer}_{m}_alive"] = int(alive.sum())
                if fvu is not None:
                    row[f"{layer}_{m}_fvu"] = fvu
                    row[f"{layer}_{m}_l0"] = float(np.mean(np.sum(units > 0, axis=1)))
                if i == 0:
                    examples.setdefault(layer, {})[m] = (units, np.where(alive, index, np.nan))
        runs.append(row)
    summary = rundir.summarize(runs, keys=("seed",))
    results = {"seeds": seeds, "layers": config.layer_units(), **summary}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        names = [figs.stimulus_grid({m: v for m, v in ex.items() if m not in ("random", "sae_pre")}, shown,
                                    figures / f"top_bottom_{layer}_seed0.png", max_units=8,
                                    title=f"{layer}: the first 8 units of each readout, top and bottom held-out "
                                          "digits, 2AFC index (seed 0)")
                 for layer, ex in examples.items()]
        panels = [(f"{layer}: 2AFC index", [(m, f"{layer}_{m}_index") for m in READOUTS]) for layer in examples]
        names.append(figs.index_panels(runs, panels, figures / "index.png"))
        results["figures"] = names
        text = _markdown(config, summary)
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return json.loads(json.dumps(results))


def _markdown(config: ConvNetConfig, summary: dict[str, Any]) -> str:
    mean, std = summary["mean"], summary["std"]

    def cell(key, fmt=".3f"):
        return f"{mean[key]:{fmt}} ± {std[key]:{fmt}}" if key in mean else "–"

    lines = [f"# {NAME}: digits classifier, held-out accuracy {cell('test_accuracy')}, seeds {config.train.seed_values}",
             "", f"2AFC index (pixel similarity, {config.n_trials} trials, {config.n_refs} refs; chance 0.5, ceiling "
             "0.98), mean over live units, mean ± std over seeds (ddof=1). SAE: latents "
             f"{config.sae_expansion} x units, FVU and L0 on the held-out digits.", "",
             "| layer | units | " + " | ".join(READOUTS) + " | SAE FVU | SAE L0 |", "|---|---|" + "---|" * (len(READOUTS) + 2)]
    for layer, n in config.layer_units().items():
        cells = [cell(f"{layer}_{m}_index") for m in READOUTS]
        lines.append(f"| {layer} | {n} | " + " | ".join(cells) + f" | {cell(f'{layer}_sae_fvu')} | "
                     f"{cell(f'{layer}_sae_l0', '.1f')} |")
    lines += ["", "Live units (mean over seeds): " + ", ".join(
        f"{layer} " + "/".join(f"{mean[f'{layer}_{m}_alive']:.0f}" for m in READOUTS) for layer in config.layer_units()),
        ""]
    lines += [f"![{layer}](figures/top_bottom_{layer}_seed0.png)" for layer in config.layer_units()]
    lines += ["![index](figures/index.png)", ""]
    return "\n".join(lines)


def smoke() -> ConvNetConfig:
    """A seconds-long run for tests: a narrower net, 300 steps, 2 seeds, 3 index trials."""
    return ConvNetConfig(channels=(4, 8), hidden=8, classifier_steps=200, n_trials=3, n_refs=3, kmeans_init=2,
                         train=TrainConfig(steps=300, seeds=2, log_every=100, checkpoint_every=300))


register(NAME, ConvNetConfig, build, analyze=analyze, module=__name__)

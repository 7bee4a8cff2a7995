"""Toy superposition: interpretable directions, not single neurons (Klindt et al. 2023, paper 5).

**Data.** Built from scikit-learn's 1,797 handwritten digits (8 x 8, shipped inside the package),
one feature per class (``n_features = 10``). With ``n_active = 1`` (default) every digit is one
stimulus and activates only its class's feature; with ``n_active = k > 1`` each of ``n_stimuli``
stimuli is the mean image of ``k`` digits of ``k`` distinct random classes, and activates those
``k`` features. Magnitudes are ``m ~ U(0.5, 1.5)``; the ``n_neurons < n_features`` neurons see the
features through a random non-orthogonal map ``A [n_features, n_neurons]`` (rows unit-norm Gaussian
draws, one map per seed) plus noise::

    a_n = sum_{c active in n} m_{n,c} A[c] + noise * eps_n          [n_neurons]

so every neuron mixes several classes (superposition), while the features are the directions
``A[c]`` in activation space.

**Three ways to read out units**, each scored with the simulated 2AFC index
(:func:`jaxsparse.eval.two_afc_index`, pixel similarity of the digit images, 20 trials, 9
references per side) and by how well their directions recover the rows of ``A``:

- *neurons*: the ``n_neurons`` coordinates (directions: the standard basis);
- *k-means*: spherical k-means on the L2-normalised activations with ``k = n_features``
  (:func:`jaxsparse.eval.spherical_kmeans`); a new unit is the projection on a centroid
  (:func:`jaxsparse.eval.project`), as the paper;
- *SAE*: a ReLU sparse autoencoder with ``n_features`` latents trained on the activations by the
  engine (the one trained method, vmapped over seeds); units are its latents, directions its
  decoder rows.

Recovery: ``best_cos`` = mean over true features of the largest |cosine| with any unit direction
(defined for every method), and the one-to-one ``dictionary_mcc`` where a method has at least
``n_features`` directions. A random-directions control (``n_features`` uniform directions, projected
like k-means) gives the index and recovery of directions that know nothing of the features.

Command: ``jaxsparse run interp-superposition``.
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
from jaxsparse.data.images import digits
from jaxsparse.models import sae
from jaxsparse.train import ConfigError, Task, TrainConfig, Trained, register, rundir

from jaxsparse.experiments.interpretability import figures as figs

NAME = "interp-superposition"
METHODS = ("neurons", "kmeans", "sae", "random")


@dataclasses.dataclass(frozen=True)
class SuperpositionConfig:
    """Digit classes as sparse features in fewer neurons; neurons vs k-means directions vs SAE latents.

    Attributes:
      n_neurons: neurons (``< 10``, the number of digit classes = features).
      n_active: features active per stimulus (1: the digits themselves; k > 1: composites of k digits
        of distinct classes).
      n_stimuli: stimuli drawn per seed when ``n_active > 1`` (with 1, all 1,797 digits).
      noise: standard deviation of the Gaussian noise added to every neuron.
      magnitude: ``(low, high)`` of the uniform feature magnitudes.
      n_trials, n_refs, quantile: the 2AFC index's trials, references per side and band
        (:func:`jaxsparse.eval.two_afc_index`; paper 20, 9, None).
      kmeans_init: k-means restarts (the best total cosine is kept).
      sae_lam, sae_lr: the SAE's L1 weight and Adam learning rate (full batch).
    """

    n_neurons: int = 5
    n_active: int = 1
    n_stimuli: int = 2000
    noise: float = 0.05
    magnitude: tuple[float, float] = (0.5, 1.5)
    n_trials: int = 20
    n_refs: int = 9
    quantile: float | None = None
    kmeans_init: int = 10
    sae_lam: float = 0.01
    sae_lr: float = 1e-2
    train: TrainConfig = TrainConfig(steps=2000, seeds=3, log_every=100, checkpoint_every=1000)

    def __post_init__(self):
        if not 1 <= self.n_neurons < 10:
            raise ConfigError(f"`n_neurons` must be in 1..9 (fewer than the 10 digit classes), got {self.n_neurons}")
        if not 1 <= self.n_active <= 10:
            raise ConfigError(f"`n_active` must be in 1..10 (distinct digit classes), got {self.n_active}")
        if self.n_active > 1 and self.n_stimuli < 2 * self.n_trials * (self.n_refs + 1):
            raise ConfigError(f"`n_stimuli` must be >= 2 n_trials (n_refs + 1) = {2 * self.n_trials * (self.n_refs + 1)}, "
                              f"got {self.n_stimuli}")
        if self.noise < 0:
            raise ConfigError(f"`noise` must be >= 0, got {self.noise}")
        low, high = self.magnitude
        if not 0 < low <= high:
            raise ConfigError(f"`magnitude` must be (low, high) with 0 < low <= high, got {self.magnitude}")
        for name in ("n_trials", "n_refs", "kmeans_init"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.quantile is not None and not 0 <= self.quantile < 0.5:
            raise ConfigError(f"`quantile` must be None or in [0, 0.5), got {self.quantile}")
        if not self.sae_lam >= 0 or not self.sae_lr > 0:
            raise ConfigError(f"need sae_lam >= 0 and sae_lr > 0, got {self.sae_lam}, {self.sae_lr}")


N_FEATURES = 10


def make_source(config: SuperpositionConfig, labels: np.ndarray, key: jax.Array) -> dict[str, jax.Array]:
    """One seed's map ``A [10, n_neurons]`` (unit rows), stimuli as digit indices ``members [n, n_active]``
    with their ``classes``, and activations ``[n, n_neurons]``."""
    k_map, k_mag, k_noise, k_cls, k_img = jax.random.split(key, 5)
    a = jax.random.normal(k_map, (N_FEATURES, config.n_neurons))
    a = a / jnp.linalg.norm(a, axis=1, keepdims=True)
    if config.n_active == 1:
        members, classes = jnp.arange(len(labels))[:, None], jnp.asarray(labels)[:, None]
    else:
        n = config.n_stimuli
        classes = jnp.argsort(jax.random.uniform(k_cls, (n, N_FEATURES)), axis=1)[:, :config.n_active]
        counts = np.bincount(labels, minlength=N_FEATURES)
        table = np.zeros((N_FEATURES, counts.max()), np.int32)  # table[c, :counts[c]]: the digits of class c
        for c in range(N_FEATURES):
            table[c, :counts[c]] = np.flatnonzero(labels == c)
        pick = jnp.floor(jax.random.uniform(k_img, classes.shape) * jnp.asarray(counts)[classes]).astype(jnp.int32)
        members = jnp.asarray(table)[classes, pick]
    low, high = config.magnitude
    mag = jax.random.uniform(k_mag, classes.shape, minval=low, maxval=high)
    acts = jnp.einsum("nk,nkd->nd", mag, a[classes])
    acts = acts + config.noise * jax.random.normal(k_noise, acts.shape)
    return {"features": a, "members": members, "classes": classes, "activations": acts}


def stimuli(images: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Stimulus images ``[n, 8, 8]``: the mean of each stimulus's member digits."""
    return images[np.asarray(members)].mean(axis=1)


def build(config: SuperpositionConfig) -> dict[str, Task]:
    """One trained method: the SAE on each seed's activations (full batch, unit-norm decoder rows)."""
    _, labels = digits()
    return {"sae": Task(
        init=lambda key, source: sae.init_sae(key, config.n_neurons, N_FEATURES),
        loss_fn=lambda params, x, key: sae.sae_loss(params, x, lam=config.sae_lam),
        optimizer=optax.adam(config.sae_lr),
        data_fn=lambda source, step: source["activations"],
        make_source=lambda key: make_source(config, labels, key),
        project=sae.project_sae)}


def best_cos(true: np.ndarray, directions: np.ndarray) -> float:
    """Mean over true directions of the largest |cosine| with any of ``directions`` (rows)."""
    t = true / np.linalg.norm(true, axis=1, keepdims=True)
    d = directions / np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.max(np.abs(t @ d.T), axis=1)))


def readouts(config: SuperpositionConfig, acts: np.ndarray, sae_params: Any, key: jax.Array) -> dict[str, tuple]:
    """``{method: (units [n, k], directions [k, n_neurons])}`` for one seed."""
    k_km, k_rand = jax.random.split(key)
    centroids = metrics.spherical_kmeans(k_km, acts, N_FEATURES, n_init=config.kmeans_init)
    rand = jax.random.normal(k_rand, (N_FEATURES, config.n_neurons))
    rand = rand / jnp.linalg.norm(rand, axis=1, keepdims=True)
    latents = sae.relu_apply(sae_params["encoder"], acts)
    return {"neurons": (acts, np.eye(config.n_neurons)),
            "kmeans": (metrics.project(acts, centroids), np.asarray(centroids)),
            "sae": (latents, np.asarray(sae_params["decoder"]["w"])),
            "random": (metrics.project(acts, rand), np.asarray(rand))}


def analyze(config: SuperpositionConfig, trained: dict[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Index and recovery of neurons, k-means directions, SAE latents and random directions per seed."""
    images, _ = digits()
    t = trained["sae"]
    seeds = config.train.seed_values
    runs, examples = [], {}
    for i, seed in enumerate(seeds):
        acts = np.asarray(t.sources["activations"][i])
        true = np.asarray(t.sources["features"][i])
        shown = stimuli(images, t.sources["members"][i])
        params = jax.tree.map(lambda x: x[i], t.state.params)
        key = jax.random.fold_in(jax.random.key(seed), 7)
        outs = readouts(config, acts, params, jax.random.fold_in(key, 0))
        row = {"seed": seed}
        for j, (method, (units, directions)) in enumerate(outs.items()):
            units = np.asarray(units)
            index = np.asarray(metrics.two_afc_index(jax.random.fold_in(key, j + 1), units, shown,
                                                     metrics.pixel_similarity, n_trials=config.n_trials,
                                                     n_refs=config.n_refs, quantile=config.quantile))
            alive = units.std(axis=0) > 1e-8
            row[f"{method}_index"] = float(index[alive].mean()) if alive.any() else float("nan")
            row[f"{method}_alive"] = int(alive.sum())
            row[f"{method}_best_cos"] = best_cos(true, directions)
            if len(directions) >= N_FEATURES:
                row[f"{method}_dictionary_mcc"] = float(metrics.dictionary_mcc(true, directions)["mcc"])
            if i == 0:
                examples[method] = (units, np.where(alive, index, np.nan))
                first_stimuli = shown
        runs.append(row)
    summary = rundir.summarize(runs, keys=("seed",))
    results = {"seeds": seeds, "n_neurons": config.n_neurons, "n_features": N_FEATURES, **summary}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        shown_examples = {m: v for m, v in examples.items() if m != "random"}
        results["figures"] = [
            figs.stimulus_grid(shown_examples, first_stimuli, figures / "top_bottom_seed0.png",
                               title="each unit's top and bottom stimuli, with its 2AFC index (seed 0)"),
            figs.index_panels(runs, [("2AFC index (mean over units)", [(m, f"{m}_index") for m in METHODS]),
                                     ("best |cos| per true feature", [(m, f"{m}_best_cos") for m in METHODS])],
                              figures / "index.png")]
        text = _markdown(config, summary)
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return json.loads(json.dumps(results))


def _markdown(config: SuperpositionConfig, summary: dict[str, Any]) -> str:
    mean, std = summary["mean"], summary["std"]

    def cell(key):
        return f"{mean[key]:.3f} ± {std[key]:.3f}" if key in mean else "–"

    lines = [f"# {NAME}: 10 digit-class features in {config.n_neurons} neurons, {config.n_active} active per stimulus, "
             f"seeds {config.train.seed_values}", "",
             f"2AFC index (pixel similarity, {config.n_trials} trials, {config.n_refs} refs; chance 0.5, ceiling 0.98) "
             "mean over live units; recovery of the true feature directions (mean ± std over seeds, ddof=1).", "",
             "| units | n | live | 2AFC index | best |cos| per feature | dictionary MCC |", "|---|---|---|---|---|---|"]
    for m in METHODS:
        n = config.n_neurons if m == "neurons" else N_FEATURES
        lines.append(f"| {m} | {n} | {mean[m + '_alive']:.1f} | {cell(m + '_index')} | {cell(m + '_best_cos')} | "
                     f"{cell(m + '_dictionary_mcc')} |")
    lines += ["", "![top and bottom stimuli](figures/top_bottom_seed0.png)", "![index](figures/index.png)", ""]
    return "\n".join(lines)


register(NAME, SuperpositionConfig, build, analyze=analyze, module=__name__)

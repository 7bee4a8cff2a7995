"""Paper 4 (a): one neuron ``f(x) = a w^T x`` trained by gradient descent, against its exact flow.

Kunin et al., "Get rich quick" (NeurIPS 2024), Section 3 and its Figure 2: from one initial
function ``beta0 = a0 w0``, initialisations with conserved quantity ``delta = eta_w a^2 - eta_a ||w||^2``
in ``{-4, -2, -1, 0, 1, 2, 4}`` (:func:`jaxsparse.theory.rich_lazy.init_from_delta`) learn the same
target ``beta_*`` along different paths: ``delta > 0`` (upstream) moves ``a`` little and ``w``
straight towards ``beta_*`` (lazy: the kernel barely changes), ``delta = 0`` rotates ``w`` first
(rich), ``delta < 0`` (downstream) is lazy early and rich late. One engine run per seed trains the 7
neurons side by side (their losses are independent, so one gradient step is 7 independent ones);
a seed draws ``beta_*`` (norm ``s``) and ``beta0`` (norm ``init_norm``) uniformly on the circle or
sphere. Every ``log_every`` steps the run logs each neuron's ``a``, ``w^T beta_* / s``, ``|w_perp|`` and
kernel distance; the analysis draws the closed form (:func:`jaxsparse.theory.rich_lazy.trajectory`)
through them and reports the largest deviation (gradient descent with step ``lr`` follows the flow
up to ``O(lr)``).

Command: ``jaxsparse run rich-lazy-neuron`` (seconds on a CPU).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.theory import rich_lazy as rl
from jaxsparse.train import ConfigError, Task, TrainConfig, Trained, register, rundir
from jaxsparse.train.report import methods_table

NAME = "rich-lazy-neuron"


@dataclasses.dataclass(frozen=True)
class NeuronConfig:
    """One neuron per ``delta``, gradient descent at a small step, against the exact flow.

    Attributes:
      deltas: conserved quantities ``eta_w a0^2 - eta_a ||w0||^2`` (paper ``-4 .. 4``).
      d: input dimension (2 draws the paths in the plane).
      s: ``||beta_*||``.
      init_norm: ``||beta0||``, the initial function (small: the paper starts near zero).
      eta_a, eta_w: layer learning rates (relative; ``lr`` multiplies both).
      lr: gradient-descent step; ``train.steps * lr`` is the time span (default 20).
    """

    deltas: tuple[float, ...] = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
    d: int = 2
    s: float = 1.0
    init_norm: float = 0.1
    eta_a: float = 1.0
    eta_w: float = 1.0
    lr: float = 1e-3
    train: TrainConfig = TrainConfig(steps=20_000, seeds=3, log_every=100, checkpoint_every=10_000)

    def __post_init__(self):
        if not self.deltas:
            raise ConfigError("`deltas` must be a non-empty tuple of numbers")
        if self.d < 1:
            raise ConfigError(f"`d` must be >= 1, got {self.d}")
        for name in ("s", "init_norm", "eta_a", "eta_w", "lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"`{name}` must be > 0, got {getattr(self, name)}")


def label(delta: float) -> str:
    return f"{delta:g}"


def make_source(config: NeuronConfig, key: jax.Array) -> dict[str, jax.Array]:
    """``{"beta_star": [d] of norm s, "beta0": [d] of norm init_norm}``, uniform directions."""
    k1, k2 = jax.random.split(key)
    unit = lambda k: (lambda v: v / jnp.linalg.norm(v))(jax.random.normal(k, (config.d,)))
    return {"beta_star": config.s * unit(k1), "beta0": config.init_norm * unit(k2)}


def initial(config: NeuronConfig, source: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """``{"a": [K], "w": [K, d]}``: every neuron starts at ``beta0`` with its own ``delta``."""
    deltas = jnp.asarray(config.deltas, jnp.float32)
    a0, w0 = jax.vmap(lambda dl: rl.init_from_delta(dl, source["beta0"], eta_a=config.eta_a,
                                                    eta_w=config.eta_w))(deltas)
    return {"a": a0, "w": w0}


def loss(config: NeuronConfig, params: dict[str, jax.Array], source: dict[str, jax.Array],
         key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``sum_k 1/2 ||a_k w_k - beta_*||^2`` (independent neurons) and each neuron's state."""
    a, w, beta_star = params["a"], params["w"], source["beta_star"]
    value = 0.5 * jnp.sum((a[:, None] * w - beta_star) ** 2)
    s = jnp.linalg.norm(beta_star)
    w_par = w @ beta_star / s
    w_perp = jnp.linalg.norm(w - w_par[:, None] * beta_star / s, axis=-1)
    start = initial(config, source)
    kd = jax.vmap(lambda a0, w0, a1, w1: rl.kernel_distance(a0, w0, a1, w1, eta_a=config.eta_a, eta_w=config.eta_w))(
        start["a"], start["w"], a, w)
    aux = {}
    for k, dl in enumerate(config.deltas):
        aux.update({f"a/{label(dl)}": a[k], f"w_par/{label(dl)}": w_par[k], f"w_perp/{label(dl)}": w_perp[k],
                    f"kernel_distance/{label(dl)}": kd[k]})
    return value, aux


def theory(config: NeuronConfig, source: dict[str, Any], t: np.ndarray) -> dict[str, np.ndarray]:
    """The exact flow at times ``t [T]`` (time = steps x lr): ``a [K, T]``, ``w_par``, ``w_perp``, ``beta [K, T, d]``,
    ``kernel_distance [K, T]``."""
    start = initial(config, source)
    beta_star = jnp.asarray(source["beta_star"])
    traj = jax.vmap(lambda a0, w0: rl.trajectory(jnp.asarray(t, jnp.float32), a0, w0, beta_star,
                                                 eta_a=config.eta_a, eta_w=config.eta_w))(start["a"], start["w"])
    s = jnp.linalg.norm(beta_star)
    w_par = traj.w @ beta_star / s
    kd = jax.vmap(lambda a0, w0, a, w: jax.vmap(lambda ai, wi: rl.kernel_distance(
        a0, w0, ai, wi, eta_a=config.eta_a, eta_w=config.eta_w))(a, w))(start["a"], start["w"], traj.a, traj.w)
    return {"a": np.asarray(traj.a), "w_par": np.asarray(w_par),
            "w_perp": np.asarray(jnp.linalg.norm(traj.w - w_par[..., None] * beta_star / s, axis=-1)),
            "beta": np.asarray(traj.beta), "kernel_distance": np.asarray(kd)}


def scores(config: NeuronConfig, params: dict[str, jax.Array], source: dict[str, Any]) -> dict[str, float]:
    """At the end (time ``steps x lr``): the largest |GD - flow| over neurons in ``a`` and ``beta``, the
    largest relative drift of ``delta``, the final loss, and each neuron's kernel distance."""
    t_end = config.train.steps * config.lr
    th = theory(config, source, np.asarray([t_end]))
    a, w = np.asarray(params["a"]), np.asarray(params["w"])
    deltas = np.asarray(config.deltas)
    drift = np.abs(config.eta_w * a**2 - config.eta_a * np.sum(w**2, -1) - deltas) / np.maximum(np.abs(deltas), 1.0)
    out = {"max_error_a": float(np.max(np.abs(a - th["a"][:, 0]))),
           "max_error_beta": float(np.max(np.abs(a[:, None] * w - th["beta"][:, 0]))),
           "max_delta_drift": float(np.max(drift)),
           "final_loss": float(0.5 * np.sum((a[:, None] * w - np.asarray(source["beta_star"])) ** 2))}
    for k, dl in enumerate(config.deltas):
        out[f"kernel_distance/{label(dl)}"] = float(th["kernel_distance"][k, 0])
    return out


def build(config: NeuronConfig) -> dict[str, Task]:
    """``{"neuron": Task}``: one engine run per seed training every ``delta``'s neuron."""
    labels = {"a": "a", "w": "w"}
    optimizer = optax.multi_transform({"a": optax.sgd(config.lr * config.eta_a), "w": optax.sgd(config.lr * config.eta_w)},
                                      labels)
    return {"neuron": Task(init=lambda key, source: initial(config, source),
                           loss_fn=lambda p, b, k: loss(config, p, b, k),
                           optimizer=optimizer,
                           data_fn=lambda source, step: source,
                           make_source=lambda key: make_source(config, key),
                           evaluate=lambda p, s: scores(config, p, s))}


def _logged(config: NeuronConfig, rows: list[dict[str, Any]], seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rows = sorted((r for r in rows if r.get("seed") == seed and "a/" + label(config.deltas[0]) in r),
                  key=lambda r: r["step"])
    # the metrics of step t describe the parameters before update t: time (t - 1) * lr
    t = np.asarray([(r["step"] - 1) * config.lr for r in rows])
    keys = ("a", "w_par", "w_perp", "kernel_distance")
    return t, {k: np.asarray([[r[f"{k}/{label(dl)}"] for r in rows] for dl in config.deltas]) for k in keys}


def analyze(config: NeuronConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Per seed, the largest |logged GD - flow| along the whole path; figures for the first seed."""
    t_run = trained["neuron"]
    rows = rundir.read_metrics(t_run.run_dir / rundir.METRICS)
    seeds = config.train.seed_values
    deviation = []
    for i, seed in enumerate(seeds):
        source = jax.tree.map(lambda v: np.asarray(v[i]), t_run.sources)
        t, sim = _logged(config, rows, seed)
        th = theory(config, source, t)
        deviation.append({k: float(np.max(np.abs(sim[k] - th[k]))) for k in sim})
    results = {"seeds": seeds, "time": config.train.steps * config.lr, "lr": config.lr,
               "path_deviation": {k: max(d[k] for d in deviation) for k in deviation[0]},
               **{k: t_run.results[k] for k in ("n_runs", "per_seed", "mean", "std", "min", "max") if k in t_run.results}}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        source = jax.tree.map(lambda v: np.asarray(v[0]), t_run.sources)
        t, sim = _logged(config, rows, seeds[0])
        _figure(config, source, t, sim, figures / "neuron.png")
        results["figures"] = ["neuron.png"]
        text = (f"# {NAME}: {config.train.steps} steps of lr {config.lr} (time {config.train.steps * config.lr:g}), "
                f"seeds {seeds}\n\nLargest |gradient descent - exact flow| along the logged path (all seeds, "
                f"all deltas): " + ", ".join(f"{k} {v:.2e}" for k, v in results["path_deviation"].items()) + "\n\n"
                + methods_table([{"method": "neuron", **t_run.results}]))
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return results


def _figure(config: NeuronConfig, source: dict[str, Any], t: np.ndarray, sim: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dense = np.linspace(0.0, config.train.steps * config.lr, 400)
    th = theory(config, source, dense)
    colors = plt.cm.coolwarm(np.linspace(0, 1, len(config.deltas)))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    every = max(1, len(t) // 25)
    for k, dl in enumerate(config.deltas):
        c = colors[k]
        axes[0].plot(th["w_par"][k], th["a"][k], color=c, label=f"δ = {dl:g}")
        axes[0].plot(sim["w_par"][k, ::every], sim["a"][k, ::every], ".", color=c, ms=3)
        axes[1].plot(th["w_par"][k] * th["a"][k], th["w_perp"][k] * th["a"][k], color=c)
        axes[1].plot((sim["w_par"][k] * sim["a"][k])[::every], (sim["w_perp"][k] * sim["a"][k])[::every], ".", color=c, ms=3)
        axes[2].plot(dense, th["kernel_distance"][k], color=c)
        axes[2].plot(t[::every], sim["kernel_distance"][k, ::every], ".", color=c, ms=3)
    axes[0].set(xlabel="w·β*/‖β*‖", ylabel="a", title="parameter space")
    axes[1].set(xlabel="β·β*/‖β*‖", ylabel="|β orthogonal to β*|", title="function space")
    axes[2].set(xlabel="time", ylabel="kernel distance", title="NTK movement")
    axes[0].legend(fontsize=7)
    fig.suptitle("lines: exact flow (jaxsparse.theory.rich_lazy); dots: gradient descent", fontsize=9)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


register(NAME, NeuronConfig, build, analyze=analyze, module=__name__)

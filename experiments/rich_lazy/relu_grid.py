"""Paper 4 (b): the lazy/rich phase diagram of a two-layer ReLU student over scale x delta.

Kunin et al., "Get rich quick" (NeurIPS 2024), Figure 1(b) and its appendix figure (official code:
``allanraventos/getrichquick``, ``two-layer-relu/run_grid.py`` and ``utils.py``). Per seed:

- **Teacher** ``f*(x) = sum_{j<3} s_j relu(v_j^T x)``: 3 hidden units ``v_j`` uniform on the unit sphere,
  readouts ``s_j = ±1`` (independent fair signs; ``TeacherNetwork``).
- **Data**: ``n = 1000`` inputs uniform on the sphere ``S^{d-1}``, ``d = 100``; labels ``f*(x)``.
- **Student** ``f(x) = sum_{i<m} a_i relu(w_i^T x)``, ``m = 50``, no biases, *symmetrised*
  (``StudentNetwork(symmetrize=True)``): ``m/2`` directions ``u_k`` uniform on the sphere and signs
  ``r_k = ±1``; unit ``k`` and unit ``k + m/2`` share ``w = tau alpha u_k`` and carry readouts
  ``+tau r_k / alpha`` and ``-tau r_k / alpha``, so ``f = 0`` at initialisation. With
  ``alpha(delta, tau) = sqrt((sqrt(4 + (delta/tau^2)^2) - delta/tau^2) / 2)`` (``get_alpha``) every unit
  has ``|a_i| ||w_i|| = tau^2`` and conserved quantity ``a_i^2 - ||w_i||^2 = tau^2 (1/alpha^2 - alpha^2) =
  delta`` (exactly conserved by gradient flow, per unit, for a ReLU net). ``delta > 0`` is upstream
  (large readouts), ``delta < 0`` downstream (large first layer).
- **Training**: full-batch gradient descent on ``L = mean_n (f(x) - y)^2`` (no 1/2, as ``fit_nn_gd``)
  with step ``lr / tau^2`` (``base_lr / scale**2``, ``lr = 5e-3``).
- **Measured** (``run_grid.get_results``): the kernel distance ``S = 1 - <K_t, K_0>_F / (||K_t||_F
  ||K_0||_F)`` between the empirical NTK Gram matrices (all parameters, Euclidean metric:
  ``K(x, x') = sum_i [relu(w_i^T x) relu(w_i^T x') + a_i^2 1(w_i^T x > 0) 1(w_i^T x' > 0) x^T x']``)
  on the first ``n_kernel`` training inputs (official: all of them); the Hamming distance of the
  activation patterns, here the *fraction* of (unit, training input) pairs whose on/off state
  differs from initialisation (official: the sum over units of the per-unit fraction, i.e. ``m``
  times this); the parameter distance ``||theta_t - theta_0|| / ||theta_0||`` (official: not divided);
  the test loss on ``n_test`` fresh sphere inputs (official: 10 000, a fixed test seed); the training
  loss; and ``delta_drift = max_i |a_i^2 - ||w_i||^2 - delta|`` (gradient descent conserves delta up to
  ``O(lr)``).

**One program for the whole grid.** The grid is ``Task.hparams = {"scale": [H], "delta": [H]}``
(``H = len(scales) * len(deltas)``, scale-major), so the engine trains seeds x grid points as one
``vmap``-ped program. ``init`` cannot see a grid point, so everything scale- and delta-free is drawn
once per seed in the data source (teacher, inputs, the student's unit directions ``u`` and signs
``r``, the initial activation pattern and the two Gram pieces of ``K_0``), and the trained
parameters are the *displacement* from the grid point's initialisation, ``params = {"dW": [m, d],
"da": [m]}``, starting at zero; the loss builds ``theta_0(u, r, tau, delta)`` from the hparams and
evaluates the net at ``theta_0 + displacement``. As ``d theta / d displacement = I``, gradient descent
on the displacement *is* gradient descent on ``theta``, and every grid point of a seed starts from
the same directions (paired comparisons, as the official code's per-seed ``torch.manual_seed``). The
step ``lr / tau^2`` depends on the grid point while the optimiser is shared: the loss scales its
gradient by ``1 / tau^2`` and keeps its value (``L/tau^2 + stop_gradient(L - L/tau^2)``), and the
optimiser is ``sgd(lr)``. A seed's grid points therefore share their data, teacher and directions.
Every logged step records the training loss and, through the task's ``monitor`` (measured only at
logged steps, so the kernel on all 1000 inputs costs nothing per update), the kernel distance,
Hamming distance and parameter distance; ``analyze`` measures the final parameters exactly (with
the test loss) and draws phase diagrams.

Command: ``jaxsparse run rich-lazy-grid`` (defaults: :class:`GridConfig`; the paper's grid:
:func:`paper`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.data.hypersphere import uniform_sphere
from jaxsparse.train import ConfigError, Task, TrainConfig, Trained, register, rundir

NAME = "rich-lazy-grid"
MEASURES = ("kernel_distance", "hamming", "param_distance", "test_loss", "train_loss", "delta_drift")
"""Final measures of every run (``analyze``); the first five are drawn as phase diagrams."""
LOGGED = ("kernel_distance", "hamming", "param_distance", "train_loss")
"""Measures logged at every step (``metrics.jsonl``; a row of step ``t`` describes the parameters
after ``t - 1`` updates)."""


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """Two-layer ReLU teacher-student over a (scale, delta) grid, every run one vmapped program.

    The CPU default is 5 scales (``logspace(-1, 0.3, 5)``, the paper's range) x 5 deltas
    (``linspace(-1, 1, 5)``) x 2 seeds = 50 runs of 4000 full-batch steps of ``lr / scale^2``, logged
    every 100 steps (the paper's panels are at ``10^2 .. 10^5`` steps). ``jaxsparse run rich-lazy-grid``
    took 3 min 8 s wall (169 s training at ~25 steps/s, 2 s compiling) on a shared 2-core CPU.
    Expected (final state, mean over the 2 seeds): lazy at scales ``>= 0.94`` for every delta (kernel
    distance ``< 1e-3``, Hamming ``< 0.02``, test loss ~0.0036); rich at scale 0.1: upstream
    ``delta >= 0.5`` changes ~42% of the activation pattern within the first 100 steps and reaches
    train loss ``< 1e-6`` and test loss ~0.0011, kernel distance ~0.11 (reached early, then flat);
    downstream ``delta <= -0.5`` changes only ~8-11% of the pattern, its kernel keeps moving
    (distance 0.24-0.38 at the end and rising) and its test loss is ~0.0025-0.0028.
    The paper's 17 x 17 x 16 grid: :func:`paper`. On an H200, ``paper()`` with ``n_kernel=100`` and
    30 000 steps ran all 4624 runs as one program at 277 steps/s (2 min 15 s end to end): at scale
    0.1 the kernel distance is 0.36-0.55 downstream and 0.12-0.14 upstream, Hamming 0.10-0.20
    downstream and 0.42 upstream, test loss 1.1-2.7e-3 downstream and 6.4-7.4e-4 upstream; lazy
    (kernel distance <= 1.8e-3) for scales >= 0.94.

    Attributes:
      scales: initial scales ``tau`` (``|a_i| ||w_i|| = tau^2``), all > 0.
      deltas: conserved quantities ``delta = a_i^2 - ||w_i||^2`` (any reals).
      d: input dimension (>= 2).
      n: training inputs.
      width: student hidden units ``m`` (even: symmetrised pairs).
      teacher_width: teacher hidden units.
      lr: base step; a grid point with scale ``tau`` takes steps ``lr / tau^2``.
      n_kernel: training inputs (the first ones) on which the NTK Gram matrices are compared.
      n_test: fresh test inputs (the same for every run: drawn from ``test_seed``).
      test_seed: seed of the test inputs.
      train: the run loop (``train.steps`` gradient steps per run).
    """

    scales: tuple[float, ...] = (0.1, 0.2113, 0.4467, 0.9441, 1.9953)
    deltas: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    d: int = 100
    n: int = 1000
    width: int = 50
    teacher_width: int = 3
    lr: float = 5e-3
    n_kernel: int = 100
    n_test: int = 2000
    test_seed: int = 201
    train: TrainConfig = TrainConfig(steps=4000, seeds=2, log_every=100, checkpoint_every=2000)

    def __post_init__(self):
        if not self.scales or not all(isinstance(s, (int, float)) and math.isfinite(s) and s > 0 for s in self.scales):
            raise ConfigError(f"`scales` must be a non-empty tuple of finite numbers > 0, got {self.scales!r}")
        if not self.deltas or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.deltas):
            raise ConfigError(f"`deltas` must be a non-empty tuple of finite numbers, got {self.deltas!r}")
        for name, low in (("d", 2), ("n", 1), ("teacher_width", 1), ("n_kernel", 1), ("n_test", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"`{name}` must be an int >= {low}, got {value!r}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 2 or self.width % 2:
            raise ConfigError(f"`width` must be an even int >= 2 (symmetrised pairs), got {self.width!r}")
        if self.n_kernel > self.n:
            raise ConfigError(f"`n_kernel` ({self.n_kernel}) must be <= `n` ({self.n})")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"`lr` must be a finite number > 0, got {self.lr!r}")


def paper() -> GridConfig:
    """The paper's grid (Figure 1b and its appendix): 17 scales ``logspace(-1, 0.3)`` x 17 deltas
    ``linspace(-1, 1)`` x 16 seeds (100..115), 100 000 steps (the appendix ran 10^6), the kernel on all
    1000 training inputs, 10 000 test inputs. Hours on a CPU; meant for an accelerator."""
    return GridConfig(scales=tuple(float(s) for s in np.logspace(-1, 0.3, 17)),
                      deltas=tuple(float(v) for v in np.linspace(-1, 1, 17)),
                      n_kernel=1000, n_test=10_000,
                      train=TrainConfig(steps=100_000, seeds=16, first_seed=100, log_every=1000,
                                        checkpoint_every=10_000))


def alpha(delta: Any, scale: Any) -> Any:
    """``alpha = sqrt((sqrt(4 + u^2) - u) / 2)``, ``u = delta / scale^2``: first layer ``scale * alpha``,
    readout ``scale / alpha`` give ``a^2 - ||w||^2 = delta`` and ``|a| ||w|| = scale^2``
    (``getrichquick``'s ``get_alpha``). Written as ``sqrt(2 / (sqrt(4 + u^2) + u))`` for ``u > 0``, which
    is the same number without the cancellation."""
    u = delta / scale**2
    root = jnp.sqrt(4.0 + u**2)
    return jnp.sqrt(jnp.where(u > 0, 2.0 / (root + jnp.abs(u)), (root + jnp.abs(u)) / 2.0))


def grid(config: GridConfig) -> dict[str, jax.Array]:
    """``{"scale": [H], "delta": [H]}``: every (scale, delta) pair, scale-major (``H = S_tau x S_delta``)."""
    s, v = np.meshgrid(np.asarray(config.scales, np.float32), np.asarray(config.deltas, np.float32), indexing="ij")
    return {"scale": jnp.asarray(s.ravel()), "delta": jnp.asarray(v.ravel())}


def _signs(key: jax.Array, n: int) -> jax.Array:
    return jnp.where(jax.random.bernoulli(key, 0.5, (n,)), 1.0, -1.0).astype(jnp.float32)


def network(w: jax.Array, a: jax.Array, x: jax.Array) -> jax.Array:
    """``f(x) = relu(x W^T) a`` for ``w [m, d]``, ``a [m]``, ``x [n, d]`` -> ``[n]``."""
    return jax.nn.relu(x @ w.T) @ a


def make_source(config: GridConfig, key: jax.Array) -> dict[str, jax.Array]:
    """One seed's scale- and delta-free draw: teacher ``v [3, d]``, ``s [3]``; inputs ``x [n, d]`` and
    labels ``y [n]``; student directions ``u [m/2, d]`` and signs ``r [m/2]``; the initial activation
    pattern ``mask0 [n, m/2]`` (``u_k^T x > 0``, the same for every grid point as ``tau alpha > 0``);
    and ``K_0 = scale^2/alpha^2 * k0_w + scale^2 alpha^2 * k0_a`` on the first ``n_kernel`` inputs."""
    kv, ks, kx, ku, kr = jax.random.split(key, 5)
    v = uniform_sphere(kv, config.teacher_width, config.d)
    s = _signs(ks, config.teacher_width)
    x = uniform_sphere(kx, config.n, config.d)
    u = uniform_sphere(ku, config.width // 2, config.d)
    r = _signs(kr, config.width // 2)
    pre = x @ u.T
    xk, prek = x[:config.n_kernel], pre[:config.n_kernel]
    on = (prek > 0).astype(jnp.float32)
    # both units of a pair contribute the same, hence the 2: d f / d w_i terms (readout^2) and d f / d a_i terms
    k0_w = 2.0 * (on @ on.T) * (xk @ xk.T)
    k0_a = 2.0 * jax.nn.relu(prek) @ jax.nn.relu(prek).T
    return {"v": v, "s": s, "x": x, "y": network(v, s, x), "u": u, "r": r, "mask0": pre > 0,
            "k0_w": k0_w, "k0_a": k0_a}


def initial(source: dict[str, jax.Array], scale: Any, delta: Any) -> tuple[jax.Array, jax.Array]:
    """The symmetrised initialisation of grid point ``(scale, delta)``: ``W0 = scale alpha [u; u]``
    ``[m, d]`` and ``a0 = scale / alpha [r; -r]`` ``[m]`` (so ``f = 0`` and ``a^2 - ||w||^2 = delta``)."""
    al = alpha(delta, scale)
    u, r = source["u"], source["r"]
    return scale * al * jnp.concatenate([u, u]), scale / al * jnp.concatenate([r, -r])


def _cosine_distance(k: jax.Array, k0: jax.Array) -> jax.Array:
    return 1.0 - jnp.sum(k * k0) / (jnp.linalg.norm(k) * jnp.linalg.norm(k0))


def measures(source: dict[str, jax.Array], params: dict[str, jax.Array], hp: dict[str, jax.Array],
             n_kernel: int) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``(train_loss, measures)`` of one run at ``theta_0(hp) + params`` on the training inputs:
    ``kernel_distance`` (NTK Gram on the first ``n_kernel`` inputs vs ``K_0``), ``hamming`` (fraction
    of changed (unit, input) on/off states), ``param_distance`` (``||theta - theta_0|| / ||theta_0||``),
    ``delta_drift`` (``max_i |a_i^2 - ||w_i||^2 - delta|``)."""
    scale, delta = hp["scale"], hp["delta"]
    w0, a0 = initial(source, scale, delta)
    w, a = w0 + params["dW"], a0 + params["da"]
    x = source["x"]
    pre = x @ w.T
    train_loss = jnp.mean((jax.nn.relu(pre) @ a - source["y"]) ** 2)
    on = pre > 0
    mask0 = jnp.concatenate([source["mask0"], source["mask0"]], axis=1)
    hamming = jnp.mean(on != mask0)
    onk, prek, xk = on[:n_kernel].astype(pre.dtype), pre[:n_kernel], x[:n_kernel]
    k = ((onk * a**2) @ onk.T) * (xk @ xk.T) + jax.nn.relu(prek) @ jax.nn.relu(prek).T
    al2 = alpha(delta, scale) ** 2
    k0 = scale**2 / al2 * source["k0_w"] + scale**2 * al2 * source["k0_a"]
    norm0 = jnp.sqrt(jnp.sum(w0**2) + jnp.sum(a0**2))
    dist = jnp.sqrt(jnp.sum(params["dW"] ** 2) + jnp.sum(params["da"] ** 2)) / norm0
    drift = jnp.max(jnp.abs(a**2 - jnp.sum(w**2, axis=1) - delta))
    return train_loss, {"kernel_distance": _cosine_distance(k, k0), "hamming": hamming, "param_distance": dist,
                        "delta_drift": drift}


def loss(config: GridConfig, params: dict[str, jax.Array], source: dict[str, jax.Array], key: jax.Array,
         hp: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training loss ``L`` of one run as its value, with gradient ``grad L / scale^2`` (so ``sgd(lr)``
    takes the step ``lr / scale^2``); ``aux``: ``{"train_loss": L}``."""
    w0, a0 = initial(source, hp["scale"], hp["delta"])
    f = network(w0 + params["dW"], a0 + params["da"], source["x"])
    value = jnp.mean((f - source["y"]) ** 2)
    scaled = value / hp["scale"] ** 2
    return scaled + jax.lax.stop_gradient(value - scaled), {"train_loss": value}


def monitor(config: GridConfig, params: dict[str, jax.Array], source: dict[str, jax.Array],
            hp: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """The logged measures of :func:`measures` (kernel, Hamming and parameter distance) at a logged step."""
    _, m = measures(source, params, hp, config.n_kernel)
    return {k: m[k] for k in ("kernel_distance", "hamming", "param_distance")}


def fresh_inputs(config: GridConfig) -> jax.Array:
    """``[n_test, d]`` fresh inputs on the sphere, the same for every run."""
    return uniform_sphere(jax.random.key(config.test_seed), config.n_test, config.d)


def final_measures(config: GridConfig, params: dict[str, jax.Array], sources: dict[str, jax.Array]) -> dict[str, np.ndarray]:
    """Every run's :data:`MEASURES` ``{name: [S, H]}`` from stacked ``params`` ``[S, H, ...]`` and
    ``sources`` ``[S, ...]``."""
    hp = grid(config)
    x_test = fresh_inputs(config)

    def one(p, src, h):
        train_loss, m = measures(src, p, h, config.n_kernel)
        w0, a0 = initial(src, h["scale"], h["delta"])
        f = network(w0 + p["dW"], a0 + p["da"], x_test)
        return {"train_loss": train_loss, "test_loss": jnp.mean((f - network(src["v"], src["s"], x_test)) ** 2), **m}

    fn = jax.jit(jax.vmap(jax.vmap(one, in_axes=(0, None, 0)), in_axes=(0, 0, None)))
    out = fn(jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, sources), hp)
    return {k: np.asarray(out[k], np.float64) for k in MEASURES}


def build(config: GridConfig) -> dict[str, Task]:
    """``{"grid": Task}``: seeds x (scale, delta) grid points trained as one program (``Task.hparams``)."""
    def init(key, source):
        return {"dW": jnp.zeros((config.width, config.d), jnp.float32), "da": jnp.zeros((config.width,), jnp.float32)}

    return {"grid": Task(init=init,
                         loss_fn=lambda p, b, k, h: loss(config, p, b, k, h),
                         optimizer=optax.sgd(config.lr),
                         data_fn=lambda source, step: source,
                         make_source=lambda key: make_source(config, key),
                         hparams=grid(config),
                         monitor=lambda p, source, h: monitor(config, p, source, h))}


def _table(config: GridConfig, values: np.ndarray) -> list[list[float]]:
    """``[S, H]`` -> ``[n_scales][n_deltas]`` lists."""
    return values.reshape(len(config.scales), len(config.deltas)).tolist()


def _logged_grid(config: GridConfig, rows: list[dict[str, Any]], step: int, name: str) -> np.ndarray:
    """Mean over seeds of logged ``name`` at ``step``: ``[n_scales, n_deltas]``."""
    h = len(config.scales) * len(config.deltas)
    acc = [[] for _ in range(h)]
    for r in rows:
        if r["step"] == step and name in r:
            acc[r["hparam"]].append(r[name])
    return np.asarray([np.mean(a) if a else np.nan for a in acc]).reshape(len(config.scales), len(config.deltas))


def panel_steps(config: GridConfig) -> list[int]:
    """Logged steps drawn as earlier panels of the phase diagrams: the logged steps nearest to
    ``steps / 100`` and ``steps / 10`` (distinct, before the end); the last panel is the final state."""
    steps, every = config.train.steps, config.train.log_every
    logged = sorted({s for s in range(every, steps, every)})
    out = []
    for target in (steps / 100, steps / 10):
        if logged:
            best = min(logged, key=lambda s: abs(math.log(s / target)))
            if best not in out:
                out.append(best)
    return out


def analyze(config: GridConfig, trained: Mapping[str, Trained], run_dir: Path, progress: bool) -> dict[str, Any]:
    """Final measures of every run; per grid point mean ± std over seeds; phase diagrams."""
    t = trained["grid"]
    final = final_measures(config, t.state.params, t.sources)
    seeds = config.train.seed_values
    nd = len(config.deltas)
    scales = [config.scales[j // nd] for j in range(len(config.scales) * nd)]
    deltas = [config.deltas[j % nd] for j in range(len(config.scales) * nd)]
    runs = [{"seed": s, "hparam": j, "scale": float(scales[j]), "delta": float(deltas[j]),
             **{k: float(final[k][i, j]) for k in MEASURES}} for i, s in enumerate(seeds) for j in range(len(scales))]
    summary = rundir.summarize(runs, keys=("seed", "hparam", "step", "scale", "delta"))
    ddof = 1 if len(seeds) > 1 else 0
    points = [{"scale": float(scales[j]), "delta": float(deltas[j]),
               **{k: {"mean": float(np.mean(final[k][:, j])), "std": float(np.std(final[k][:, j], ddof=ddof))}
                  for k in MEASURES}} for j in range(len(scales))]
    tables = {k: {"mean": _table(config, final[k].mean(0)), "std": _table(config, final[k].std(0, ddof=ddof))}
              for k in MEASURES}
    results = {"seeds": seeds, "steps": config.train.steps, "lr": config.lr, "scales": list(config.scales),
               "deltas": list(config.deltas), "grid": points, "tables": tables,
               "timing": t.results.get("timing"), **summary}
    if rundir.is_writer():
        figures = run_dir / rundir.FIGURES
        figures.mkdir(parents=True, exist_ok=True)
        rows = rundir.read_metrics(t.run_dir / rundir.METRICS)
        names = _phase_figures(config, final, rows, figures)
        results["figures"] = names
        text = _markdown(config, tables, results)
        (run_dir / "results.md").write_text(text)
        if progress:
            print(text)
    return json.loads(json.dumps(results))


def _markdown(config: GridConfig, tables: dict[str, Any], results: dict[str, Any]) -> str:
    lines = [f"# {NAME}: {len(config.scales)} scales x {len(config.deltas)} deltas x {config.train.seeds} seeds, "
             f"{config.train.steps} steps of lr {config.lr:g} / scale^2", "",
             f"Teacher: {config.teacher_width} units; student width {config.width} (symmetrised, f = 0 at init); "
             f"n = {config.n}, d = {config.d}; kernel on {config.n_kernel} inputs; test on {config.n_test}.", "",
             "Rows: scale; columns: delta. Mean ± std over seeds of the final state.", ""]
    for k in MEASURES:
        mean, std = np.asarray(tables[k]["mean"]), np.asarray(tables[k]["std"])
        lines += [f"**{k}**", "", "| scale \\ delta | " + " | ".join(f"{v:g}" for v in config.deltas) + " |",
                  "|---" * (len(config.deltas) + 1) + "|"]
        for i, s in enumerate(config.scales):
            lines.append(f"| {s:g} | " + " | ".join(f"{mean[i, j]:.3g} ± {std[i, j]:.1g}" for j in range(len(config.deltas)))
                         + " |")
        lines.append("")
    for name in results.get("figures", []):
        lines.append(f"![{name}](figures/{name})")
    return "\n".join(lines) + "\n"


def _phase_figures(config: GridConfig, final: dict[str, np.ndarray], rows: list[dict[str, Any]],
                   figures: Path) -> list[str]:
    """``phase_<measure>.png`` (heatmaps over scale x delta at the panel steps and at the end) and
    ``phase_diagram.png`` (every measure at the end)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales, deltas = np.asarray(config.scales), np.asarray(config.deltas)
    shape = (len(scales), len(deltas))
    cmaps = {"kernel_distance": "viridis", "hamming": "PuRd", "param_distance": "cividis", "test_loss": "coolwarm",
             "train_loss": "coolwarm"}

    def heat(ax, values, vmin, vmax, cmap, title):
        im = ax.pcolormesh(np.arange(len(scales) + 1), np.arange(len(deltas) + 1), values.T, vmin=vmin, vmax=vmax,
                           cmap=cmap, shading="flat")
        ax.set_xticks(np.arange(len(scales)) + 0.5, [f"{s:.2g}" for s in scales], fontsize=7, rotation=45)
        ax.set_yticks(np.arange(len(deltas)) + 0.5, [f"{v:g}" for v in deltas], fontsize=7)
        ax.set(xlabel="scale τ", ylabel="δ", title=title)
        return im

    names = []
    fig, axes = plt.subplots(1, len(cmaps), figsize=(3.6 * len(cmaps), 3.4))
    for ax, (k, cmap) in zip(axes, cmaps.items()):
        v = final[k].mean(0).reshape(shape)
        fig.colorbar(heat(ax, v, np.nanmin(v), np.nanmax(v), cmap, k.replace("_", " ")), ax=ax)
    fig.suptitle(f"{NAME}: after {config.train.steps} steps (mean over {config.train.seeds} seeds)", fontsize=9)
    fig.tight_layout()
    fig.savefig(figures / "phase_diagram.png", dpi=100)
    plt.close(fig)
    names.append("phase_diagram.png")
    panels = panel_steps(config)
    for k, cmap in cmaps.items():
        logged = k in LOGGED and rows
        columns = [(f"t = {s - 1}", _logged_grid(config, rows, s, k)) for s in panels] if logged else []
        columns.append((f"t = {config.train.steps}", final[k].mean(0).reshape(shape)))
        stack = np.stack([c[1] for c in columns])
        vmin, vmax = np.nanmin(stack), np.nanmax(stack)
        fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 3.4), squeeze=False)
        for ax, (title, v) in zip(axes[0], columns):
            im = heat(ax, v, vmin, vmax, cmap, f"{k.replace('_', ' ')}, {title}")
        fig.colorbar(im, ax=axes[0].tolist())
        fig.savefig(figures / f"phase_{k}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        names.append(f"phase_{k}.png")
    if rows:
        _curves_figure(config, rows, figures / "curves.png")
        names.append("curves.png")
    return names


def _curves_figure(config: GridConfig, rows: list[dict[str, Any]], path: Path) -> None:
    """Logged kernel distance, Hamming distance and training loss against updates, one column per
    scale, one line per delta (mean over seeds)."""
    import matplotlib.pyplot as plt

    nd = len(config.deltas)
    steps = np.asarray(sorted({r["step"] for r in rows}))
    keys = ("kernel_distance", "hamming", "train_loss")
    colors = plt.cm.coolwarm(np.linspace(0, 1, nd))
    fig, axes = plt.subplots(len(keys), len(config.scales), figsize=(2.8 * len(config.scales), 2.3 * len(keys)),
                             squeeze=False, sharex=True, sharey="row")
    table = {}
    for r in rows:
        table.setdefault((r["hparam"], r["step"]), []).append(r)
    for i, scale in enumerate(config.scales):
        for j, delta in enumerate(config.deltas):
            h = i * nd + j
            for row, k in enumerate(keys):
                values = [np.mean([r[k] for r in table.get((h, s), [])]) for s in steps]
                axes[row, i].plot(steps - 1, values, color=colors[j], label=f"δ = {delta:g}")
        axes[0, i].set_title(f"scale τ = {scale:.2g}", fontsize=9)
        axes[-1, i].set_xlabel("updates")
    for row, k in enumerate(keys):
        axes[row, 0].set_ylabel(k.replace("_", " "))
    axes[-1, 0].set_yscale("log")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


register(NAME, GridConfig, build, analyze=analyze, module=__name__)

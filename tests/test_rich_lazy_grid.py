"""Paper 4 (b): the two-layer ReLU (scale, delta) grid (rich-lazy-grid), smoke size through the engine."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import train
from jaxsparse.experiments.rich_lazy import relu_grid as rg

SMALL = rg.GridConfig(scales=(0.1, 1.0), deltas=(-1.0, 0.0, 1.0), d=8, n=64, width=6, n_kernel=16, n_test=128,
                      train=train.TrainConfig(steps=40, seeds=2, log_every=1, checkpoint_every=40))


def _zero_params(config):
    return {"dW": jnp.zeros((config.width, config.d)), "da": jnp.zeros((config.width,))}


def test_alpha_sets_delta_and_scale():
    delta = jnp.asarray([-100.0, -1.0, -0.3, 0.0, 0.3, 1.0, 100.0])
    for scale in (0.1, 1.0, 2.0):
        al = rg.alpha(delta, scale)
        a, w = scale / al, scale * al
        np.testing.assert_allclose(a**2 - w**2, delta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a * w, scale**2, rtol=1e-6)
        # the official closed form (getrichquick get_alpha), in float64
        u = np.asarray(delta, np.float64) / scale**2
        np.testing.assert_allclose(al, np.sqrt((np.sqrt(4 + u**2) - u) / 2), rtol=1e-5)


def test_symmetrised_init_is_zero_function_with_the_grid_delta():
    source = rg.make_source(SMALL, jax.random.key(0))
    hp = rg.grid(SMALL)
    for scale, delta in zip(np.asarray(hp["scale"]), np.asarray(hp["delta"])):
        w0, a0 = rg.initial(source, scale, delta)
        assert w0.shape == (SMALL.width, SMALL.d) and a0.shape == (SMALL.width,)
        np.testing.assert_allclose(rg.network(w0, a0, source["x"]), 0.0, atol=1e-6)
        # every unit: a_i^2 - ||w_i||^2 = delta, |a_i| ||w_i|| = scale^2
        np.testing.assert_allclose(a0**2 - jnp.sum(w0**2, axis=1), delta, atol=1e-5 * max(1.0, abs(delta)))
        np.testing.assert_allclose(jnp.abs(a0) * jnp.linalg.norm(w0, axis=1), scale**2, rtol=1e-5)
    # teacher: unit-norm hidden units and +-1 readouts; inputs on the sphere
    np.testing.assert_allclose(jnp.linalg.norm(source["v"], axis=1), 1.0, rtol=1e-6)
    assert set(np.asarray(source["s"]).tolist()) <= {-1.0, 1.0}
    np.testing.assert_allclose(jnp.linalg.norm(source["x"], axis=1), 1.0, rtol=1e-6)


def test_measures_vanish_at_initialisation_and_match_a_jacobian_ntk():
    source = rg.make_source(SMALL, jax.random.key(1))
    hp = {"scale": jnp.float32(0.5), "delta": jnp.float32(-0.7)}
    _, m = rg.measures(source, _zero_params(SMALL), hp, SMALL.n_kernel)
    assert abs(float(m["kernel_distance"])) < 1e-6
    assert float(m["hamming"]) == 0.0 and float(m["param_distance"]) == 0.0
    assert float(m["delta_drift"]) < 1e-5
    # a moved network: the closed-form NTK distance equals the one from the autodiff Jacobian
    key_w, key_a = jax.random.split(jax.random.key(2))
    params = {"dW": 0.3 * jax.random.normal(key_w, (SMALL.width, SMALL.d)),
              "da": 0.3 * jax.random.normal(key_a, (SMALL.width,))}
    _, m = rg.measures(source, params, hp, SMALL.n_kernel)
    w0, a0 = rg.initial(source, hp["scale"], hp["delta"])
    xk = source["x"][:SMALL.n_kernel]

    def gram(w, a):
        jac = jax.jacobian(lambda p: rg.network(p["w"], p["a"], xk))({"w": w, "a": a})
        flat = jnp.concatenate([jac["w"].reshape(len(xk), -1), jac["a"]], axis=1)
        return np.asarray(flat @ flat.T, np.float64)

    k0, k1 = gram(w0, a0), gram(w0 + params["dW"], a0 + params["da"])
    expected = 1 - np.sum(k0 * k1) / (np.linalg.norm(k0) * np.linalg.norm(k1))
    assert expected > 1e-3
    np.testing.assert_allclose(float(m["kernel_distance"]), expected, rtol=1e-3)
    on0 = np.asarray(source["x"] @ w0.T > 0)
    on1 = np.asarray(source["x"] @ (w0 + params["dW"]).T > 0)
    assert float(m["hamming"]) == pytest.approx(np.mean(on0 != on1))


def test_loss_gradient_is_scaled_by_one_over_scale_squared():
    source = rg.make_source(SMALL, jax.random.key(3))
    key = jax.random.key(0)
    params = {"dW": 0.01 * jnp.ones((SMALL.width, SMALL.d)), "da": 0.01 * jnp.ones((SMALL.width,))}
    for scale in (0.1, 2.0):
        hp = {"scale": jnp.float32(scale), "delta": jnp.float32(0.5)}
        (value, aux), g = jax.value_and_grad(lambda p: rg.loss(SMALL, p, source, key, hp), has_aux=True)(params)
        plain = jax.grad(lambda p: rg.measures(source, p, hp, SMALL.n_kernel)[0])(params)
        np.testing.assert_allclose(value, aux["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(g["dW"], plain["dW"] / scale**2, rtol=1e-4, atol=1e-7)


def test_smoke_run_through_the_engine(tmp_path):
    results = train.fit(rg.NAME, SMALL, tmp_path / "grid", progress=False)
    saved = json.loads((tmp_path / "grid" / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    n_points = len(SMALL.scales) * len(SMALL.deltas)
    assert len(saved["grid"]) == n_points and saved["n_runs"] == n_points * SMALL.train.seeds
    for k in rg.MEASURES:
        table = np.asarray(saved["tables"][k]["mean"])
        assert table.shape == (len(SMALL.scales), len(SMALL.deltas)) and np.all(np.isfinite(table))
    # training lowers the loss everywhere from its initial value mean(y^2) (f = 0 at init)
    rows = train.read_metrics(tmp_path / "grid" / "methods" / "grid" / "metrics.jsonl")
    first = [r for r in rows if r["step"] == 1]
    assert len(first) == n_points * SMALL.train.seeds
    for r in first:  # the monitor measures the state after step 1: one update has moved it
        assert r["param_distance"] > 0.0 and 0.0 <= r["hamming"] < 0.5 and np.isfinite(r["kernel_distance"])
    # the logged measures at the last step are the final state's (analyze measures that state again)
    final = {(r["seed"], r["hparam"]): r["kernel_distance"] for r in rows if r["step"] == SMALL.train.steps}
    kd_final = np.asarray(saved["tables"]["kernel_distance"]["mean"]).ravel()
    kd_logged = np.asarray([np.mean([v for (s, j), v in final.items() if j == h]) for h in range(n_points)])
    np.testing.assert_allclose(kd_logged, kd_final, rtol=1e-4, atol=1e-6)
    last = {(r["seed"], r["hparam"]): r["train_loss"] for r in rows if r["step"] == SMALL.train.steps}
    assert all(last[(r["seed"], r["hparam"])] < r["train_loss"] for r in first)
    # gradient descent keeps delta up to O(lr^2) per step (step lr / scale^2 = 0.5 at scale 0.1)
    assert max(p["delta_drift"]["mean"] for p in saved["grid"]) < 0.1
    assert max(p["delta_drift"]["mean"] for p in saved["grid"] if p["scale"] == 1.0) < 1e-3
    # small scale learns features (rich), scale 1 barely moves its kernel in 40 steps (lazy)
    kd = np.asarray(saved["tables"]["kernel_distance"]["mean"])
    assert kd[0].min() > 10 * kd[1].max()
    figures = tmp_path / "grid" / "figures"
    for name in saved["figures"]:
        assert (figures / name).stat().st_size > 0
    assert {"phase_diagram.png", "phase_kernel_distance.png", "phase_test_loss.png"} <= set(saved["figures"])
    assert "kernel_distance" in (tmp_path / "grid" / "results.md").read_text()
    # restore: the stacked state has the seed and grid axes
    _, state = train.restore(tmp_path / "grid", method="grid")
    assert state.params["dW"].shape == (SMALL.train.seeds, n_points, SMALL.width, SMALL.d)


@pytest.mark.parametrize("change, field", [
    (dict(scales=()), "scales"), (dict(scales=(0.1, -1.0)), "scales"), (dict(deltas=(float("nan"),)), "deltas"),
    (dict(width=5), "width"), (dict(d=1), "d"), (dict(n_kernel=2000), "n_kernel"), (dict(lr=0.0), "lr"),
    (dict(n_test=0), "n_test"),
])
def test_config_errors_name_the_field(change, field):
    with pytest.raises(train.ConfigError, match=f"`{field}`"):
        dataclasses.replace(rg.GridConfig(), **change)


def test_paper_grid():
    config = rg.paper()
    assert (len(config.scales), len(config.deltas), config.train.seeds) == (17, 17, 16)
    assert config.scales[0] == pytest.approx(0.1) and config.scales[-1] == pytest.approx(10**0.3)
    assert rg.grid(config)["scale"].shape == (17 * 17,)

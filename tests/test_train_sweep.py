"""Train state, step, scan loop and vmapped/sharded sweeps: a sweep equals separate runs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import run_on_fake_devices
from jaxsparse.experiments.sae_synthetic import DataConfig, ModelConfig, SAEConfig, build
from jaxsparse.train import (
    TrainConfig,
    Task,
    TrainState,
    build_sweep,
    init_run,
    init_state,
    make_step,
    scan_batches,
    scan_steps,
)

TINY = SAEConfig(
    data=DataConfig(n_latents=8, n_features=4, k=2, n_train=64, n_test=64),
    model=ModelConfig(n_latents=8),
    optim=dataclasses.replace(SAEConfig().optim, lr=1e-2),
    train=TrainConfig(steps=20, checkpoint_every=10, log_every=5),
)


def _quadratic_task():
    """loss = mean((w - batch)^2) with batch = step-dependent target: every step differs."""

    def loss_fn(params, batch, key):
        return jnp.mean((params["w"] - batch) ** 2), {"w_mean": jnp.mean(params["w"])}

    def data_fn(source, step):
        return jax.random.normal(jax.random.fold_in(source, step), (3,))

    return loss_fn, data_fn


def test_step_updates_state_and_reports_metrics():
    loss_fn, _ = _quadratic_task()
    opt = optax.sgd(0.5)
    state = init_state(jax.random.key(0), {"w": jnp.ones(3)}, opt)
    new, metrics = make_step(loss_fn, opt)(state, jnp.zeros(3))
    assert int(new.step) == 1 and set(metrics) == {"loss", "w_mean"}
    assert float(metrics["loss"]) == pytest.approx(1.0)
    # d/dw mean((w-0)^2) = 2w/3 -> w = 1 - 0.5 * 2/3
    np.testing.assert_allclose(new.params["w"], np.full(3, 1 - 1 / 3), rtol=1e-6)
    np.testing.assert_array_equal(new.key, state.key)  # step keys are fold_in(key, step)


def test_project_is_applied_after_update():
    loss_fn, _ = _quadratic_task()
    opt = optax.sgd(1.0)
    state = init_state(jax.random.key(0), {"w": jnp.ones(3)}, opt)
    new, _ = make_step(loss_fn, opt, project=lambda p: {"w": p["w"] / jnp.linalg.norm(p["w"])})(state, 5 * jnp.ones(3))
    assert float(jnp.linalg.norm(new.params["w"])) == pytest.approx(1.0)


def test_scan_loop_equals_python_loop_and_host_fed_batches():
    loss_fn, data_fn = _quadratic_task()
    opt = optax.adam(0.1)
    step = make_step(loss_fn, opt)
    state0 = init_state(jax.random.key(1), {"w": jnp.zeros(3)}, opt)
    source = jax.random.key(2)
    scanned, metrics = jax.jit(scan_steps(step, data_fn, 7))(state0, source)
    assert metrics["loss"].shape == (7,)
    state = state0
    for _ in range(7):
        state, _ = step(state, data_fn(source, state.step))
    np.testing.assert_allclose(scanned.params["w"], state.params["w"], rtol=1e-6)
    batches = jnp.stack([data_fn(source, jnp.int32(t)) for t in range(7)])
    fed, fed_metrics = jax.jit(scan_batches(step))(state0, batches)
    np.testing.assert_allclose(fed.params["w"], scanned.params["w"], rtol=1e-6)
    np.testing.assert_allclose(fed_metrics["loss"], metrics["loss"], rtol=1e-6)


def test_eight_seeds_vmapped_equal_eight_single_seed_runs():
    task = build(TINY)
    sweep = build_sweep(task, list(range(8)))
    states, sources = sweep.init()
    states, metrics = sweep.chunk(20)(states, sources)
    assert metrics["loss"].shape == (8, 20)
    single_chunk = jax.jit(scan_steps(make_step(task.loss_fn, task.optimizer, project=task.project), task.data_fn, 20))
    single_init = jax.jit(lambda seed: init_run(task, seed))
    for seed in range(8):
        state, source = single_init(jnp.int32(seed))
        state, single_metrics = single_chunk(state, source)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(jax.tree.map(lambda x: x[seed], states))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(single_metrics["loss"], metrics["loss"][seed], rtol=1e-5)
    # different seeds really are different runs
    assert not np.allclose(states.params["decoder"]["w"][0], states.params["decoder"]["w"][1])


def test_hyperparameter_axis_equals_separate_runs():
    grid = (0.0, 0.05, 0.5)
    task = build(dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, lam_grid=grid)))
    sweep = build_sweep(task, [0, 1])
    states0, sources = sweep.init()
    states, metrics = sweep.chunk(10)(states0, sources)
    assert states.params["decoder"]["w"].shape == (2, 3, 8, 4) and metrics["loss"].shape == (2, 3, 10)
    # separate runs: one seed, one lam (passed as the loss's hyperparameter), one compiled program
    single_chunk = jax.jit(scan_steps(make_step(task.loss_fn, task.optimizer, project=task.project), task.data_fn, 10))
    for seed in range(2):
        for j, lam in enumerate(grid):
            start = jax.tree.map(lambda x: x[seed, j], states0)
            st, m = single_chunk(start, jax.tree.map(lambda x: x[seed], sources), jnp.float32(lam))
            np.testing.assert_allclose(st.params["encoder"]["w"], states.params["encoder"]["w"][seed, j], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m["loss"], metrics["loss"][seed, j], rtol=1e-5)
    # every grid point starts from the seed's init, and the sparsity weight matters
    np.testing.assert_array_equal(states0.params["encoder"]["w"][:, 0], states0.params["encoder"]["w"][:, 2])
    # the sparsity weight matters
    assert not np.allclose(metrics["loss"][:, 0, -1], metrics["loss"][:, 2, -1])


@pytest.mark.parametrize("seed_batch", [1, 2, 5, "auto"])
def test_seed_batches_equal_one_vmap_over_all_seeds(seed_batch):
    """Groups of 1, 2 (with a remainder of 1) or all 5 seeds give the one-vmap sweep's states and metrics,
    with and without a hyperparameter axis."""
    for task in (build(TINY), build(dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, lam_grid=(0.0, 0.5))))):
        ref_sweep = build_sweep(task, list(range(5)))
        states0, sources = ref_sweep.init()
        ref, ref_metrics = ref_sweep.chunk(10)(states0, sources)
        grouped, metrics = build_sweep(task._replace(seed_batch=seed_batch), list(range(5))).chunk(10)(states0, sources)
        for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(grouped)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ref_metrics["loss"], metrics["loss"], rtol=1e-5)


def test_auto_seed_batch_keeps_small_runs_in_one_vmap_and_maps_over_wide_ones():
    """On CPU, groups are sized so that the largest per-seed matmul output times the group fits 512 KiB,
    and divide the seeds."""
    def chunk_with(width):
        def per_seed(state, source, batches, hp):
            h = jnp.tanh(source[:, None] @ state[None, :width])  # [64, width] float32, a matmul's output
            return state, {"loss": jnp.sum(h)}
        return per_seed
    states, sources = jnp.ones((8, 4096)), jnp.ones((8, 64))
    from jaxsparse.train import auto_seed_batch
    assert auto_seed_batch(chunk_with(16), states, sources, None, None) >= 8  # 4 KiB per seed: one vmap
    assert auto_seed_batch(chunk_with(4096), states, sources, None, None) == 1  # 1 MiB per seed
    assert auto_seed_batch(chunk_with(512), states, sources, None, None) == 4  # 128 KiB per seed
    assert auto_seed_batch(chunk_with(512), states[:6], sources[:6], None, None) == 3  # divides the 6 seeds


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_seed_batch_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="seed_batch"):
        build_sweep(build(TINY)._replace(seed_batch=bad), [0, 1]).chunk(5)


def test_train_state_is_a_pytree_with_four_fields():
    state = init_state(jax.random.key(0), {"w": jnp.ones(2)}, optax.adam(1e-3))
    assert isinstance(state, TrainState) and state._fields == ("step", "params", "opt_state", "key")
    assert state.key.dtype == jnp.uint32 and state.step.dtype == jnp.int32
    assert len(jax.tree.leaves(state)) == 1 + 1 + 3 + 1  # step, w, (count, mu, nu), key


def test_sharded_over_eight_devices_equals_unsharded():
    out = run_on_fake_devices(
        """
        import dataclasses, jax, numpy as np
        import jaxsparse
        from jaxsparse.experiments.sae_synthetic import DataConfig, ModelConfig, SAEConfig, build
        from jaxsparse.train import TrainConfig, build_sweep
        assert len(jax.devices()) == 8
        cfg = SAEConfig(data=DataConfig(n_latents=8, n_features=4, k=2, n_train=64, n_test=64),
                        model=ModelConfig(n_latents=8), train=TrainConfig(steps=20))
        task = build(cfg)
        results = []
        for devices, seed_batch in ((jax.devices(), None), (jax.devices()[:1], None), (jax.devices()[:4], 1)):
            sw = build_sweep(task._replace(seed_batch=seed_batch), list(range(8)), devices=devices)
            states, sources = sw.init()
            states, metrics = sw.chunk(20)(states, sources)
            w = states.params["decoder"]["w"]
            print("devices", len(w.sharding.device_set), "shards", len(w.addressable_shards), w.addressable_shards[0].data.shape)
            results.append(np.asarray(w))
        np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(results[2], results[1], rtol=1e-5, atol=1e-6)  # 4 devices, seeds mapped on each
        print("OK")
        """
    )
    assert "devices 8 shards 8 (1, 8, 4)" in out and "devices 1 shards 1 (8, 8, 4)" in out and "OK" in out
    assert "devices 4 shards 4 (2, 8, 4)" in out


def test_monitor_measures_the_final_state_of_each_chunk_with_and_without_hparams():
    loss_fn, data_fn = _quadratic_task()
    init = lambda key, source: {"w": jax.random.normal(key, (3,))}  # noqa: E731
    monitor = lambda params, source: {"w_norm": jnp.linalg.norm(params["w"])}  # noqa: E731
    task = Task(init=init, loss_fn=loss_fn, optimizer=optax.sgd(0.1), data_fn=data_fn, monitor=monitor)
    sweep = build_sweep(task, [0, 1])
    states, sources = sweep.init()
    states, metrics = sweep.chunk(4)(states, sources)
    assert metrics["w_norm"].shape == (2, 4) and np.isnan(metrics["w_norm"][:, :-1]).all()
    np.testing.assert_allclose(metrics["w_norm"][:, -1], np.linalg.norm(states.params["w"], axis=-1), rtol=1e-6)
    # with a grid the monitor also sees the grid point
    hp_loss = lambda params, batch, key, hp: loss_fn(params, batch * hp, key)  # noqa: E731
    hp_monitor = lambda params, source, hp: {"scaled": hp * jnp.sum(params["w"])}  # noqa: E731
    task = task._replace(loss_fn=hp_loss, monitor=hp_monitor, hparams=jnp.array([1.0, 2.0, 3.0]))
    sweep = build_sweep(task, [0, 1])
    states, sources = sweep.init()
    states, metrics = sweep.chunk(3)(states, sources)
    assert metrics["scaled"].shape == (2, 3, 3)
    np.testing.assert_allclose(metrics["scaled"][..., -1], jnp.array([1.0, 2.0, 3.0]) * states.params["w"].sum(-1),
                               rtol=1e-5)
    clash = task._replace(monitor=lambda params, source, hp: {"w_mean": jnp.sum(params["w"])})
    with pytest.raises(ValueError, match="w_mean"):
        build_sweep(clash, [0]).chunk(2)(*build_sweep(clash, [0]).init())


def test_grid_init_gives_each_grid_point_its_own_start_from_the_seeds_draw():
    loss_fn, data_fn = _quadratic_task()
    hp_loss = lambda params, batch, key, hp: loss_fn(params, batch, key)  # noqa: E731
    init = lambda key, source: {"w": jax.random.normal(key, (3,))}  # noqa: E731
    scales = jnp.array([0.5, 1.0, 4.0])
    task = Task(init=init, loss_fn=hp_loss, optimizer=optax.adam(0.1), data_fn=data_fn, hparams=scales,
                grid_init=lambda params, hp: {"w": hp * params["w"]})
    states, _ = build_sweep(task, [3, 4]).init()
    drawn = jnp.stack([init(jax.random.fold_in(jax.random.key(s), 1), None)["w"] for s in (3, 4)])
    np.testing.assert_allclose(states.params["w"], scales[None, :, None] * drawn[:, None], rtol=1e-6)
    # the training key is the seed's, shared by its grid points; the optimiser state starts fresh
    np.testing.assert_array_equal(states.key[:, 0], states.key[:, 2])
    assert np.all(np.asarray(states.step) == 0) and states.opt_state[0].mu["w"].shape == (2, 3, 3)


def test_optimizer_as_a_function_of_the_grid_equals_separate_runs_with_each_optimizer():
    loss_fn, data_fn = _quadratic_task()
    hp_loss = lambda params, batch, key, hp: loss_fn(params, batch, key)  # noqa: E731
    init = lambda key, source: {"w": jax.random.normal(key, (3,))}  # noqa: E731
    grid = {"lr": jnp.array([0.01, 0.1, 0.1]), "wd": jnp.array([0.0, 0.0, 0.5])}
    task = Task(init=init, loss_fn=hp_loss, data_fn=data_fn, hparams=grid,
                optimizer=lambda hp: optax.adamw(hp["lr"], weight_decay=hp["wd"]))
    sweep = build_sweep(task, [0, 1])
    states0, sources = sweep.init()
    states, metrics = sweep.chunk(6)(states0, sources)
    for seed in range(2):
        for j in range(3):
            opt = optax.adamw(float(grid["lr"][j]), weight_decay=float(grid["wd"][j]))
            single = jax.jit(scan_steps(make_step(hp_loss, opt), data_fn, 6))
            st, m = single(jax.tree.map(lambda x: x[seed, j], states0), sources[seed], jnp.float32(0))
            np.testing.assert_allclose(st.params["w"], states.params["w"][seed, j], rtol=1e-6)
            np.testing.assert_allclose(m["loss"], metrics["loss"][seed, j], rtol=1e-6)
    assert not np.allclose(states.params["w"][:, 1], states.params["w"][:, 2])  # weight decay matters
    with pytest.raises(ValueError, match="hparams"):
        build_sweep(task._replace(hparams=None), [0]).init()
    with pytest.raises(TypeError, match="optimizer"):
        init_state(jax.random.key(0), {"w": jnp.ones(2)}, "adam")


def test_sweeps_of_one_data_maker_share_its_compiled_program_and_init_reuses_it():
    from jaxsparse.train import sweep as sweep_lib

    a, b = build(TINY), build(TINY)
    assert a.make_source is not b.make_source  # equal partials, different objects
    before = len(sweep_lib._SOURCE_PROGRAMS)
    sa, sb = build_sweep(a, [3, 4]), build_sweep(b, [3, 4])
    src_a, src_b = sa.sources(), sb.sources()
    assert len(sweep_lib._SOURCE_PROGRAMS) - before <= 1  # one compiled program for both
    for x, y in zip(jax.tree.leaves(src_a), jax.tree.leaves(src_b)):
        np.testing.assert_array_equal(x, y)
    states, sources = sa.init()
    for x, y in zip(jax.tree.leaves(sources), jax.tree.leaves(src_a)):
        np.testing.assert_array_equal(x, y)
    # the init from made sources equals the one-program init of a single run
    state, source = jax.jit(lambda seed: init_run(a, seed))(jnp.int32(4))
    for x, y in zip(jax.tree.leaves((state, source)), jax.tree.leaves(jax.tree.map(lambda v: v[1], (states, sources)))):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert sweep_lib._value_key(lambda k: k) is not None  # non-partials are keyed by identity


def test_workers_get_disjoint_core_shares():
    import os

    from jaxsparse.train.engine import _core_shares

    if not hasattr(os, "sched_getaffinity"):
        assert _core_shares(2) == [(), ()]
        return
    cores = sorted(os.sched_getaffinity(0))
    shares = _core_shares(2)
    if len(cores) < 2:
        assert shares == [(), ()]
    else:
        assert len(shares) == 2 and all(shares) and sorted(shares[0] + shares[1]) == cores
    assert _core_shares(len(cores) + 1) == [()] * (len(cores) + 1)


def test_compiled_sources_are_bounded(monkeypatch):
    from jaxsparse.train import sweep as sweep_lib

    monkeypatch.setattr(sweep_lib, "_SOURCE_PROGRAMS", {})
    monkeypatch.setattr(sweep_lib, "_MAX_SOURCE_PROGRAMS", 1)
    a = build(TINY)
    b = build(dataclasses.replace(TINY, data=dataclasses.replace(TINY.data, n_train=32)))
    build_sweep(a, [0]).sources()
    src_b = build_sweep(b, [0]).sources()
    assert len(sweep_lib._SOURCE_PROGRAMS) == 1 and jax.tree.leaves(src_b)[0].shape[0] == 1


def test_one_shot_programs_at_o1_give_the_bits_of_the_default_pipeline():
    """Sources and initial states compile at LLVM -O1 on CPU (`one_shot_options`); their values are
    those of the default -O2 program up to float rounding (vectorised and scalar sums may round
    differently: the SAE's unit-norm rows differ in a few ulps) and their integers are the same."""
    from functools import partial

    from jaxsparse.experiments.amortisation_gap.config import smoke
    from jaxsparse.experiments.amortisation_gap.tasks import build as build_gap
    from jaxsparse.train.sweep import init_source, init_sweep, one_shot_options

    tasks = {"sae": build(TINY), **build_gap(smoke())}
    seeds = [0, 5, 7]
    for name, task in tasks.items():
        sweep = build_sweep(task, seeds, devices=jax.devices()[:1])
        if jax.default_backend() == "cpu":
            assert one_shot_options(sweep.mesh) == {"xla_backend_optimization_level": 1}
        states, sources = sweep.init()
        seeds_arr = jnp.asarray(seeds, jnp.int32)
        ref_sources = jax.jit(jax.vmap(partial(init_source, task)))(seeds_arr)
        ref_states, _ = jax.jit(partial(init_sweep, task))(seeds_arr, ref_sources)
        for x, y in zip(jax.tree.leaves((states, sources)), jax.tree.leaves((ref_states, ref_sources)), strict=True):
            if jnp.issubdtype(x.dtype, jnp.floating):
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7, err_msg=name)
            else:
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)


def test_microbatched_step_equals_the_full_batch_step():
    """A loss that is a mean over samples: 4 slices give the full batch's loss, metrics and update."""
    from jaxsparse.experiments.amortisation_gap.config import smoke
    from jaxsparse.experiments.amortisation_gap.tasks import build as build_gap

    task = build_gap(smoke())["unknown/MLP-8"]
    batch = {"x": task.make_source(jax.random.key(0))["x"]}  # the unknown regime's loss reads only x
    params = task.init(jax.random.key(1), None)
    state = init_state(jax.random.key(2), params, task.optimizer)
    full = make_step(task.loss_fn, task.optimizer, project=task.project)
    split = make_step(task.loss_fn, task.optimizer, project=task.project, microbatches=4)
    for _ in range(3):
        (state_f, m_f), (state_s, m_s) = full(state, batch), split(state, batch)
        for x, y in zip(jax.tree.leaves((state_f, m_f)), jax.tree.leaves((state_s, m_s)), strict=True):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-6)
        state = state_f


def test_microbatches_are_checked():
    loss_fn = lambda p, b, k: (jnp.mean((b["x"] @ p) ** 2), {})  # noqa: E731
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="microbatches"):
            make_step(loss_fn, optax.sgd(0.1), microbatches=bad)
    with pytest.raises(ValueError, match="custom `update`"):
        make_step(None, optax.identity(), update=lambda p, b, k: (p, {"loss": 0.0}), microbatches=2)
    step = make_step(loss_fn, optax.sgd(0.1), microbatches=4)
    state = init_state(jax.random.key(0), jnp.ones(3), optax.sgd(0.1))
    with pytest.raises(ValueError, match="multiple of 4"):
        step(state, {"x": jnp.ones((6, 3))})
    with pytest.raises(ValueError, match="same leading"):
        step(state, {"x": jnp.ones((8, 3)), "y": jnp.ones((4, 3))})


def test_auto_microbatches_slices_only_layers_wider_than_the_cache():
    from jaxsparse.models.encoders import make_encoder
    from jaxsparse.train.step import CPU_SLICE_BYTES, auto_microbatches

    def picked(hidden, n=1024):
        enc = make_encoder("mlp", hidden=hidden, bias=False)
        params = enc.init(jax.random.key(0), 8, 16)
        vg = jax.value_and_grad(lambda p, b, k: (jnp.mean(enc.apply(p, b["x"]) ** 2), {}), has_aux=True)
        return auto_microbatches(vg, params, {"x": jnp.ones((n, 8))}, jax.random.key(1))

    if jax.default_backend() != "cpu":
        assert picked(256) == 1
        return
    assert 1024 * 256 * 4 // 4 <= CPU_SLICE_BYTES < 1024 * 256 * 4 // 2
    assert picked(256) == 4 and picked(32) == 1 and picked(512) == 8
    assert picked(256, n=1026) == 6  # the fewest equal slices that fit: 1026 = 2 * 3^3 * 19


def test_sweep_with_microbatches_and_a_grid_equals_the_whole_batch_sweep():
    """`Task.microbatches` reaches the sweep's step, with seeds and a hyperparameter grid vmapped."""
    task = build(dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, lam_grid=(0.0, 0.5))))
    out = {}
    for n in (1, 4):
        sweep = build_sweep(task._replace(microbatches=n), [0, 1])
        states, sources = sweep.init()
        out[n] = sweep.chunk(10)(states, sources)
    for x, y in zip(jax.tree.leaves(out[1]), jax.tree.leaves(out[4]), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)


def test_lazy_trained_loads_each_method_once_when_read():
    """The analysis of a run trained in workers gets a mapping that waits for (loads) a method only
    when it reads it, once, in the build order when iterated."""
    from jaxsparse.train.engine import _LazyTrained

    loaded = []
    trained = _LazyTrained(["b", "a", "c"], lambda m: loaded.append(m) or m.upper())
    assert list(trained) == ["b", "a", "c"] and len(trained) == 3 and "c" in trained and loaded == []
    assert trained["a"] == "A" and trained["a"] == "A" and loaded == ["a"]
    assert next(iter(trained.values())) == "B" and loaded == ["a", "b"]
    assert dict(trained) == {"b": "B", "a": "A", "c": "C"} and loaded == ["a", "b", "c"]
    with pytest.raises(KeyError):
        trained["d"]
    assert "d" not in trained and "c" in trained


def test_as_completed_yields_methods_as_their_workers_finish():
    """Finished methods first (in the given order), then each as the workers report it; a plain
    mapping in its own order; unknown names refused."""
    from jaxsparse.train import as_completed
    from jaxsparse.train.engine import _LazyTrained

    class Workers:  # finishes "c", then "a", one per wait
        pending = {"a", "c"}
        finishing = ["c", "a"]

        def wait_any(self):
            self.pending.discard(self.finishing.pop(0))

    trained = _LazyTrained(["a", "b", "c", "d"], lambda m: m.upper(), Workers())
    assert list(as_completed(trained)) == ["b", "d", "c", "a"]
    assert list(as_completed({"x": 1, "y": 2})) == ["x", "y"]
    assert list(as_completed({"x": 1, "y": 2}, ["y"])) == ["y"]
    with pytest.raises(KeyError, match="`methods`"):
        as_completed({"x": 1}, ["x", "z"])


def test_seed_parts_deal_whole_groups_or_seeds_over_the_cores_as_evenly_as_possible():
    from jaxsparse.train.sweep import seed_parts

    assert seed_parts(8, 1, 2) == [4, 4] and seed_parts(8, 2, 4) == [2, 2, 2, 2] and seed_parts(8, 4, 4) == [4, 4]
    assert seed_parts(3, 1, 2) == [2, 1] and seed_parts(5, 1, 2) == [3, 2] and seed_parts(12, 4, 4) == [4, 4, 4]
    assert seed_parts(5, 2, 2) == [2, 3] and seed_parts(3, 2, 2) == [3]  # a remainder rides with the last part
    assert seed_parts(8, None, 2) == [4, 4] and seed_parts(8, 8, 2) == [4, 4]  # one vmap: its seeds dealt
    assert seed_parts(5, None, 4) == [2, 1, 1, 1] and seed_parts(2, None, 8) == [1, 1]
    assert seed_parts(8, 1, 1) == [8] and seed_parts(1, None, 2) == [1]  # one core; one seed


@pytest.mark.parametrize(("n_seeds", "seed_batch", "parts"), [(4, 1, [2, 2]), (4, 2, [2, 2]), (3, 1, [2, 1]),
                                                              (5, 2, [2, 3]), (3, None, [2, 1]), (4, 4, [2, 2])])
def test_threaded_parts_equal_the_one_program_sweep_bit_for_bit(n_seeds, seed_batch, parts, monkeypatch):
    """Seeds trained in parts from 2 host threads (equal or not, a remainder group riding with the last)
    give the one program's states and metrics bit for bit (each part maps over its whole groups as the
    one program does), and parts of one vmap the same up to float rounding; with a hyperparameter grid,
    a monitor and host-fed batches too."""
    from jaxsparse.train import sweep as sweep_lib

    calls = []
    side_by_side = sweep_lib.side_by_side
    monkeypatch.setattr(sweep_lib, "side_by_side", lambda fns: calls.append(len(fns)) or side_by_side(fns))
    monkeypatch.setattr(sweep_lib, "MIN_PART_WORK", 0)  # these tiny models are below the threshold
    assert sweep_lib.seed_parts(n_seeds, seed_batch, 2) == parts
    assert sweep_lib.seed_parts(n_seeds, seed_batch, 1) == [n_seeds]
    loss_fn, data_fn = _quadratic_task()
    init = lambda key, source: {"w": jax.random.normal(key, (3,))}  # noqa: E731
    fed = Task(init=init, loss_fn=loss_fn, optimizer=optax.adam(0.1), data_fn=None,
               feed=lambda start, n: np.arange(start, start + n, dtype=np.float32)[:, None] * np.ones(3, np.float32),
               monitor=lambda params, source: {"w_norm": jnp.linalg.norm(params["w"])})
    grid = dataclasses.replace(TINY, model=dataclasses.replace(TINY.model, lam_grid=(0.0, 0.5)))
    for task in (build(TINY), build(grid), fed):
        task = task._replace(seed_batch=seed_batch)
        outs = []
        for threads in (1, 2):
            sweep = build_sweep(task, list(range(n_seeds)), threads=threads)
            states, sources = sweep.init()
            out = sweep.chunk(6)(states, sources, start=0)
            outs.append(sweep.chunk(6)(out[0], sources, start=6))  # a second chunk from the joined states
        for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
            if seed_batch is not None and seed_batch < n_seeds:  # whole groups: the same programs per group
                np.testing.assert_array_equal(a, b)
            else:  # vmaps of other sizes: float rounding
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        assert {x.shape[0] for x in jax.tree.leaves(outs[1][0])} == {n_seeds}  # the parts joined again
    assert calls == [len(parts)] * 6  # two chunks of each task, in threads


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_threads_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="threads"):
        build_sweep(build(TINY), [0, 1], threads=bad)


def test_paper_one_models_in_thread_parts_equal_one_vmap_up_to_rounding(monkeypatch):
    """Every model of paper 1's main job (smoke size), its 3 seeds in one vmap or in vmaps of 2 and 1
    from 2 threads: the same states and metrics up to float rounding (XLA:CPU computes a seed of a
    vmap of 1 or 2 differently from one of 3 in the last bit; dictionary learning's inner solver
    carries that to 1e-5 in 4 steps), the integers (steps) alike."""
    from jaxsparse.experiments.amortisation_gap.config import smoke
    from jaxsparse.experiments.amortisation_gap.tasks import build as build_gap
    from jaxsparse.train import sweep as sweep_lib

    monkeypatch.setattr(sweep_lib, "MIN_PART_WORK", 0)
    for name, task in build_gap(smoke()).items():
        outs = []
        for threads in (1, 2):
            sweep = build_sweep(task._replace(seed_batch=None), [0, 1, 2], threads=threads)
            outs.append(sweep.chunk(4)(*sweep.init()))
        for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
            if jnp.issubdtype(a.dtype, jnp.floating):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5, err_msg=name)
            else:
                np.testing.assert_array_equal(a, b, err_msg=name)


def test_a_sweep_with_too_little_work_per_thread_stays_one_program(monkeypatch):
    from jaxsparse.train import sweep as sweep_lib

    calls = []
    monkeypatch.setattr(sweep_lib, "side_by_side", lambda fns: calls.append(len(fns)))
    sweep = build_sweep(build(TINY), [0, 1, 2, 3], threads=2)  # 8 latents: 2 KiB a layer, 5 steps
    states, metrics = sweep.chunk(5)(*sweep.init())
    assert calls == [] and metrics["loss"].shape == (4, 5)

"""Train state, the jitted step, and chunks of steps under ``lax.scan``.

Contracts (one run, one seed; ``vmap`` adds the seed and hyperparameter axes, see ``sweep.py``):

- ``loss_fn(params, batch, key) -> (loss, aux)`` where ``loss`` is a scalar and ``aux`` a dict of
  scalar metrics; with a hyperparameter sweep it is called ``loss_fn(params, batch, key, hparams)``.
- ``data_fn(source, step) -> batch``: the batch of step ``step`` (int32 scalar) from a per-run
  ``source`` pytree (a key, a fixed dataset, or both). Batches are a pure function of the step,
  never of iterator state, so a resumed run sees exactly the same data (big_vision's rule).
- ``project(params) -> params`` re-imposes constraints after each update (unit-norm decoder rows).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

PyTree = Any
LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]
Optimizer = optax.GradientTransformation | Callable[[PyTree], optax.GradientTransformation]


def resolve_optimizer(optimizer: Optimizer, hparams: PyTree = None) -> optax.GradientTransformation:
    """``optimizer`` itself, or ``optimizer(hparams)`` when it is a function of a grid point's hyperparameters.

    A function lets a hyperparameter grid sweep the optimiser inside one vmapped program, e.g.
    ``lambda hp: optax.adamw(hp["lr"], weight_decay=hp["wd"])``: optax takes traced scalars for its
    hyperparameters, and the optimiser state's structure must not depend on their values.
    """
    if isinstance(optimizer, optax.GradientTransformation):
        return optimizer
    if not callable(optimizer):
        raise TypeError(f"`optimizer` must be an optax GradientTransformation or a function hparams -> "
                        f"GradientTransformation, got {type(optimizer).__name__}")
    if hparams is None:
        raise ValueError("`optimizer` is a function of the hyperparameters, so the run needs `hparams` "
                         "(Task.hparams, a grid)")
    return optimizer(hparams)


class TrainState(NamedTuple):
    """Everything a run needs to continue: a pytree, so it stacks, vmaps, shards and checkpoints.

    Attributes:
      step: int32 ``[]`` number of completed updates.
      params: model parameters (any pytree).
      opt_state: the optax optimiser state for ``params``.
      key: uint32 ``[2]`` raw key data (``jax.random.key_data``) of the run's training key; the key
        of step ``t`` is ``fold_in(key, t)``, so the state never has to split or store new keys.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    key: jax.Array


def init_state(key: jax.Array, params: PyTree, optimizer: Optimizer, hparams: PyTree = None) -> TrainState:
    """A fresh :class:`TrainState` at step 0 with ``optimizer.init(params)`` (see :func:`resolve_optimizer`)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return TrainState(jnp.zeros((), jnp.int32), params, resolve_optimizer(optimizer, hparams).init(params), key)


def step_key(state: TrainState) -> jax.Array:
    """The typed PRNG key of the step about to run: ``fold_in(state.key, state.step)``."""
    return jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step)


def make_step(
    loss_fn: LossFn | None,
    optimizer: Optimizer,
    *,
    project: Callable[[PyTree], PyTree] | None = None,
    update: Callable[..., tuple[PyTree, dict[str, jax.Array]]] | None = None,
    microbatches: int | str = 1,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """Build ``step(state, batch, hparams=None) -> (state, metrics)``, jitted.

    One update: ``(loss, aux), g = value_and_grad(loss_fn)(params, batch, key[, hparams])``;
    ``params <- project(params + optimizer.update(g))``. ``metrics = {"loss": loss, **aux}``.
    ``optimizer`` may be a function of ``hparams`` (:func:`resolve_optimizer`).
    With ``microbatches = n > 1`` the loss, metrics and gradient are the means over ``n`` equal slices
    of the batch (:func:`microbatched`; gradient accumulation, same update); ``"auto"`` picks ``n``
    when the step is traced (:func:`auto_microbatches`: more than 1 only on CPU, for wide layers).
    With ``update`` (a learner that is not gradient descent, e.g. alternating minimisation),
    ``params, metrics = update(params, batch, key[, hparams])`` replaces the gradient step (then
    ``project``); the optimiser state is carried unchanged and ``metrics`` must hold ``"loss"``.

    Example::

      step = make_step(loss_fn, optax.adam(1e-3), project=normalize_decoder)
      state, metrics = step(init_state(key, params, optax.adam(1e-3)), batch)
    """

    if (loss_fn is None) == (update is None):
        raise ValueError("make_step needs exactly one of `loss_fn` (gradient step) and `update` (custom step)")
    if microbatches != "auto" and (isinstance(microbatches, bool) or not isinstance(microbatches, int)
                                   or microbatches < 1):
        raise ValueError(f"`microbatches` must be an int >= 1 or 'auto', got {microbatches!r}")
    if microbatches != 1 and update is not None:
        raise ValueError("`microbatches` other than 1 needs a gradient step (`loss_fn`), not a custom `update`")
    value_and_grad = None if loss_fn is None else jax.value_and_grad(loss_fn, has_aux=True)
    if microbatches != 1:
        value_and_grad = microbatched(value_and_grad, microbatches)

    def step(state: TrainState, batch: PyTree, hparams: PyTree = None):
        args = (batch, step_key(state)) if hparams is None else (batch, step_key(state), hparams)
        if update is not None:
            params, metrics = update(state.params, *args)
            if project is not None:
                params = project(params)
            return TrainState(state.step + 1, params, state.opt_state, state.key), metrics
        (loss, aux), grads = value_and_grad(state.params, *args)
        updates, opt_state = resolve_optimizer(optimizer, hparams).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if project is not None:
            params = project(params)
        return TrainState(state.step + 1, params, opt_state, state.key), {"loss": loss, **aux}

    return jax.jit(step)


LAYER_PRIMITIVES = ("dot_general", "conv_general_dilated")


def largest_layer_bytes(jaxpr) -> int:
    """Bytes of the largest output of a matmul or convolution in ``jaxpr`` or a jaxpr nested in it
    (the layers' activations and their gradients; elementwise temporaries are usually fused away)."""
    biggest = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in LAYER_PRIMITIVES:
            for v in eqn.outvars:
                biggest = max(biggest, math.prod(v.aval.shape) * getattr(v.aval.dtype, "itemsize", 4))
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    biggest = max(biggest, largest_layer_bytes(inner))
    return biggest


CPU_SLICE_BYTES = 256 * 1024
"""``microbatches="auto"``'s budget on CPU for one slice's largest matmul or convolution output (a
quarter of the Xeon's 1 MiB L2 per core, leaving room for the other activations of the step)."""


def auto_microbatches(value_and_grad: Callable[..., Any], params: PyTree, batch: PyTree, *args: Any) -> int:
    """Slices per step for ``microbatches="auto"``: 1 off CPU; on CPU the fewest equal slices of the
    batch (a divisor of its sample count ``B``) whose largest matmul or convolution output, ``b / n``
    for the whole batch's ``b`` (traced, not run), is at most :data:`CPU_SLICE_BYTES`.

    Measured by ``python benchmarks/microbatches.py`` (one core of the Xeon, 5 seeds): paper 1's MLP-256
    encoder (``[1024, 256]`` float32 hidden layer, 1 MiB per seed) stepped in 3209 us whole, 3034 us
    in 2 slices, 2755 us in 4 (this rule, 1.16x) and 2955 us in 8; the MLP-32 (128 KiB) and LISTA
    encoders got slower in slices (662 -> 775-897 us), so they stay whole.
    """
    if jax.default_backend() != "cpu":
        return 1
    size = jax.tree.leaves(batch)[0].shape[0]
    b = largest_layer_bytes(jax.make_jaxpr(value_and_grad)(params, batch, *args).jaxpr)
    return min(n for n in range(1, size + 1) if size % n == 0 and (b // n <= CPU_SLICE_BYTES or n == size))


def microbatched(value_and_grad: Callable[..., Any], n: int | str) -> Callable[..., Any]:
    """``value_and_grad(params, batch, key, *rest)`` as the mean over ``n`` equal slices of ``batch``
    (``"auto"``: :func:`auto_microbatches` when traced).

    Every leaf of ``batch`` is cut along its leading (sample) axis into ``n`` slices of ``B / n``
    samples; slice ``i`` gets the key ``fold_in(key, i)``; the outputs (loss, metrics, gradient) are
    averaged over the slices in a ``lax.scan``, so only one slice's activations are alive at a time.
    When the loss is a mean over samples, ``L = (1/B) sum_b l_b``, the result is the full batch's
    (same update, up to float rounding). A loss that is not such a mean (a batch statistic, a
    contrastive loss) changes meaning: do not microbatch it. Why: on CPU, a step whose activations
    overflow the core's L2 cache runs faster on slices that fit (paper 1's MLP-256 encoder).
    """

    def fn(params: PyTree, batch: PyTree, key: jax.Array, *rest: Any):
        leaves = jax.tree.leaves(batch)
        sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
        if len(sizes) != 1 or None in sizes or (n != "auto" and next(iter(sizes)) % n):
            raise ValueError(f"`microbatches`={n!r} needs every batch leaf to have the same leading (sample) "
                             f"axis{'' if n == 'auto' else f', a multiple of {n}'}; got leading sizes "
                             f"{sorted(map(str, sizes))}")
        k = auto_microbatches(value_and_grad, params, batch, key, *rest) if n == "auto" else n
        if k == 1:
            return value_and_grad(params, batch, key, *rest)
        slices = jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), batch)

        def body(total, i_slice):
            i, part = i_slice
            out = value_and_grad(params, part, jax.random.fold_in(key, i), *rest)
            return jax.tree.map(jnp.add, total, out), None

        first = jax.tree.map(lambda x: x[0], slices)
        zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                            jax.eval_shape(value_and_grad, params, first, key, *rest))
        total, _ = jax.lax.scan(body, zero, (jnp.arange(k), slices))
        return jax.tree.map(lambda x: x / k, total)

    return fn


def scan_steps(
    step: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
    data_fn: Callable[[PyTree, jax.Array], PyTree],
    n_steps: int,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """``chunk(state, source, hparams=None) -> (state, metrics)`` running ``n_steps`` steps in one ``lax.scan``.

    Batches are generated on device: ``batch_t = data_fn(source, state.step)``.
    Returns metrics stacked as ``{name: [n_steps]}``.
    """

    def chunk(state: TrainState, source: PyTree, hparams: PyTree = None):
        def body(s, _):
            return step(s, data_fn(source, s.step), hparams)

        return jax.lax.scan(body, state, length=n_steps)

    return chunk


def scan_batches(
    step: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """``chunk(state, batches, hparams=None) -> (state, metrics)`` for batches fed from the host.

    ``batches`` is a pytree whose leaves have a leading ``[n_steps]`` axis; one step per slice.
    """

    def chunk(state: TrainState, batches: PyTree, hparams: PyTree = None):
        return jax.lax.scan(lambda s, b: step(s, b, hparams), state, batches)

    return chunk

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

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
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
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """Build ``step(state, batch, hparams=None) -> (state, metrics)``, jitted.

    One update: ``(loss, aux), g = value_and_grad(loss_fn)(params, batch, key[, hparams])``;
    ``params <- project(params + optimizer.update(g))``. ``metrics = {"loss": loss, **aux}``.
    ``optimizer`` may be a function of ``hparams`` (:func:`resolve_optimizer`).
    With ``update`` (a learner that is not gradient descent, e.g. alternating minimisation),
    ``params, metrics = update(params, batch, key[, hparams])`` replaces the gradient step (then
    ``project``); the optimiser state is carried unchanged and ``metrics`` must hold ``"loss"``.

    Example::

      step = make_step(loss_fn, optax.adam(1e-3), project=normalize_decoder)
      state, metrics = step(init_state(key, params, optax.adam(1e-3)), batch)
    """

    if (loss_fn is None) == (update is None):
        raise ValueError("make_step needs exactly one of `loss_fn` (gradient step) and `update` (custom step)")

    def step(state: TrainState, batch: PyTree, hparams: PyTree = None):
        args = (batch, step_key(state)) if hparams is None else (batch, step_key(state), hparams)
        if update is not None:
            params, metrics = update(state.params, *args)
            if project is not None:
                params = project(params)
            return TrainState(state.step + 1, params, state.opt_state, state.key), metrics
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, *args)
        updates, opt_state = resolve_optimizer(optimizer, hparams).update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if project is not None:
            params = project(params)
        return TrainState(state.step + 1, params, opt_state, state.key), {"loss": loss, **aux}

    return jax.jit(step)


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

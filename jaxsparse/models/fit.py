"""The best linear-ReLU encoder for known codes: a small supervised fit (paper 1's amortisation gap).

An encoder ``f(x) = ReLU(x W + b)`` (``W [M, N]``, ``b [N]``) is fitted to signals ``x [B, M]`` and
their true codes ``z [B, N]`` by full-batch Adam on

    L(W, b) = (1/B) sum_n ||ReLU(x_n W + b) - z_n||^2

so that its remaining code error measures the amortisation gap of the architecture itself, not of
an unsupervised objective (:mod:`jaxsparse.theory.amortisation` states the theorem and its bound).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxsparse._checks import as_float_array, positive_int


def init_relu_encoder(key: jax.Array, n_features: int, n_latents: int, *, dtype=jnp.float32) -> dict[str, jax.Array]:
    """Initial parameters ``{"w": N(0, 1/M) [M, N], "b": 0 [N]}``."""
    m = positive_int("n_features", n_features)
    n = positive_int("n_latents", n_latents)
    return {"w": jax.random.normal(key, (m, n), dtype) / jnp.sqrt(jnp.asarray(m, dtype)), "b": jnp.zeros((n,), dtype)}


def relu_encoder(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """``ReLU(x W + b)``: ``x [..., M]`` -> codes ``[..., N]``."""
    return jax.nn.relu(x @ params["w"] + params["b"])


def fit_relu_encoder(key: jax.Array, x: jax.Array, z: jax.Array, *, n_steps: int = 5000, lr: float = 1e-2
                     ) -> tuple[dict[str, jax.Array], jax.Array]:
    """The (numerically) best ``ReLU(x W + b)`` for the known codes: Adam on ``mean ||f(x) - z||^2``.

    Starts from :func:`init_relu_encoder` ``(key, M, N)``, so the starting error is
    ``relative_code_error(z, relu_encoder(init_relu_encoder(key, M, N), x))``.

    Args:
      key: PRNG key for the initial ``W``.
      x: ``[B, M]`` signals.  z: ``[B, N]`` their true codes.
      n_steps, lr: full-batch Adam steps and learning rate.
    Returns:
      ``({"w": [M, N], "b": [N]}, final relative code error sum ||f(x) - z||^2 / sum ||z||^2)``.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0), 2048)
        params, err = fit_relu_encoder(jax.random.key(1), x, z, n_steps=3000)   # err ~ 0.34
    """
    x = as_float_array("x", x, min_ndim=2)
    z = as_float_array("z", z, min_ndim=2)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape [B, M], got {tuple(x.shape)}")
    if z.ndim != 2 or z.shape[0] != x.shape[0]:
        raise ValueError(f"`z` must have shape [B, N] with B = {x.shape[0]} rows like `x`, got {tuple(z.shape)}")
    n_steps = positive_int("n_steps", n_steps)
    params = init_relu_encoder(key, x.shape[-1], z.shape[-1], dtype=x.dtype)
    opt = optax.adam(lr)

    def loss(p):
        return jnp.mean(jnp.sum((relu_encoder(p, x) - z) ** 2, axis=-1))

    def body(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=n_steps))((params, opt.init(params)))
    error = jnp.sum((relu_encoder(params, x) - z) ** 2) / jnp.sum(z**2)
    return params, error

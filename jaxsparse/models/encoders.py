"""Encoder families ``x -> z`` as :class:`~jaxsparse.models.sae.Encoder` ``(init, apply)`` pairs.

Every encoder maps signals ``x: [..., M]`` to non-negative codes ``z: [..., N]`` and shares the
unit-norm decoder of :mod:`jaxsparse.models.sae` (``x_hat = z @ W_dec``). Parameters are plain
dicts; factories take the static hyperparameters (``bias``, ``k``, ``hidden``, ``n_iter``) and
return the pair, so a family member is picked by name with :func:`make_encoder`.

- ``sae``:      ``z = ReLU(x W + b)``                                  (paper 1's SAE)
- ``topk``:     ``z = TopK_k(ReLU(x W + b))``                          (Makhzani & Frey 2013; Gao et al. 2024)
- ``jumprelu``: ``z = u * H(u - theta)``, ``u = x W + b``, ``theta = exp(log_theta)`` learned,
  gradient to ``theta`` by a straight-through rectangle kernel of width ``bandwidth``
  (Rajamanoharan et al. 2024)
- ``mlp``:      ``z = ReLU(ReLU(x W1 + b1) W2 + b2)``, hidden width ``h``   (paper 1's MLP encoders)
- ``lista``:    ``z_0 = 0``, ``z_{t+1} = soft_+(x W + z_t S, theta_t)``, ``t < T``: ``W [M, N]``,
  ``S [N, N]`` shared, thresholds ``theta [T, N]`` learned (Gregor & LeCun 2010), built on
  :func:`jaxsparse.solvers.soft_threshold`. ``S = 0`` at init, so an untrained LISTA is an SAE.

Paper 1 (O'Neill, Gumran & Klindt, ICML 2025) uses no biases in its unknown-D models
(``bias=False``); biases are on by default here as in the engine's ``sae-synthetic`` experiment.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxsparse._checks import positive_int
from jaxsparse.models.sae import Encoder, affine, init_linear, sae_encoder
from jaxsparse.solvers import soft_threshold, top_k

PyTree = Any
ENCODERS = ("sae", "topk", "jumprelu", "mlp", "lista")


def _linear(key: jax.Array, n_in: int, n_out: int, bias: bool) -> dict[str, jax.Array]:
    return init_linear(key, n_in, n_out, bias=bias)


def keep_top_k(u: jax.Array, k: int) -> jax.Array:
    """``ReLU`` of the ``k`` largest entries of the last axis, zeros elsewhere (ties: lower index first).

    For ``N <= 64`` latents the mask comes from pairwise ranks (``N^2`` comparisons, fast on CPU, where
    ``lax.top_k`` is a slow sort); above that from :func:`jaxsparse.solvers.top_k`.
    """
    n = u.shape[-1]
    if n > 64:
        return top_k(u, k, nonneg=True)
    ui, uj = u[..., :, None], u[..., None, :]
    earlier = jnp.arange(n)[None, :] < jnp.arange(n)[:, None]  # [i, j]: j before i
    rank = jnp.sum((uj > ui) | ((uj == ui) & earlier), axis=-1)
    return jnp.where(rank < k, jax.nn.relu(u), 0)


def topk_encoder(k: int, *, bias: bool = True) -> Encoder:
    """TopK SAE encoder ``z = TopK_k(ReLU(x W + b))`` (the ``k`` largest pre-activations kept)."""
    k = positive_int("k", k)
    return Encoder(init=lambda key, m, n: _linear(key, m, n, bias), apply=lambda p, x: keep_top_k(affine(p, x), k))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def heaviside_ste(u: jax.Array, theta: jax.Array, bandwidth: float) -> jax.Array:
    """``H(u - theta)`` with the JumpReLU straight-through pseudo-derivative.

    Forward: ``1[u > theta]``. Backward: ``dH/du = 0`` and
    ``dH/dtheta = -(1/eps) K((u - theta)/eps)``, ``K`` the rectangle ``1[|v| < 1/2]``, ``eps = bandwidth``
    (Rajamanoharan et al. 2024, "Jumping ahead").
    """
    return (u > theta).astype(u.dtype)


def _heaviside_fwd(u, theta, bandwidth):
    return heaviside_ste(u, theta, bandwidth), (u, theta)


def _heaviside_bwd(bandwidth, res, g):
    u, theta = res
    kernel = (jnp.abs((u - theta) / bandwidth) < 0.5).astype(u.dtype) / bandwidth
    return jnp.zeros_like(u), -g * kernel  # theta has u's shape (broadcast by the caller)


heaviside_ste.defvjp(_heaviside_fwd, _heaviside_bwd)


def jumprelu_encoder(*, bandwidth: float = 0.05, init_threshold: float = 0.05, bias: bool = True) -> Encoder:
    """JumpReLU SAE encoder ``z = u * H(u - theta)``, ``u = x W + b``, ``theta = exp(log_theta) [N]``.

    ``u`` gets the ordinary gradient through the product; ``theta`` gets the straight-through
    gradient of :func:`heaviside_ste`.
    """
    if not bandwidth > 0 or not init_threshold > 0:
        raise ValueError(f"`bandwidth` and `init_threshold` must be > 0, got {bandwidth}, {init_threshold}")

    def init(key, m, n):
        return {**_linear(key, m, n, bias), "log_theta": jnp.full((n,), jnp.log(init_threshold), jnp.float32)}

    def apply(p, x):
        u = affine(p, x)
        theta = jnp.exp(p["log_theta"])
        return jax.nn.relu(u) * heaviside_ste(u, jnp.broadcast_to(theta, u.shape), bandwidth)

    return Encoder(init=init, apply=apply)


def mlp_encoder(hidden: int, *, bias: bool = True) -> Encoder:
    """Two-layer encoder ``z = ReLU(ReLU(x W1 + b1) W2 + b2)`` with hidden width ``hidden``."""
    hidden = positive_int("hidden", hidden)

    def init(key, m, n):
        k1, k2 = jax.random.split(key)
        return {"hidden": _linear(k1, m, hidden, bias), "out": _linear(k2, hidden, n, bias)}

    def apply(p, x):
        return jax.nn.relu(affine(p["out"], jax.nn.relu(affine(p["hidden"], x))))

    return Encoder(init=init, apply=apply)


def lista_encoder(n_iter: int, *, init_threshold: float = 0.0) -> Encoder:
    """LISTA, ``T = n_iter`` unrolled non-negative soft-threshold steps with learned weights.

    ``z_1 = soft_+(x W, theta_0)``; ``z_{t+1} = soft_+(x W + z_t S, theta_t)``. Params
    ``{"w": [M, N], "s": [N, N] (zeros at init), "theta": [T, N]}``.
    """
    n_iter = positive_int("n_iter", n_iter)

    def init(key, m, n):
        w = init_linear(key, m, n)["w"]
        return {"w": w, "s": jnp.zeros((n, n), w.dtype), "theta": jnp.full((n_iter, n), init_threshold, w.dtype)}

    def apply(p, x):
        b = x @ p["w"]
        z = soft_threshold(b, p["theta"][0], nonneg=True)
        for t in range(1, n_iter):  # T is small and static: unrolled (a nested scan is slow inside training)
            z = soft_threshold(b + z @ p["s"], p["theta"][t], nonneg=True)
        return z

    return Encoder(init=init, apply=apply)


def make_encoder(name: str, *, bias: bool = True, k: int | None = None, hidden: int | None = None,
                 n_iter: int | None = None) -> Encoder:
    """The encoder family member ``name`` (one of :data:`ENCODERS`) with its hyperparameter.

    Example::

        enc = make_encoder("mlp", hidden=256)
        params = enc.init(jax.random.key(0), 8, 16); z = enc.apply(params, x)
    """
    if name == "sae":
        return sae_encoder(bias=bias)
    if name == "topk":
        return topk_encoder(_required("k", k, name), bias=bias)
    if name == "jumprelu":
        return jumprelu_encoder(bias=bias)
    if name == "mlp":
        return mlp_encoder(_required("hidden", hidden, name), bias=bias)
    if name == "lista":
        return lista_encoder(_required("n_iter", n_iter, name))
    raise ValueError(f"`name` must be one of {ENCODERS}, got {name!r}")


def _required(arg: str, value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"`{arg}` is required for encoder {name!r}")
    return value

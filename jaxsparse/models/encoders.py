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

Every encoder here also has ``apply_t``, the same function on feature-major activations
(``x_t [M, B] -> z_t [N, B]``), which training losses use on CPU where layers are narrow
(:func:`jaxsparse.models.matmul.prefers_feature_major`).

Paper 1 (O'Neill, Gumran & Klindt, ICML 2025) uses no biases in its unknown-D models
(``bias=False``); biases are on by default here as in the engine's ``sae-synthetic`` experiment.

FLOPs per sample, decoding included ("signal in, reconstruction out", paper 1's convention):
:func:`encoder_flops`; training: :func:`encoder_training_flops`. One multiply-add is 2 FLOPs, an
elementwise op or comparison 1; biases are not counted (paper 1 has none).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxsparse._checks import positive_int
from jaxsparse.models.sae import Encoder, affine, init_linear, sae_encoder, sae_flops, sae_training_flops
from jaxsparse.solvers import soft_threshold, top_k

PyTree = Any
ENCODERS = ("sae", "topk", "jumprelu", "mlp", "lista")


def _linear(key: jax.Array, n_in: int, n_out: int, bias: bool) -> dict[str, jax.Array]:
    return init_linear(key, n_in, n_out, bias=bias)


def _encoder(init, apply) -> Encoder:
    """The :class:`Encoder` of ``apply(p, x, feature_major)``: ``apply`` on ``x [..., M]`` and
    ``apply_t`` on transposed ``x_t [M, B]`` (one function, written for both layouts)."""
    return Encoder(init=init, apply=functools.partial(apply, feature_major=False),
                   apply_t=functools.partial(apply, feature_major=True))


def _per_latent(v: jax.Array, feature_major: bool) -> jax.Array:
    """A per-latent vector ``[N]`` shaped to broadcast against ``[..., N]`` or, feature-major, ``[N, B]``."""
    return v[:, None] if feature_major else v


def keep_top_k(u: jax.Array, k: int, axis: int = -1) -> jax.Array:
    """``ReLU`` of the ``k`` largest entries along ``axis`` (the latents; default the last), zeros
    elsewhere (ties: lower index first).

    For ``N <= 64`` latents the mask comes from pairwise ranks, ``rank_i = #{j : u_j > u_i, or u_j = u_i
    and j < i}`` (``N^2`` comparisons; on CPU ``lax.top_k`` is a slow sort); above that from
    :func:`jaxsparse.solvers.top_k`. The ranks are a sum of ``N`` comparisons of whole ``u``-shaped
    arrays (one per ``j``, an elementwise fusion), and the mask is computed once for the forward and the
    backward pass (:func:`_masked_relu`). Laid out ``[..., j, i]`` and reduced over ``j``, the same
    sum ran 2.6x slower under :data:`jaxsparse.cpu_codegen.LLVM_OPTIONS` (paper 1's TopK-3 step, 5
    seeds x 1024 x 16, 1.53 ms against 0.60 ms; summed over the last axis it took 1.09 ms before).
    """
    axis = axis % u.ndim
    n = u.shape[axis]
    if n > 64:
        moved = jnp.moveaxis(u, axis, -1)
        return jnp.moveaxis(top_k(moved, k, nonneg=True), -1, axis)
    later = jnp.arange(n).reshape((n,) + (1,) * (u.ndim - 1 - axis))
    rank = jnp.zeros(u.shape, jnp.int32)
    for j in range(n):  # static and small
        uj = jax.lax.slice_in_dim(u, j, j + 1, axis=axis)
        rank = rank + ((uj > u) | ((uj == u) & (j < later))).astype(jnp.int32)
    return _masked_relu(u, rank < k)


@jax.custom_jvp
def _masked_relu(u: jax.Array, keep: jax.Array) -> jax.Array:
    """``where(keep, ReLU(u), 0)`` with the tangent ``where(keep & (u > 0), du, 0)``: the mask, a
    residual of the backward pass, is computed once (XLA fused JAX's own rule's mask into both
    passes, computing the ranks twice)."""
    return jnp.where(keep & (u > 0), u, 0)


@_masked_relu.defjvp
def _masked_relu_jvp(primals, tangents):
    u, keep = primals
    du, _ = tangents
    mask = keep & (u > 0)
    return jnp.where(mask, u, 0), jnp.where(mask, du, 0)


def topk_encoder(k: int, *, bias: bool = True) -> Encoder:
    """TopK SAE encoder ``z = TopK_k(ReLU(x W + b))`` (the ``k`` largest pre-activations kept)."""
    k = positive_int("k", k)

    def apply(p, x, feature_major=False):
        return keep_top_k(affine(p, x, feature_major=feature_major), k, axis=0 if feature_major else -1)

    return _encoder(lambda key, m, n: _linear(key, m, n, bias), apply)


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

    def apply(p, x, feature_major=False):
        u = affine(p, x, feature_major=feature_major)
        theta = _per_latent(jnp.exp(p["log_theta"]), feature_major)
        return jax.nn.relu(u) * heaviside_ste(u, jnp.broadcast_to(theta, u.shape), bandwidth)

    return _encoder(init, apply)


def mlp_encoder(hidden: int, *, bias: bool = True) -> Encoder:
    """Two-layer encoder ``z = ReLU(ReLU(x W1 + b1) W2 + b2)`` with hidden width ``hidden``."""
    hidden = positive_int("hidden", hidden)

    def init(key, m, n):
        k1, k2 = jax.random.split(key)
        return {"hidden": _linear(k1, m, hidden, bias), "out": _linear(k2, hidden, n, bias)}

    def apply(p, x, feature_major=False):
        h = jax.nn.relu(affine(p["hidden"], x, feature_major=feature_major))
        return jax.nn.relu(affine(p["out"], h, feature_major=feature_major))

    return _encoder(init, apply)


def lista_encoder(n_iter: int, *, init_threshold: float = 0.0) -> Encoder:
    """LISTA, ``T = n_iter`` unrolled non-negative soft-threshold steps with learned weights.

    ``z_1 = soft_+(x W, theta_0)``; ``z_{t+1} = soft_+(x W + z_t S, theta_t)``. Params
    ``{"w": [M, N], "s": [N, N] (zeros at init), "theta": [T, N]}``.
    """
    n_iter = positive_int("n_iter", n_iter)

    def init(key, m, n):
        w = init_linear(key, m, n)["w"]
        return {"w": w, "s": jnp.zeros((n, n), w.dtype), "theta": jnp.full((n_iter, n), init_threshold, w.dtype)}

    def apply(p, x, feature_major=False):
        b = affine({"w": p["w"]}, x, feature_major=feature_major)
        z = soft_threshold(b, _per_latent(p["theta"][0], feature_major), nonneg=True)
        for t in range(1, n_iter):  # T is small and static: unrolled (a nested scan is slow inside training)
            recurrence = affine({"w": p["s"]}, z, feature_major=feature_major)
            z = soft_threshold(b + recurrence, _per_latent(p["theta"][t], feature_major), nonneg=True)
        return z

    return _encoder(init, apply)


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


def encoder_flops(name: str, n_latents: int, n_features: int, *, hidden: int | None = None,
                  n_iter: int | None = None) -> int:
    """Inference FLOPs per sample of encoder ``name`` plus the decoder ``x_hat = z D`` (``2MN``).

    ``N`` = n_latents, ``M`` = n_features, ``h`` = hidden, ``T`` = n_iter (paper 1's counts)::

        sae               2MN + N + 2MN = 4MN + N                    (:func:`~jaxsparse.models.sae.sae_flops`)
        topk, jumprelu    4MN + N + N   (the top-k mask / the threshold compare)
        mlp               2Mh + h + 2hN + N + 2NM
        lista             2MN (x W) + T * 2N (thresholds) + (T - 1)(2N^2 + N) (recurrences) + 2MN

    The top-k selection itself (a sort, or ``N^2`` compares for ``N <= 64``) is counted as ``N``.

    Example::

        encoder_flops("mlp", 16, 8, hidden=32)   # 512 + 32 + 1024 + 16 + 256 = 1840
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    if name == "sae":
        return sae_flops(n, m)
    if name in ("topk", "jumprelu"):
        return sae_flops(n, m) + n
    if name == "mlp":
        h = positive_int("hidden", _required("hidden", hidden, name))
        return 2 * m * h + h + 2 * h * n + n + 2 * n * m
    if name == "lista":
        t = positive_int("n_iter", _required("n_iter", n_iter, name))
        return 2 * m * n + t * 2 * n + (t - 1) * (2 * n * n + n) + 2 * m * n
    raise ValueError(f"`name` must be one of {ENCODERS}, got {name!r}")


def encoder_params(name: str, n_latents: int, n_features: int, *, n_iter: int | None = None) -> int:
    """Encoder weights counted by the generic training count (:func:`encoder_training_flops`).

    ``topk``: ``MN + N``; ``jumprelu``: ``MN + 2N`` (the thresholds); ``lista``: ``MN + N^2 + TN``.
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    if name == "lista":
        return m * n + n * n + positive_int("n_iter", _required("n_iter", n_iter, name)) * n
    return m * n + n + (n if name == "jumprelu" else 0)


def encoder_training_flops(name: str, n_latents: int, n_features: int, *, hidden: int | None = None,
                           n_iter: int | None = None, n_samples: int, n_steps: int, learn_decoder: bool = True) -> int:
    """Total training FLOPs of encoder ``name`` (with the decoder): ``per_sample_step * n_samples * n_steps``.

    Full-batch steps; ``N`` = n_latents, ``M`` = n_features, ``h`` = hidden. Per sample and step
    (``learn_decoder`` adds the decoder's normalisation, gradient and update, in brackets)::

        sae       forward 4MN + N (+MN); backward N + (2MN + N) + 2MN + 2(MN + N) (+2MN)
                  (:func:`~jaxsparse.models.sae.sae_training_flops`)
        mlp       forward encoder_flops (+MN);
                  backward N + (2Nh + N) + h + (2Mh + h) + 2NM + 2(Mh + h + hN + N) (+2NM)
        topk, jumprelu, lista (no count in paper 1): forward F = encoder_flops, backward 2F,
                  update 2P with P = :func:`encoder_params` (+2MN)

    Example::

        encoder_training_flops("sae", 16, 8, n_samples=2, n_steps=3)   # 1744 * 6
    """
    if name == "sae":
        return sae_training_flops(n_latents, n_features, n_samples=n_samples, n_steps=n_steps,
                                  learn_decoder=learn_decoder)
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    samples, steps = positive_int("n_samples", n_samples), positive_int("n_steps", n_steps)
    forward = encoder_flops(name, n, m, hidden=hidden, n_iter=n_iter)
    if name == "mlp":
        h = hidden
        backward = n + (2 * n * h + n) + h + (2 * m * h + h) + 2 * n * m + 2 * (m * h + h + h * n + n)
        extra = m * n + 2 * n * m
    else:
        backward = 2 * forward + 2 * encoder_params(name, n, m, n_iter=n_iter)
        extra = 2 * m * n
    return (forward + backward + (extra if learn_decoder else 0)) * samples * steps


def _required(arg: str, value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"`{arg}` is required for encoder {name!r}")
    return value

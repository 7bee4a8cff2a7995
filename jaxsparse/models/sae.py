"""Sparse autoencoders as ``(init, apply)`` pairs: pluggable encoders, one shared decoder.

An encoder maps signals ``x: [..., n_features]`` to codes ``z: [..., n_latents]``; the decoder is
a dictionary ``[n_latents, n_features]`` with unit-norm rows, ``x_hat = z @ W_dec + b_dec``.
New encoders (TopK, JumpReLU, MLP, LISTA) are new :class:`Encoder` pairs; the decoder, the loss
and the training code stay the same.

Reference: O'Neill, Gumran & Klindt (ICML 2025): SAE = Linear(M -> N) + ReLU, unit-norm decoder
atoms, loss ``mean_b ||x - x_hat||^2 / ... + lam * mean |z|`` (see :func:`sae_loss`).

FLOPs (paper 1's counts, "signal in, reconstruction out"): :func:`sae_flops`, :func:`sae_training_flops`;
the other encoders' counts are in :mod:`jaxsparse.models.encoders`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxsparse._checks import positive_int
from jaxsparse.losses import reconstruction_l1
from jaxsparse.models.matmul import matmul, matmul_t, prefers_feature_major, to_feature_major

PyTree = Any


class Encoder(NamedTuple):
    """``init(key, n_features, n_latents) -> params``; ``apply(params, x [..., M]) -> z [..., N]``.

    ``apply_t(params, x_t [M, B]) -> z_t [N, B]``, where given, is the same encoder on feature-major
    (transposed) activations, ``z_t = apply(params, x_t.T).T`` up to float rounding: a training loss
    written on transposed arrays runs it faster on CPU when the layers are narrow
    (:func:`jaxsparse.models.matmul.matmul_t`). ``None`` for encoders without that form.
    """

    init: Callable[[jax.Array, int, int], PyTree]
    apply: Callable[[PyTree, jax.Array], jax.Array]
    apply_t: Callable[[PyTree, jax.Array], jax.Array] | None = None


def init_linear(key: jax.Array, n_in: int, n_out: int, *, bias: bool = True, dtype=jnp.float32) -> dict[str, jax.Array]:
    """``{"w": [n_in, n_out](, "b": [n_out])}`` with LeCun-uniform weights and zero bias."""
    bound = 1.0 / jnp.sqrt(n_in)
    w = jax.random.uniform(key, (n_in, n_out), dtype, -bound, bound)
    return {"w": w, "b": jnp.zeros((n_out,), dtype)} if bias else {"w": w}


def affine(params: dict[str, jax.Array], x: jax.Array, *, feature_major: bool = False) -> jax.Array:
    """``x W (+ b)`` (the bias only if ``params`` has one): ``x [..., n_in]`` -> ``[..., n_out]``.

    ``feature_major=True``: the same layer on transposed activations, ``x [n_in, B]`` ->
    ``[n_out, B]`` (``W^T x + b``, :func:`jaxsparse.models.matmul.matmul_t`).
    """
    if feature_major:
        y = matmul_t(params["w"], x)
        return y + params["b"][:, None] if "b" in params else y
    y = matmul(x, params["w"])
    return y + params["b"] if "b" in params else y


def relu_apply(params: dict[str, jax.Array], x: jax.Array, *, feature_major: bool = False) -> jax.Array:
    """``z = ReLU(x W + b)``: ``x [..., M]`` -> ``z [..., N]`` (feature-major: ``[M, B]`` -> ``[N, B]``)."""
    return jax.nn.relu(affine(params, x, feature_major=feature_major))


def sae_encoder(*, bias: bool = True) -> Encoder:
    """The SAE encoder ``z = ReLU(x W + b)`` (paper 1's SAE; ``bias=False`` drops ``b``)."""
    return Encoder(init=lambda key, m, n: init_linear(key, m, n, bias=bias), apply=relu_apply,
                   apply_t=functools.partial(relu_apply, feature_major=True))


relu_encoder = sae_encoder()
"""The standard SAE encoder ``z = ReLU(x W + b)``."""


def normalize_rows(w: jax.Array, eps: float = 1e-12) -> jax.Array:
    """Rows of ``w [N, M]`` scaled to unit Euclidean norm."""
    return w / jnp.maximum(jnp.linalg.norm(w, axis=-1, keepdims=True), eps)


def init_decoder(key: jax.Array, n_latents: int, n_features: int, *, dtype=jnp.float32) -> dict[str, jax.Array]:
    """``{"w": [N, M]`` Gaussian rows of unit norm, ``"b": [M]`` zeros}``."""
    return {"w": normalize_rows(jax.random.normal(key, (n_latents, n_features), dtype)), "b": jnp.zeros((n_features,), dtype)}


def decode(params: dict[str, jax.Array], z: jax.Array) -> jax.Array:
    """``x_hat = z W_dec + b_dec``: ``z [..., N]`` -> ``[..., M]``."""
    return matmul(z, params["w"]) + params["b"]


def init_sae(key: jax.Array, n_features: int, n_latents: int, *, encoder: Encoder = relu_encoder) -> PyTree:
    """``{"encoder": encoder.init(...), "decoder": init_decoder(...)}``."""
    k_enc, k_dec = jax.random.split(key)
    return {"encoder": encoder.init(k_enc, n_features, n_latents), "decoder": init_decoder(k_dec, n_latents, n_features)}


def project_sae(params: PyTree) -> PyTree:
    """Re-impose unit-norm decoder atoms (apply after each optimiser update)."""
    dec = dict(params["decoder"], w=normalize_rows(params["decoder"]["w"]))
    return dict(params, decoder=dec)


def use_feature_major(feature_major: bool | str, encoder: Encoder, params: PyTree) -> bool:
    """A loss's ``feature_major`` argument resolved: ``True``/``False`` as given (``True`` needs the
    encoder's ``apply_t``), ``"auto"`` where the encoder has ``apply_t`` and
    :func:`jaxsparse.models.matmul.prefers_feature_major` holds for ``params`` (read when traced)."""
    if feature_major == "auto":
        return encoder.apply_t is not None and prefers_feature_major(params)
    if not isinstance(feature_major, bool):
        raise ValueError(f"`feature_major` must be True, False or 'auto', got {feature_major!r}")
    if feature_major and encoder.apply_t is None:
        raise ValueError("`feature_major=True` needs an encoder with an `apply_t` (this one has none)")
    return feature_major


def sae_loss(
    params: PyTree, x: jax.Array, *, lam: jax.Array | float, encoder: Encoder = relu_encoder,
    feature_major: bool | str = False,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Reconstruction + L1 sparsity of an SAE, :func:`jaxsparse.losses.reconstruction_l1`.

    ``loss = mean_{b,m} (x - x_hat)^2 + lam * mean_{b,n} |z|`` for ``x: [..., M]`` (leading axes are
    samples), ``z: [..., N]``, ``x_hat = z W_dec + b_dec``.

    ``feature_major=True`` computes the same loss on transposed activations (``x^T [M, B]``, the
    encoder's ``apply_t``, ``x_hat^T = W_dec^T z^T + b_dec``): equal up to float rounding, and faster
    on CPU for narrow layers (:func:`jaxsparse.models.matmul.matmul_t`). ``"auto"``: where the
    encoder has ``apply_t`` and :func:`jaxsparse.models.matmul.prefers_feature_major` holds for
    ``params`` (on CPU, no weight wider than 64; read when traced). Measured (one core of the
    AVX-512 Xeon, Adam steps of a ReLU SAE on 1024 samples, seeds vmapped): 8 -> 16, one seed 77.3
    -> 38.8 us, 8 seeds 551 -> 353 us; 5 -> 10, 5 seeds 604 -> 126 us; 64 -> 64 a tie. The default
    stays sample-major: feature-major, 8 seeds vmapped cost more per seed than one (44 against 39
    us), so ``python benchmarks/sweep.py`` at 8 -> 16 fell from 1.4x to 0.88x of the sequential
    runs, below the engine's target, until its seed grouping (``train.sweep.auto_seed_batch``)
    accounts for it (2 seeds per group: 35 us per seed).

    Returns:
      ``(loss, {"mse": ..., "l1": mean |z|, "l0": mean number of nonzero latents per sample})``.
    """
    if not use_feature_major(feature_major, encoder, params):
        z = encoder.apply(params["encoder"], x)
        return reconstruction_l1(x, decode(params["decoder"], z), z, lam)
    x_t = to_feature_major(x)
    z_t = encoder.apply_t(params["encoder"], x_t)
    return reconstruction_l1(x_t, affine(params["decoder"], z_t, feature_major=True), z_t, lam, latent_axis=0)


def sae_flops(n_latents: int, n_features: int) -> int:
    """Inference FLOPs per sample of the SAE, decoding included (paper 1's count).

    One multiply-add is 2 FLOPs, an elementwise op 1; ``N`` = n_latents, ``M`` = n_features::

        2MN (x W) + N (ReLU) + 2MN (x_hat = z D) = 4MN + N

    Biases are not counted (paper 1's SAE has none; the encoder bias adds ``N``, the decoder's ``M``).

    Example::

        sae_flops(16, 8)   # 4 * 8 * 16 + 16 = 528
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    return 4 * m * n + n


def sae_training_flops(n_latents: int, n_features: int, *, n_samples: int, n_steps: int,
                       learn_decoder: bool = True) -> int:
    """Total training FLOPs of the SAE, paper 1's count: ``per_sample_step * n_samples * n_steps``.

    Full-batch steps; ``N`` = n_latents, ``M`` = n_features. Per sample and step
    (``learn_decoder`` adds the decoder's normalisation ``MN`` and its gradient ``2MN``)::

        forward  4MN + N                              (+ MN)
        backward N + (2MN + N) + 2MN + 2(MN + N)      (+ 2MN)

    Example::

        sae_training_flops(16, 8, n_samples=2, n_steps=3)   # (656 + 1088) * 6 = 1744 * 6
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    samples, steps = positive_int("n_samples", n_samples), positive_int("n_steps", n_steps)
    forward = sae_flops(n, m)
    backward = n + (2 * n * m + n) + 2 * n * m + 2 * (m * n + n)
    return (forward + backward + (m * n + 2 * n * m if learn_decoder else 0)) * samples * steps

"""Sparse coding as a model, and inference-time optimisation (ITO) of codes on a frozen decoder.

Paper 1 (O'Neill, Gumran & Klindt, ICML 2025) learns a free non-negative code per training sample,
``s = exp(log_s)`` with ``log_s = -10`` at init, jointly with a unit-norm dictionary ``D [N, M]`` by
Adam on the paper's objective (both terms are means over the batch ``B``)::

    L(log_s, D) = mean_{b,m} (x - s D)^2 + lam * mean_{b,n} |s|                            (1)

At test time codes are fitted to the frozen ``D`` by Adam on fresh exp-codes (10k steps, lr 3e-3):
:func:`fit_codes`. Per sample, (1) is the Lasso ``0.5 ||x - s D||^2 + lam_lasso ||s||_1`` scaled
by ``2 / (B M)``, with ``lam_lasso = lam * M / (2 N)`` (:func:`jaxsparse.losses.lasso_lam`), so our solvers
(FISTA, homotopy) can replace the Adam fit on the same objective. SAE+ITO = the SAE's decoder
frozen, codes from :func:`fit_codes` (paper) or from a solver warm-started at the SAE's codes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxsparse._checks import check_dictionary_and_signal, nonneg_scalar, positive_int
from jaxsparse.losses import lasso_lam, reconstruction_l1  # noqa: F401  (lasso_lam re-exported)
from jaxsparse.models.sae import affine, init_decoder, normalize_rows
from jaxsparse.models.matmul import prefers_feature_major, to_feature_major

PyTree = Any
LOG_INIT = -10.0  # paper 1: log-codes start at -10 (codes ~ 4.5e-5)


def init_sparse_coding(key: jax.Array, n_samples: int, n_features: int, n_latents: int, *,
                       log_init: float = LOG_INIT) -> dict[str, Any]:
    """``{"log_codes": [B, N] = log_init, "decoder": {"w": [N, M] unit-norm Gaussian rows}}``."""
    n_samples = positive_int("n_samples", n_samples)
    w = init_decoder(key, n_latents, n_features)["w"]
    return {"log_codes": jnp.full((n_samples, n_latents), log_init, w.dtype), "decoder": {"w": w}}


def codes(params: dict[str, Any]) -> jax.Array:
    """``s = exp(log_codes)``, ``[B, N]``."""
    return jnp.exp(params["log_codes"])


def code_loss(log_codes: jax.Array, dictionary: jax.Array, x: jax.Array, lam: float | jax.Array, *,
              feature_major: bool = False):
    """Objective (1) (:func:`jaxsparse.losses.reconstruction_l1`) for exp-codes ``s = exp(log_codes)``:
    ``x [B, M]``, ``log_codes [B, N]``, ``dictionary [N, M]``; with ``feature_major``, ``x [M, B]``
    and ``log_codes [N, B]`` (the same objective, faster on CPU for narrow dictionaries:
    :func:`jaxsparse.models.matmul.matmul_t`).

    Returns ``(loss, {"mse": ..., "l1": ..., "l0": mean nonzeros})``; ``l0`` counts codes above 1e-3.
    """
    s = jnp.exp(log_codes)
    x_hat = affine({"w": dictionary}, s, feature_major=feature_major)
    return reconstruction_l1(x, x_hat, s, lam, l0_threshold=1e-3, latent_axis=0 if feature_major else -1)


def sparse_coding_loss(params: dict[str, Any], x: jax.Array, *, lam: float | jax.Array):
    """Objective (1) of the jointly learned codes and dictionary (training set ``x [B, M]``)."""
    return code_loss(params["log_codes"], params["decoder"]["w"], x, lam)


def project_sparse_coding(params: dict[str, Any]) -> dict[str, Any]:
    """Unit-norm dictionary rows after each update."""
    return dict(params, decoder=dict(params["decoder"], w=normalize_rows(params["decoder"]["w"])))


def fit_codes(dictionary: jax.Array, x: jax.Array, *, lam: float = 0.01, n_steps: int = 10_000, lr: float = 3e-3,
              log_init: jax.Array | float = LOG_INIT) -> jax.Array:
    """Paper 1's inference: Adam on exp-codes against the frozen ``dictionary`` (objective (1)).

    Args:
      dictionary: ``[N, M]``.  x: ``[B, M]``.
      lam: the paper's sparsity weight (0.01).  n_steps, lr: Adam steps (10k) and learning rate (3e-3).
      log_init: scalar or ``[B, N]`` starting log-codes (-10 in the paper).
    Returns:
      ``[B, N]`` non-negative codes. FLOPs per sample: :func:`fit_codes_flops`. On CPU a dictionary
      at most 64 wide is fitted on transposed codes ``[N, B]``
      (:func:`jaxsparse.models.matmul.prefers_feature_major`; 1.27-1.32x faster per step, the same
      codes up to float rounding, ``python benchmarks/feature_major.py``).

    Example::

        s = fit_codes(d, x_test, n_steps=10_000)
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    nonneg_scalar("lam", lam)
    n_steps = positive_int("n_steps", n_steps)
    log0 = jnp.broadcast_to(jnp.asarray(log_init, x.dtype), x.shape[:-1] + (dictionary.shape[0],))
    return _fit_codes(dictionary, x, jnp.asarray(lam, x.dtype), log0, n_steps=n_steps, lr=float(lr))


def _fit_codes(dictionary, x, lam, log0, *, n_steps, lr):
    # feature-major where the dictionary is narrow (on CPU): codes [N, B'] over the flattened samples
    # (the objective's means are over all of them either way)
    fm = prefers_feature_major(dictionary)
    shape = log0.shape
    if fm:
        x = to_feature_major(x)
        log0 = log0.reshape(-1, shape[-1]).T
    opt = optax.adam(lr)
    grad = jax.grad(lambda log_s: code_loss(log_s, dictionary, x, lam, feature_major=fm)[0])

    def body(carry, _):
        log_s, state = carry
        updates, state = opt.update(grad(log_s), state, log_s)
        return (optax.apply_updates(log_s, updates), state), None

    (log_s, _), _ = jax.lax.scan(body, (log0, opt.init(log0)), None, length=n_steps)
    return jnp.exp(log_s.T.reshape(shape) if fm else log_s)


_fit_codes = jax.jit(_fit_codes, static_argnames=("n_steps", "lr"))


def fit_codes_flops(n_latents: int, n_features: int, *, n_steps: int) -> int:
    """FLOPs per sample of :func:`fit_codes` (paper 1's ITO count), ``N`` = n_latents, ``M`` = n_features::

        (MN + N) + n_steps * (4MN + 2M + 11N)

    ``MN + N``: the final ``exp`` and decode; per Adam step on exp-codes: ``exp``, forward ``s D``,
    residual and loss, the gradient ``r D^T`` through ``exp``, and Adam's elementwise update.
    (``jaxsparse.eval.flops("adam_codes", n_iter=n_steps, ...)`` dispatches here.)

    Example::

        fit_codes_flops(16, 8, n_steps=10)   # 144 + 10 * (512 + 16 + 176) = 7184
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    return (m * n + n) + positive_int("n_steps", n_steps) * (4 * m * n + 2 * m + 11 * n)


def sparse_coding_training_flops(n_latents: int, n_features: int, *, n_samples: int, n_steps: int,
                                 learn_decoder: bool = True) -> int:
    """Total training FLOPs of sparse coding (free exp-codes and, with ``learn_decoder``, the dictionary).

    Paper 1's count, ``per_sample_step * n_samples * n_steps`` with, per sample and step
    (``N`` = n_latents, ``M`` = n_features; the dictionary's share in brackets)::

        forward  N + 2MN (+3MN);  loss 2M + N;  backward 2 * forward;  update N (+MN)

    Example::

        sparse_coding_training_flops(16, 8, n_samples=1, n_steps=1)   # 3 * 656 + 32 + 144 = 2144
    """
    n, m = positive_int("n_latents", n_latents), positive_int("n_features", n_features)
    samples, steps = positive_int("n_samples", n_samples), positive_int("n_steps", n_steps)
    forward = n + 2 * m * n
    per_step = 3 * forward + (2 * m + n) + n + (3 * 3 * m * n + m * n if learn_decoder else 0)
    return per_step * samples * steps

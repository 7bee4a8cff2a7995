"""Training objectives as pure functions of arrays.

``reconstruction_l1`` is the one reconstruction + sparsity loss of paper 1 (O'Neill, Gumran &
Klindt, ICML 2025), used by SAEs, encoders with a frozen or learned decoder, and sparse coding::

    L = mean_{b,m} (x - x_hat)^2 + lam * mean_{b,n} |z|                                   (1)

Both terms are means, so the loss does not scale with the batch size. With ``x_hat = z D``, (1) is
``2 / (B M)`` times the sum over samples of the Lasso objective ``0.5 ||x - z D||^2 + lam_lasso
||z||_1`` with ``lam_lasso = lam * M / (2 N)`` (:func:`lasso_lam`): the one conversion between this
loss's ``lam`` and the solvers'.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def reconstruction_l1(x: jax.Array, x_hat: jax.Array, z: jax.Array, lam: jax.Array | float, *,
                      l0_threshold: float = 0.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Objective (1) for signals ``x [B, M]``, reconstructions ``x_hat [B, M]`` and codes ``z [B, N]``.

    Returns:
      ``(loss, {"mse": mean (x - x_hat)^2, "l1": mean |z|, "l0": mean over samples of the number
      of latents with |z| > l0_threshold})``.

    Example::

        loss, aux = reconstruction_l1(x, z @ d, z, lam=0.01)
    """
    mse = jnp.mean((x - x_hat) ** 2)
    l1 = jnp.mean(jnp.abs(z))
    l0 = jnp.mean(jnp.sum(jnp.abs(z) > l0_threshold, axis=-1).astype(x.dtype))
    return mse + lam * l1, {"mse": mse, "l1": l1, "l0": l0}


def lasso_lam(lam: float, n_latents: int, n_features: int) -> float:
    """The per-sample Lasso weight equivalent to objective (1): ``lam * M / (2 N)``.

    The solvers' ``lam`` (``0.5 ||x - z D||^2 + lam ||z||_1`` per sample) maps to scikit-learn's
    ``Lasso(alpha=lam / M)`` and to SPAMS's ``lambda1 = lam`` (``mode=2``).
    """
    return lam * n_features / (2 * n_latents)

"""The amortisation gap of linear-ReLU encoders (O'Neill, Gumran & Klindt, ICML 2025, Theorem 1).

**Setting.** Codes ``s in R^N_{>=0}`` with at most ``K >= 2`` nonzeros, a dictionary ``D [N, M]``
with ``M < N`` whose columns of ``D^T`` (atoms) satisfy the restricted isometry property of order
``2K``, and noiseless signals ``x = s D``. Under RIP, compressed sensing recovers every such ``s``
from ``x`` (l1 minimisation, OMP, FISTA at small ``lam``).

**Theorem.** No encoder ``f(x) = ReLU(x W + b)`` (``W [M, N]``, ``b [N]``) recovers every
``K``-sparse non-negative code: ``sup_s ||f(sD) - s|| > 0``. The amortisation gap is non-zero.

**Proof.** Suppose ``f(sD) = s`` for all such ``s``. (i) One atom, ``s = a e_i``: ``ReLU(a D_i W + b)
= a e_i`` for all ``a > 0``; letting ``a -> 0`` gives ``ReLU(b) = 0``, and on coordinate ``i``,
``a (D_i W)_i + b_i = a`` for all ``a > 0`` gives ``b_i = 0``, ``(D_i W)_i = 1``; for ``j != i``,
``(D_i W)_j <= 0``. (ii) Two atoms (``K >= 2``), ``s = a e_i + c e_j``: coordinate ``i`` gives
``a + c (D_j W)_i = a`` for all ``a, c > 0``, so ``(D_j W)_i = 0``. Hence ``D W = I_N``, but
``rank(D W) <= M < N``: a contradiction. By continuity of ``f``, the error is bounded away from
zero on a set of codes of positive probability, so the expected code error of the *best* such
encoder is strictly positive, while a solver reaches zero. ∎

The linear part alone is quantitative: ``min_W ||D W - I_N||_F^2 = N - rank(D)``
(:func:`linear_gap`), since ``D W`` has rank at most ``rank(D)`` (Eckart–Young).

``tests/test_theory_amortisation.py`` checks it numerically: the best linear-ReLU encoder trained on
the true codes (:func:`fit_relu_encoder`) keeps a relative code error bounded away from zero, while
exact Lasso / OMP on the true dictionary recover the codes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxsparse._checks import as_float_array, positive_int


def relative_code_error(z: jax.Array, z_hat: jax.Array) -> jax.Array:
    """``sum ||z_hat - z||^2 / sum ||z||^2`` over all samples (0 = perfect recovery).

    Args:
      z, z_hat: ``[B, N]`` true and inferred codes.
    """
    z = as_float_array("z", z, min_ndim=2)
    z_hat = as_float_array("z_hat", z_hat, min_ndim=2)
    if z.shape != z_hat.shape:
        raise ValueError(f"`z_hat` must have the shape of `z` {tuple(z.shape)}, got {tuple(z_hat.shape)}")
    return jnp.sum((z_hat - z) ** 2) / jnp.sum(z**2)


def linear_gap(dictionary: jax.Array) -> jax.Array:
    """``min_W ||D W - I_N||_F^2 = N - rank(D)`` for ``dictionary [N, M]`` (> 0 whenever ``M < N``)."""
    dictionary = as_float_array("dictionary", dictionary, min_ndim=2)
    n = dictionary.shape[0]
    w = jnp.linalg.pinv(dictionary)  # [M, N], the least-squares minimiser
    return jnp.sum((dictionary @ w - jnp.eye(n, dtype=dictionary.dtype)) ** 2)


def fit_relu_encoder(key: jax.Array, x: jax.Array, z: jax.Array, *, n_steps: int = 5000, lr: float = 1e-2
                     ) -> tuple[dict[str, jax.Array], jax.Array]:
    """The (numerically) best ``ReLU(x W + b)`` for the known codes: Adam on ``mean ||f(x) - z||^2``.

    Args:
      key: PRNG key for the initial ``W``.
      x: ``[B, M]`` signals.  z: ``[B, N]`` their true codes.
      n_steps, lr: full-batch Adam steps and learning rate.
    Returns:
      ``({"w": [M, N], "b": [N]}, final relative code error)``.
    """
    x = as_float_array("x", x, min_ndim=2)
    z = as_float_array("z", z, min_ndim=2)
    n_steps = positive_int("n_steps", n_steps)
    m, n = x.shape[-1], z.shape[-1]
    params = {"w": jax.random.normal(key, (m, n), x.dtype) / jnp.sqrt(m), "b": jnp.zeros((n,), x.dtype)}
    opt = optax.adam(lr)

    def loss(p):
        return jnp.mean(jnp.sum((jax.nn.relu(x @ p["w"] + p["b"]) - z) ** 2, axis=-1))

    def body(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=n_steps))((params, opt.init(params)))
    return params, relative_code_error(z, jax.nn.relu(x @ params["w"] + params["b"]))

"""ISTA and FISTA for the Lasso: one proximal-gradient loop, acceleration and restart as flags.

Objective, per sample (``x: [M]``, ``z: [N]``, ``D: [N, M]`` with unit-norm rows)::

    F(z) = 0.5 * ||x - z D||_2^2 + lam * ||z||_1          (+ indicator{z >= 0} if nonneg)

scikit-learn's ``Lasso(fit_intercept=False)`` fitted to one signal (``X = D.T`` of shape [M, N],
``y = x``) minimises ``1/(2M) ||x - D.T z||^2 + alpha ||z||_1 = F(z) / M`` when ``alpha = lam / M``,
so both have the same minimiser and ``F = M * sklearn_objective``.

Update (Beck & Teboulle 2009), step ``1/L`` with ``L = ||D||_2^2`` (largest eigenvalue of ``D D^T``)::

    z_{t+1} = prox_{lam/L}(y_t - (1/L) * (y_t D - x) D^T)
    FISTA:  s_{t+1} = (1 + sqrt(1 + 4 s_t^2)) / 2,   y_{t+1} = z_{t+1} + (s_t - 1)/s_{t+1} (z_{t+1} - z_t)
    ISTA:   y_{t+1} = z_{t+1}

Adaptive restart (O'Donoghue & Candès 2015, gradient scheme), per sample: when
``(y_t - z_{t+1}) . (z_{t+1} - z_t) > 0`` the momentum is reset (``s = 1``, ``y = z``).

The gradient uses the Gram matrix ``D D^T`` when ``N <= 2M`` (cheaper), else two thin matmuls.

FLOPs per sample (:func:`proximal_gradient_flops`; a multiply-add is 2, any other elementwise op 1):
``2MN`` once for ``x D^T`` plus ``2N^2 + N`` per gradient in the Gram form, or ``4MN + M`` per
gradient in the residual form; per iteration a gradient step ``2N`` and the soft threshold ``3N``
(``2N`` when ``nonneg``); FISTA adds the momentum ``5N + 4`` and the restart test ``2N``.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import check_dictionary_and_signal, check_init, nonneg_scalar, positive_int
from jaxsparse.solvers.prox import soft_threshold


class ProxGradState(NamedTuple):
    """Iterate ``z``, extrapolated point ``y`` (both ``[..., N]``) and momentum ``s`` (``[...]``)."""

    z: jax.Array
    y: jax.Array
    s: jax.Array


def lipschitz_constant(dictionary: jax.Array) -> jax.Array:
    """``L = ||D||_2^2``, the Lipschitz constant of the gradient of ``0.5 ||x - z D||^2``."""
    return jnp.linalg.norm(dictionary, ord=2) ** 2


def proximal_gradient_flops(
    n_latents: int,
    n_features: int,
    *,
    n_iter: int = 100,
    nonneg: bool = False,
    accelerate: bool = True,
    restart: bool = True,
) -> int:
    """FLOPs per sample of :func:`proximal_gradient` (what ``_proximal_gradient`` executes).

    With ``N = n_latents``, ``M = n_features``, ``T = n_iter``::

        Gram form (N <= 2M):      2MN + T * (2N^2 + N + 2N + prox + momentum)
        residual form (N > 2M):         T * (4MN + M + 2N + prox + momentum)
        prox = 3N (2N if nonneg),   momentum = 5N + 4 + 2N * restart   (0 without acceleration)

    The per-dictionary set-up (``D D^T``, the spectral norm) is excluded: it is paid once per
    dictionary and amortised over the batch. A warm start costs nothing extra.

    Args:
      n_latents, n_features: ``N`` and ``M``.
      n_iter, nonneg, accelerate, restart: as passed to :func:`proximal_gradient`.
    Returns:
      FLOPs per sample, an ``int``.
    """
    n = positive_int("n_latents", n_latents)
    m = positive_int("n_features", n_features)
    n_iter = positive_int("n_iter", n_iter)
    if n <= 2 * m:
        setup, grad = 2 * m * n, 2 * n * n + n
    else:
        setup, grad = 0, 4 * m * n + m
    per_iter = grad + 2 * n + (2 * n if nonneg else 3 * n)
    if accelerate:
        per_iter += 5 * n + 4 + (2 * n if restart else 0)
    return setup + n_iter * per_iter


def ista_flops(n_latents: int, n_features: int, *, n_iter: int = 100, nonneg: bool = False) -> int:
    """FLOPs per sample of :func:`ista`: :func:`proximal_gradient_flops` without momentum.

    Example::

        ista_flops(16, 8, n_iter=10)   # 2*8*16 + 10 * (528 + 32 + 48) = 6336
    """
    return proximal_gradient_flops(n_latents, n_features, n_iter=n_iter, nonneg=nonneg, accelerate=False, restart=False)


def fista_flops(
    n_latents: int, n_features: int, *, n_iter: int = 100, nonneg: bool = False, restart: bool = True
) -> int:
    """FLOPs per sample of :func:`fista`: :func:`proximal_gradient_flops` with momentum (and restart).

    Example::

        fista_flops(16, 8, n_iter=10)   # 256 + 10 * 724 = 7496
    """
    return proximal_gradient_flops(
        n_latents, n_features, n_iter=n_iter, nonneg=nonneg, accelerate=True, restart=restart
    )


def lasso_objective(dictionary: jax.Array, x: jax.Array, z: jax.Array, lam: float) -> jax.Array:
    """Per-sample Lasso objective ``0.5 ||x - z D||^2 + lam ||z||_1``.

    Args:
      dictionary: ``[N, M]``.  x: ``[..., M]``.  z: ``[..., N]``.  lam: ``>= 0``.
    Returns:
      ``[...]`` objective values. Divide by ``M`` for scikit-learn's ``Lasso`` objective with ``alpha = lam / M``.
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    z = check_init(z, x, dictionary.shape[0])
    nonneg_scalar("lam", lam)
    residual = x - z @ dictionary
    return 0.5 * jnp.sum(residual**2, axis=-1) + lam * jnp.sum(jnp.abs(z), axis=-1)


def _iteration_count(n_iter: Any) -> tuple[int | None, jax.Array | None]:
    """``(n_iter, None)`` for a static count (a Python or NumPy int >= 1), ``(None, count)`` for an
    integer scalar array (it may be traced; a count <= 0 runs no iteration)."""
    if isinstance(n_iter, (jax.Array, np.ndarray)):
        if n_iter.ndim != 0 or not jnp.issubdtype(n_iter.dtype, jnp.integer):
            raise TypeError(f"`n_iter` must be an int or an integer scalar array, got {n_iter.dtype}{list(n_iter.shape)}")
        return None, jnp.asarray(n_iter, jnp.int32)
    return positive_int("n_iter", n_iter), None


@functools.partial(jax.jit, static_argnames=("n_iter", "nonneg", "accelerate", "restart"))
def _proximal_gradient(dictionary, x, lam, init, count=None, *, n_iter, nonneg, accelerate, restart):
    n_latents, n_features = dictionary.shape
    dtype = x.dtype
    step = (1.0 / lipschitz_constant(dictionary)).astype(dtype)
    threshold = (lam * step).astype(dtype)
    if n_latents <= 2 * n_features:
        gram = dictionary @ dictionary.T
        xdt = x @ dictionary.T

        def grad(y):
            return y @ gram - xdt
    else:

        def grad(y):
            return (y @ dictionary - x) @ dictionary.T

    z0 = jnp.zeros(x.shape[:-1] + (n_latents,), dtype) if init is None else init.astype(dtype)
    state = ProxGradState(z0, z0, jnp.ones(x.shape[:-1], dtype))

    def body(state: ProxGradState, _) -> tuple[ProxGradState, None]:
        z_new = soft_threshold(state.y - step * grad(state.y), threshold, nonneg=nonneg)
        if not accelerate:
            return ProxGradState(z_new, z_new, state.s), None
        s_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * state.s**2))
        beta = (state.s - 1.0) / s_new
        if restart:
            reset = jnp.sum((state.y - z_new) * (z_new - state.z), axis=-1) > 0
            beta = jnp.where(reset, 0.0, beta)
            s_new = jnp.where(reset, 1.0, s_new)
        y_new = z_new + beta[..., None] * (z_new - state.z)
        return ProxGradState(z_new, y_new, s_new), None

    if count is None:
        state, _ = jax.lax.scan(body, state, None, length=n_iter)
    else:  # a while loop: one compiled program serves every count (forward mode only)
        state = jax.lax.fori_loop(0, count, lambda _, st: body(st, None)[0], state)
    return state.z


def proximal_gradient(
    dictionary: jax.Array,
    x: jax.Array,
    *,
    lam: float,
    n_iter: int = 100,
    nonneg: bool = False,
    init: jax.Array | None = None,
    accelerate: bool = True,
    restart: bool = True,
) -> jax.Array:
    """Lasso codes by proximal gradient (see the module docstring for objective and update).

    Args:
      dictionary: ``[N, M]`` dictionary, rows are atoms (unit norm by convention; not required).
      x: ``[..., M]`` signals; leading axes are batch axes.
      lam: ``lam >= 0``, the l1 weight (may be a traced scalar, e.g. under ``vmap`` over a lambda grid).
      n_iter: number of iterations: an int (static: one compiled program per count), or an integer
        scalar array, which may be traced: one program serves every count, e.g. a sweep over
        iteration budgets under ``jit`` (a ``while_loop``, so forward mode only; a count <= 0 runs
        none). The codes are the static count's up to float rounding (bit for bit when the
        arrays are arguments of the program rather than constants XLA may fold).
      nonneg: constrain ``z >= 0``.
      init: optional warm start ``[..., N]`` (e.g. an encoder's codes); zeros otherwise.
      accelerate: FISTA momentum (``False`` gives ISTA).
      restart: adaptive gradient restart of the momentum (FISTA only).
    Returns:
      ``[..., N]`` codes, differentiable in ``dictionary``, ``x``, ``lam`` and ``init``
      through the unrolled iterations (with a static ``n_iter``).
    """
    dictionary, x = check_dictionary_and_signal(dictionary, x)
    init = check_init(init, x, dictionary.shape[0])
    nonneg_scalar("lam", lam)
    n_iter, count = _iteration_count(n_iter)
    return _proximal_gradient(
        dictionary, x, jnp.asarray(lam, x.dtype), init, count,
        n_iter=n_iter, nonneg=bool(nonneg), accelerate=bool(accelerate), restart=bool(restart and accelerate),
    )


def ista(
    dictionary: jax.Array,
    x: jax.Array,
    *,
    lam: float,
    n_iter: int = 100,
    nonneg: bool = False,
    init: jax.Array | None = None,
) -> jax.Array:
    """ISTA (Daubechies et al. 2004): :func:`proximal_gradient` without momentum.

    Example::

        z = ista(d, x, lam=0.05, n_iter=500)
    """
    return proximal_gradient(dictionary, x, lam=lam, n_iter=n_iter, nonneg=nonneg, init=init, accelerate=False)


def fista(
    dictionary: jax.Array,
    x: jax.Array,
    *,
    lam: float,
    n_iter: int = 100,
    nonneg: bool = False,
    init: jax.Array | None = None,
    restart: bool = True,
) -> jax.Array:
    """FISTA (Beck & Teboulle 2009) with optional adaptive restart: :func:`proximal_gradient` with momentum.

    Example::

        x, z, d = jaxsparse.data.sparse_coding_data(jax.random.key(0))
        z_hat = fista(d, x, lam=0.01, n_iter=200, nonneg=True)
    """
    return proximal_gradient(
        dictionary, x, lam=lam, n_iter=n_iter, nonneg=nonneg, init=init, accelerate=True, restart=restart
    )

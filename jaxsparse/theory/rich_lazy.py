"""Exact lazy/rich learning dynamics of the minimal model ``f(x) = a w^T x``.

From Kunin, Raventós, Dominé, Chen, Klindt, Saxe & Ganguli, "Get rich quick: exact solutions reveal
how unbalanced initializations promote rapid feature learning" (NeurIPS 2024), Section 3.

**Model.** A scalar ``a`` and a vector ``w in R^d``, whitened inputs (``E[x x^T] = I``), target
``beta_*`` (``s = ||beta_*|| > 0``), loss ``L = 1/2 ||a w - beta_*||^2`` and gradient flow with layer
learning rates ``eta_a, eta_w > 0``::

    da/dt = -eta_a dL/da = eta_a (w^T beta_* - a ||w||^2)
    dw/dt = -eta_w dL/dw = eta_w (a beta_* - a^2 w)

**Conserved quantity** (:func:`conserved`). ``d(a^2)/dt = 2 eta_a a w^T (beta_* - a w)`` and
``d||w||^2/dt = 2 eta_w a w^T (beta_* - a w)``, so ``delta = eta_w a^2 - eta_a ||w||^2`` is constant.
This is the paper's sign: ``delta > 0`` is an *upstream* initialisation (large ``|a|``, lazy),
``delta = 0`` balanced (rich), ``delta < 0`` *downstream* (large ``||w||``). For ``delta > 0``
``a`` never changes sign; for ``delta <= 0`` it may cross zero.

**The Riccati variable** (:func:`nu`, ``eta_a = eta_w = 1``). ``nu = w^T beta_* / a`` obeys
(differentiate ``p / a`` with ``p = w^T beta_*``, use ``dp/dt = a s^2 - a^2 p`` and
``||w||^2 = a^2 - delta``)::

    dnu/dt = s^2 - delta nu - nu^2,
    nu(t) = 1/2 (-delta + D tanh(D t / 2 + artanh((delta + 2 nu0) / D))),   D = sqrt(delta^2 + 4 s^2).

The fixed points are ``nu_± = (-delta ± D) / 2`` (``nu_+ > 0 > nu_-``). When
``|u0| = |(delta + 2 nu0) / D| > 1`` the artanh is complex (``artanh u0 = arcoth u0 + i pi/2``) and
the real solution is the coth form ``nu = 1/2 (-delta + D coth(D t / 2 + arcoth u0))``. Both are one
real formula through ``tanh(x + artanh u) = (tanh x + u) / (1 + u tanh x)`` (valid for the coth
branch too, as ``coth(x + arcoth u)`` has the same expansion); with ``E = exp(-D t)``::

    nu(t) = [nu_+ (nu0 - nu_-) + nu_- (nu_+ - nu0) E] / [(nu0 - nu_-) + (nu_+ - nu0) E]

which is what :func:`nu` evaluates (no complex dtype, no overflow for large ``t``). ``u0 > 1``
(``nu0 > nu_+``): ``nu`` decreases to ``nu_+``. ``u0 < -1`` (``nu0 < nu_-``, only possible for
``delta < 0``): ``nu`` runs to ``-inf`` at ``t* = log((nu0 - nu_+) / (nu0 - nu_-)) / D``, where
``a(t*) = 0``, and comes back from ``+inf`` to ``nu_+``; at ``t*`` itself :func:`nu` returns
``±inf``. ``nu`` needs ``a0 != 0``; :func:`trajectory` does not.

For general learning rates ``nu_bar = eta_a w^T beta_* / a`` obeys the same equation with ``s``
replaced by ``sqrt(eta_a eta_w) s``: ``nu_bar(t) = nu(t, delta, sqrt(eta_a eta_w) s, eta_a nu0)``.
(Equivalently, rescale ``a' = a / sqrt(eta_a)``, ``w' = w / sqrt(eta_w)``: that is unit-rate gradient
flow on ``1/2 ||k a' w' - beta_*||^2`` with ``k = sqrt(eta_a eta_w)``.)

**Trajectories in closed form** (:func:`trajectory`). With ``p = w^T beta_*`` and
``eta_a ||w||^2 = eta_w a^2 - delta``, the pair ``x = (a, p)`` obeys
``dx/dt = M x - eta_w a^2 x`` with ``M = [[delta, eta_a], [eta_w s^2, 0]]``: a linear flow minus a
radial term. Writing ``x = x~ / sqrt(Q)`` linearises it exactly::

    dx~/dt = M x~,   dQ/dt = 2 eta_w a~^2,   Q(0) = 1,   so   Q(t) = 1 + 2 eta_w int_0^t a~^2.

``M`` has eigenvalues ``lambda_± = (delta ± D) / 2`` with ``D = sqrt(delta^2 + 4 eta_a eta_w s^2)``
(``lambda_± = -nu_bar_∓``), so ``a~(t) = c_+ e^{lambda_+ t} + c_- e^{lambda_- t}``,
``c_+ = (lambda_+ a0 + eta_a p0) / D``, ``c_- = -(lambda_- a0 + eta_a p0) / D``, and ``int a~^2`` is a sum
of three exponentials. The component of ``w`` orthogonal to ``beta_*`` obeys
``dw_perp/dt = -eta_w a^2 w_perp``, and ``int eta_w a^2 = 1/2 log Q``, so ``w_perp(t) = w_perp(0) / sqrt(Q)``.
Altogether, with ``E = e^{-D t}`` and everything scaled by ``e^{-lambda_+ t}`` so nothing overflows::

    q(t)   = e^{-2 lambda_+ t} Q(t) = e^{-2 lambda_+ t} + 2 eta_w [c_+^2 phi(-2 lambda_+, t)
             + 2 c_+ c_- E phi(-delta, t) + c_-^2 e^{-2 lambda_+ t} phi(2 lambda_-, t)],
             phi(x, t) = (e^{x t} - 1) / x   (= t at x = 0;  E phi(-delta, t) = e^{-2 lambda_+ t} phi(delta, t)
                                             is evaluated in whichever form is bounded)
    a(t)   = (c_+ + c_- E) / sqrt(q)
    p(t)   = -(lambda_- c_+ + lambda_+ c_- E) / (eta_a sqrt(q))
    w(t)   = p(t) beta_* / s^2 + w_perp(0) e^{-lambda_+ t} / sqrt(q),      beta(t) = a(t) w(t)

Everything is closed form: nothing is integrated numerically, and ``delta = 0`` and sign changes
of ``a`` need no special case (``a`` crosses zero exactly where the ``nu`` above blows up). The
paper's solution parameterises ``a, ||w||`` hyperbolically, case by case in the sign of ``delta``.
``tests/test_theory_rich_lazy.py`` checks ``nu`` and these trajectories against
``scipy.integrate.solve_ivp`` of the ``(a, w)`` flow.

**Neural tangent kernel** (:func:`ntk`, :func:`kernel_distance`). The parameter gradient of
``f(x)`` is ``(w^T x, a x)``, so with the learning rates as the metric
``K(x, x') = eta_a (w^T x)(w^T x') + eta_w a^2 x^T x' = x^T K x'`` with
``K = eta_w a^2 I_d + eta_a w w^T``. On a whitened data matrix ``X`` (``X^T X = n I``) the data NTK
``X K X^T`` has Frobenius inner products ``n^2 <K, K'>_F``, so its cosine similarity is that of the
``d x d`` matrices. The kernel distance is ``S(t) = 1 - <K_0, K_t>_F / (||K_0||_F ||K_t||_F)``,
in ``[0, 1]`` (both are positive semi-definite). At a fixed starting function (:func:`init_from_delta`)
it stays near 0 for upstream ``delta >> 0`` (lazy: ``K ~ eta_w a^2 I`` barely moves), grows to the
balanced manifold's ceiling within the time the loss is learned at ``delta = 0`` (rich, rapid), and for
downstream ``delta << 0`` stays near 0 over any fixed horizon (``w`` turns on the slow time scale
``|delta| / (eta_a eta_w s^2)``) but becomes large late: lazy, then delayed rich.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import as_float_array, is_concrete

__all__ = ["Trajectory", "conserved", "nu", "init_from_delta", "trajectory", "ntk", "kernel_distance"]


# ---------------------------------------------------------------------------------------------
# validation


def _real(name: str, x: Any, *, positive: bool = False, nonneg: bool = False) -> Any:
    """A real (possibly traced) scalar or array; value checks only on concrete inputs.

    Python floats are returned as they are (weakly typed: they do not promote float32 arrays)."""
    if isinstance(x, bool):
        raise TypeError(f"`{name}` must be a real number or array, got bool")
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not isinstance(x, (int, float, np.number, np.ndarray, jax.Array)):
        raise TypeError(f"`{name}` must be a real number or array, got {type(x).__name__}")
    dtype = np.asarray(x).dtype if not isinstance(x, jax.Array) else x.dtype
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)) or dtype == bool:
        raise TypeError(f"`{name}` must be real (float or int), got dtype {dtype}")
    if jnp.issubdtype(dtype, jnp.integer):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"`{name}` must be finite, got {x!r}")
        if positive and not np.all(arr > 0):
            raise ValueError(f"`{name}` must be > 0, got {x!r}")
        if nonneg and not np.all(arr >= 0):
            raise ValueError(f"`{name}` must be >= 0, got {x!r}")
    return x if isinstance(x, (int, float)) else jnp.asarray(x)


def _vector(name: str, x: Any) -> jax.Array:
    return as_float_array(name, x, min_ndim=1)


def _check_same_d(name: str, x: jax.Array, ref_name: str, ref: jax.Array) -> None:
    if x.shape[-1] != ref.shape[-1]:
        raise ValueError(f"`{name}` must have shape [..., d={ref.shape[-1]}] like `{ref_name}`, "
                         f"got {tuple(x.shape)}")


def _check_nonzero(name: str, x: jax.Array) -> None:
    if is_concrete(x) and not np.all(np.sum(np.asarray(x) ** 2, axis=-1) > 0):   # numpy: fine under jit
        raise ValueError(f"`{name}` must be a nonzero vector")


# ---------------------------------------------------------------------------------------------
# helpers


def _phi(x: jax.Array, t: jax.Array) -> jax.Array:
    """``(exp(x t) - 1) / x``, equal to ``t`` at ``x = 0`` (safe under grad)."""
    zero = x == 0
    safe = jnp.where(zero, 1.0, x)
    return jnp.where(zero, t, jnp.expm1(safe * t) / safe)


def _roots(delta: jax.Array, k: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``lambda_± = (delta ± D) / 2``, ``D = sqrt(delta^2 + 4 k)`` (``k > 0``), without cancellation."""
    d = jnp.sqrt(delta**2 + 4.0 * k)
    big = 0.5 * (d + jnp.abs(delta))    # the root of larger magnitude
    small = k / big                      # lambda_+ lambda_- = -k
    pos = delta >= 0
    return jnp.where(pos, big, small), jnp.where(pos, -small, -big), d


# ---------------------------------------------------------------------------------------------
# public API


class Trajectory(NamedTuple):
    """The state at time ``t``: ``a [...]``, ``w [..., d]`` and the function ``beta = a w [..., d]``."""

    a: jax.Array
    w: jax.Array
    beta: jax.Array


def conserved(a: jax.Array, w: jax.Array, *, eta_a: float = 1.0, eta_w: float = 1.0) -> jax.Array:
    """The conserved quantity ``delta = eta_w a^2 - eta_a ||w||^2`` of the gradient flow.

    Positive: upstream (lazy); zero: balanced (rich); negative: downstream.

    Args:
      a: ``[...]`` the output weight(s).
      w: ``[..., d]`` the input weights.
      eta_a, eta_w: layer learning rates (> 0).
    Returns:
      ``[...]`` ``delta``.

    Example::

        conserved(2.0, jnp.array([1.0, 1.0]))            # 4 - 2 = 2.0
        conserved(2.0, jnp.array([1.0, 1.0]), eta_a=3.0)  # 4 - 6 = -2.0
    """
    a = _real("a", a)
    w = _vector("w", w)
    eta_a = _real("eta_a", eta_a, positive=True)
    eta_w = _real("eta_w", eta_w, positive=True)
    return eta_w * jnp.asarray(a) ** 2 - eta_a * jnp.sum(w**2, axis=-1)


def nu(t: jax.Array, delta: jax.Array, s: jax.Array, nu0: jax.Array) -> jax.Array:
    """``nu(t) = w(t)^T beta_* / a(t)`` in closed form (``eta_a = eta_w = 1``).

    Solves ``dnu/dt = s^2 - delta nu - nu^2`` from ``nu(0) = nu0``::

        nu(t) = 1/2 (-delta + D tanh(D t / 2 + artanh((delta + 2 nu0) / D))),   D = sqrt(delta^2 + 4 s^2)

    on both the real-artanh branch and the coth branch ``|delta + 2 nu0| > D`` (see the module
    docstring; evaluated as one real Möbius map in ``exp(-D t)``). On the branch ``nu0 < nu_-`` (only
    for ``delta < 0``) ``a`` crosses zero at ``t*`` and ``nu`` jumps from ``-inf`` to ``+inf`` there.
    Requires ``a0 != 0`` (``nu0`` finite). For unequal learning rates use
    ``nu(t, delta, sqrt(eta_a eta_w) s, eta_a nu0)``, which gives ``eta_a w^T beta_* / a``.

    Args:
      t: time(s) ``>= 0``; all arguments broadcast together elementwise.
      delta: the conserved quantity ``a^2 - ||w||^2``.
      s: ``||beta_*|| > 0``.
      nu0: ``w(0)^T beta_* / a(0)``.
    Returns:
      ``nu(t)``, the broadcast shape of the arguments.

    Example::

        nu(jnp.linspace(0.0, 5.0, 6), 0.0, 1.0, 0.0)   # tanh(t): 0, 0.76, 0.96, ...
        jax.vmap(nu, (None, 0, None, None))(1.0, jnp.array([-2.0, 0.0, 2.0]), 1.0, 0.5)
    """
    t = _real("t", t, nonneg=True)
    delta = _real("delta", delta)
    s = _real("s", s, positive=True)
    nu0 = _real("nu0", nu0)
    lam_p, lam_m, d = _roots(delta, s**2)
    nu_p, nu_m = -lam_m, -lam_p          # nu_+ > 0 > nu_-
    e = jnp.exp(-d * t)
    below, above = nu0 - nu_m, nu_p - nu0
    return (nu_p * below + nu_m * above * e) / (below + above * e)


def init_from_delta(delta: jax.Array, beta0: jax.Array, *, eta_a: float = 1.0,
                    eta_w: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """The initialisation with function ``a0 w0 = beta0``, conserved quantity ``delta`` and ``a0 > 0``.

    The paper's way to compare regimes at a fixed starting function: ``a0^2`` is the positive root
    of ``eta_w x^2 - delta x - eta_a ||beta0||^2 = 0`` and ``w0 = beta0 / a0``.

    Args:
      delta: scalar ``eta_w a0^2 - eta_a ||w0||^2`` (``vmap`` for several).
      beta0: ``[d]`` the initial function, nonzero.
      eta_a, eta_w: layer learning rates (> 0).
    Returns:
      ``(a0 [], w0 [d])``.

    Example::

        a0, w0 = init_from_delta(0.0, jnp.array([3.0, 4.0]))   # a0 = sqrt(5), ||w0|| = sqrt(5)
        jax.vmap(init_from_delta, (0, None))(jnp.array([-4.0, 0.0, 4.0]), jnp.array([3.0, 4.0]))
    """
    delta = _real("delta", delta)
    beta0 = _vector("beta0", beta0)
    _check_nonzero("beta0", beta0)
    eta_a = _real("eta_a", eta_a, positive=True)
    eta_w = _real("eta_w", eta_w, positive=True)
    b2 = jnp.sum(beta0**2, axis=-1)
    lam_p, _, _ = _roots(delta, eta_a * eta_w * b2)    # = eta_w a0^2
    a0 = jnp.sqrt(lam_p / eta_w)
    return a0, beta0 / a0[..., None]


def trajectory(t: jax.Array, a0: jax.Array, w0: jax.Array, beta_star: jax.Array, *,
               eta_a: float = 1.0, eta_w: float = 1.0) -> Trajectory:
    """The exact gradient-flow state ``a(t), w(t), beta(t) = a(t) w(t)`` from ``(a0, w0)``.

    Closed form for all of it (module docstring): with ``x~ = exp(M t) (a0, w0^T beta_*)``,
    ``Q = 1 + 2 eta_w int_0^t a~^2``::

        a(t) = a~(t) / sqrt(Q),   w^T beta_* = p~(t) / sqrt(Q),   w_perp(t) = w_perp(0) / sqrt(Q)

    Any ``delta`` (including 0), either sign of ``a0``, ``a0 = 0``, and ``a`` crossing zero.

    Args:
      t: ``[...]`` times ``>= 0``.
      a0: scalar (or ``[...]``) initial output weight.
      w0: ``[d]`` (or ``[..., d]``) initial input weights.
      beta_star: ``[d]`` the target, nonzero.
      eta_a, eta_w: layer learning rates (> 0).
    Returns:
      :class:`Trajectory` with ``a [...]``, ``w [..., d]``, ``beta [..., d]`` (leading axes broadcast
      from ``t``, ``a0`` and ``w0``).

    Example::

        t = jnp.linspace(0.0, 10.0, 101)
        traj = trajectory(t, 0.1, jnp.array([0.1, 0.0]), jnp.array([0.0, 1.0]))   # rich, small init
        traj.beta[-1]   # [9e-5, 1.0]: beta_* learned
    """
    t = _real("t", t, nonneg=True)
    a0 = jnp.asarray(_real("a0", a0))
    w0 = _vector("w0", w0)
    beta_star = _vector("beta_star", beta_star)
    _check_same_d("w0", w0, "beta_star", beta_star)
    _check_nonzero("beta_star", beta_star)
    eta_a = _real("eta_a", eta_a, positive=True)
    eta_w = _real("eta_w", eta_w, positive=True)

    s2 = jnp.sum(beta_star**2, axis=-1)
    p0 = jnp.sum(w0 * beta_star, axis=-1)
    w_perp0 = w0 - (p0 / s2)[..., None] * beta_star
    delta = eta_w * a0**2 - eta_a * jnp.sum(w0**2, axis=-1)

    lam_p, lam_m, d = _roots(delta, eta_a * eta_w * s2)
    c_p = (lam_p * a0 + eta_a * p0) / d
    c_m = -(lam_m * a0 + eta_a * p0) / d
    e = jnp.exp(-d * t)
    e_p = jnp.exp(-2.0 * lam_p * t)
    # e^{-D t} phi(-delta, t) = e^{-2 lambda_+ t} phi(delta, t): take the bounded form for either sign
    cross = jnp.where(delta >= 0, e, e_p) * _phi(-jnp.abs(delta), t)
    integral = (c_p**2 * _phi(-2.0 * lam_p, t) + 2.0 * c_p * c_m * cross
                + c_m**2 * e_p * _phi(2.0 * lam_m, t))        # e^{-2 lambda_+ t} int_0^t a~^2
    inv_sqrt_q = jax.lax.rsqrt(e_p + 2.0 * eta_w * integral)
    a = (c_p + c_m * e) * inv_sqrt_q
    p = -(lam_m * c_p + lam_p * c_m * e) * inv_sqrt_q / eta_a
    w = (p / s2)[..., None] * beta_star + w_perp0 * (jnp.exp(-lam_p * t) * inv_sqrt_q)[..., None]
    return Trajectory(a=a, w=w, beta=a[..., None] * w)


def ntk(a: jax.Array, w: jax.Array, *, eta_a: float = 1.0, eta_w: float = 1.0) -> jax.Array:
    """The NTK of ``f(x) = a w^T x`` as a matrix on whitened inputs: ``K = eta_w a^2 I_d + eta_a w w^T``.

    ``K(x, x') = x^T K x' = eta_a (w^T x)(w^T x') + eta_w a^2 x^T x'`` (gradients ``(w^T x, a x)``
    weighted by the learning rates).

    Args:
      a: ``[...]``; w: ``[..., d]``; eta_a, eta_w: learning rates (> 0).
    Returns:
      ``[..., d, d]``.

    Example::

        ntk(1.0, jnp.array([1.0, 0.0]))   # [[2, 0], [0, 1]]
    """
    a = jnp.asarray(_real("a", a))
    w = _vector("w", w)
    eta_a = _real("eta_a", eta_a, positive=True)
    eta_w = _real("eta_w", eta_w, positive=True)
    eye = jnp.eye(w.shape[-1], dtype=w.dtype)
    return (eta_w * a**2)[..., None, None] * eye + eta_a * w[..., :, None] * w[..., None, :]


def kernel_distance(a0: jax.Array, w0: jax.Array, a: jax.Array, w: jax.Array, *,
                    eta_a: float = 1.0, eta_w: float = 1.0) -> jax.Array:
    """``S = 1 - <K_0, K>_F / (||K_0||_F ||K||_F)`` between the NTKs at ``(a0, w0)`` and ``(a, w)``.

    With ``K = alpha I + eta_a w w^T``, ``alpha = eta_w a^2`` (see :func:`ntk`), computed without
    forming ``d x d`` matrices::

        <K_0, K>_F = d alpha_0 alpha + eta_a (alpha_0 ||w||^2 + alpha ||w_0||^2) + eta_a^2 (w_0^T w)^2

    ``0`` when the kernel only rescales (lazy), up to ``1``; clipped to ``[0, 1]`` against rounding.

    Args:
      a0, w0: ``[...]``, ``[..., d]`` the reference state (usually ``t = 0``).
      a, w: ``[...]``, ``[..., d]`` the state at time ``t`` (e.g. from :func:`trajectory`).
      eta_a, eta_w: learning rates (> 0).
    Returns:
      ``[...]`` kernel distance.

    Example::

        kernel_distance(1.0, jnp.array([1.0, 0.0]), 0.0, jnp.array([0.0, 1.0]))   # 1 - 1/sqrt(5)
        traj = trajectory(t, a0, w0, beta_star); kernel_distance(a0, w0, traj.a, traj.w)
    """
    a0 = jnp.asarray(_real("a0", a0))
    a = jnp.asarray(_real("a", a))
    w0 = _vector("w0", w0)
    w = _vector("w", w)
    _check_same_d("w", w, "w0", w0)
    eta_a = _real("eta_a", eta_a, positive=True)
    eta_w = _real("eta_w", eta_w, positive=True)
    d = w.shape[-1]
    al0, al = eta_w * a0**2, eta_w * a**2
    n0, n = jnp.sum(w0**2, axis=-1), jnp.sum(w**2, axis=-1)
    inner = d * al0 * al + eta_a * (al0 * n + al * n0) + eta_a**2 * jnp.sum(w0 * w, axis=-1) ** 2
    sq0 = d * al0**2 + 2.0 * eta_a * al0 * n0 + eta_a**2 * n0**2
    sq = d * al**2 + 2.0 * eta_a * al * n + eta_a**2 * n**2
    return jnp.clip(1.0 - inner / jnp.sqrt(sq0 * sq), 0.0, 1.0)

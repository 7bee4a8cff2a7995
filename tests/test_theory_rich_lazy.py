"""Exact lazy/rich dynamics of f(x) = a w^T x (Kunin et al., NeurIPS 2024): the closed forms of
jaxsparse.theory.rich_lazy against gradient descent, scipy's solve_ivp and hand-worked cases."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from jaxsparse.theory import rich_lazy as rl

DELTAS = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
ETAS = ((1.0, 1.0), (0.5, 2.0))          # (eta_a, eta_w); the second pair is unequal on purpose
T_GRID = np.linspace(0.0, 20.0, 161)


def _flow(_, y, beta_star, eta_a, eta_w):
    a, w = y[0], y[1:]
    r = a * w - beta_star
    return np.concatenate([[-eta_a * (w @ r)], -eta_w * a * r])


def _scipy_flow(a0, w0, beta_star, eta_a, eta_w, t=T_GRID):
    sol = solve_ivp(_flow, (0.0, float(t[-1])), np.concatenate([[a0], w0]), t_eval=t, method="DOP853",
                    rtol=1e-10, atol=1e-12, args=(beta_star, eta_a, eta_w))
    assert sol.success
    return sol.y[0], sol.y[1:].T


def _roots_np(delta, s_bar):
    d = np.sqrt(delta**2 + 4 * s_bar**2)
    return (-delta + d) / 2, (-delta - d) / 2, d      # nu_bar_+, nu_bar_-, D


def _init_with_nu(delta, nu_bar0, beta_star, eta_a, eta_w, rng, sign=1.0):
    """(a0, w0) with conserved quantity delta and eta_a w0^T beta_* / a0 = nu_bar0, or None if impossible.

    ||w0||^2 = (eta_w a0^2 - delta) / eta_a must exceed (w0^T beta_*)^2 / s^2 = a0^2 nu0^2 / s^2, i.e.
    a0^2 c >= delta with c = eta_w - eta_a nu0^2 / s^2 (nu0 = nu_bar0 / eta_a)."""
    s2 = beta_star @ beta_star
    nu0 = nu_bar0 / eta_a
    c = eta_w - eta_a * nu0**2 / s2
    if c > 0:
        a2 = 1.5 * delta / c if delta > 0 else 1.0
    elif delta < 0:
        a2 = 0.5 * delta / c
    else:
        return None
    a0 = sign * np.sqrt(a2)
    perp = rng.normal(size=beta_star.shape)
    perp -= (perp @ beta_star) / s2 * beta_star
    perp_norm2 = (eta_w * a2 - delta) / eta_a - a2 * nu0**2 / s2
    w0 = a0 * nu0 / s2 * beta_star + np.sqrt(max(perp_norm2, 0.0)) * perp / np.linalg.norm(perp)
    return a0, w0


def _cases(delta, rng):
    """Initial conditions on every branch that exists at this delta: |u0| < 1, u0 > 1 and (delta < 0) u0 < -1."""
    cases = []
    for eta_a, eta_w in ETAS:
        for _ in range(2):
            beta_star = rng.normal(size=3)
            s_bar = np.sqrt(eta_a * eta_w * (beta_star @ beta_star))
            nu_p, nu_m, _ = _roots_np(delta, s_bar)
            # |u0| < 1 means nu_m < nu_bar0 < nu_p; for delta > 0 also |nu_bar0| < s_bar (else a0 is infeasible)
            targets = {"real": (nu_p - s_bar) / 2 if delta > 0 else nu_m + 0.3 * (nu_p - nu_m)}
            targets["above"] = (nu_p + s_bar) / 2 if delta > 0 else nu_p + 0.7      # coth branch, u0 > 1
            if delta < 0:
                targets["below"] = nu_m - 0.7                                       # coth branch, a crosses 0
            for i, (branch, nu_bar0) in enumerate(targets.items()):
                init = _init_with_nu(delta, nu_bar0, beta_star, eta_a, eta_w, rng, sign=(-1.0) ** i)
                if init is not None:
                    cases.append((branch, *init, beta_star, eta_a, eta_w))
    return cases


# ---------------------------------------------------------------------------------------------
# conserved quantity


def test_conserved_by_hand():
    np.testing.assert_allclose(rl.conserved(2.0, jnp.array([1.0, 1.0])), 2.0)            # 4 - 2
    np.testing.assert_allclose(rl.conserved(2.0, jnp.array([1.0, 1.0]), eta_a=3.0), -2.0)  # 4 - 6
    np.testing.assert_allclose(rl.conserved(2.0, jnp.array([1.0, 1.0]), eta_w=0.5), 0.0)   # 2 - 2
    a0, w0 = rl.init_from_delta(0.0, jnp.array([3.0, 4.0]))
    np.testing.assert_allclose(a0, np.sqrt(5.0), rtol=1e-6)
    np.testing.assert_allclose(a0 * w0, [3.0, 4.0], rtol=1e-6)
    # the paper's sign: delta > 0 is upstream (|a| > ||w||)
    a0, w0 = rl.init_from_delta(3.0, jnp.array([0.0, 2.0]))
    assert a0 > jnp.linalg.norm(w0)


def test_delta_conserved_along_gradient_descent():
    """Small-step GD (h = 1e-6, 1e6 steps): delta drifts by O(h) (measured 6.0e-7 and 7.3e-8 relative)
    and the GD state is the closed-form trajectory at t = 1 (measured 1.9e-7, 9.6e-8)."""
    with jax.enable_x64(True):
        beta_star = jnp.array([1.0, -0.5, 0.3])
        h, n = 1e-6, 1_000_000
        for (eta_a, eta_w), delta in zip(ETAS, (1.5, -2.0)):
            a0, w0 = rl.init_from_delta(delta, jnp.array([0.3, 0.6, -0.2]), eta_a=eta_a, eta_w=eta_w)

            def step(carry, _, eta_a=eta_a, eta_w=eta_w):
                a, w = carry
                r = a * w - beta_star
                return (a - h * eta_a * (w @ r), w - h * eta_w * a * r), None

            (a, w), _ = jax.jit(lambda c, step=step: jax.lax.scan(step, c, None, length=n))((a0, w0))
            d0 = float(rl.conserved(a0, w0, eta_a=eta_a, eta_w=eta_w))
            np.testing.assert_allclose(d0, delta, rtol=1e-12)
            drift = abs(float(rl.conserved(a, w, eta_a=eta_a, eta_w=eta_w)) - d0) / abs(d0)
            traj = rl.trajectory(h * n, a0, w0, beta_star, eta_a=eta_a, eta_w=eta_w)
            gap = max(abs(float(traj.a - a)), float(jnp.max(jnp.abs(traj.w - w))))
            print(f"eta=({eta_a}, {eta_w}) delta={delta}: GD drift {drift:.1e}, GD vs closed form {gap:.1e}")
            assert drift < 1e-6
            assert gap < 1e-6


# ---------------------------------------------------------------------------------------------
# nu and the trajectories against scipy


def test_nu_ode_from_the_flow(rng):
    """d/dt (eta_a w^T beta_* / a) along the (a, w) vector field is s_bar^2 - delta nu - nu^2."""
    for eta_a, eta_w in ETAS:
        for _ in range(5):
            a, w, beta_star = rng.normal(), rng.normal(size=4), rng.normal(size=4)
            v = _flow(0.0, np.concatenate([[a], w]), beta_star, eta_a, eta_w)
            da, dw = v[0], v[1:]
            nu_bar = eta_a * (w @ beta_star) / a
            dnu = eta_a * ((dw @ beta_star) / a - (w @ beta_star) * da / a**2)
            delta = eta_w * a**2 - eta_a * w @ w
            np.testing.assert_allclose(dnu, eta_a * eta_w * beta_star @ beta_star - delta * nu_bar - nu_bar**2,
                                       rtol=1e-10)


@pytest.mark.parametrize("delta", DELTAS)
def test_trajectory_and_nu_match_scipy(delta):
    """Every branch present at this delta, two targets in R^3, eta_a = eta_w and eta_a != eta_w, t in
    [0, 20]. Measured max errors over all deltas: a, w, beta 3.5e-8; nu 1.0e-8 (relative where |nu| > 1)."""
    rng = np.random.default_rng(int(delta) + 10)
    cases = _cases(delta, rng)
    branches = {c[0] for c in cases}
    assert branches == ({"real"} if delta == 0 else {"real", "above"} | ({"below"} if delta < 0 else set()))
    worst_traj = worst_nu = 0.0
    with jax.enable_x64(True):
        for branch, a0, w0, beta_star, eta_a, eta_w in cases:
            np.testing.assert_allclose(eta_w * a0**2 - eta_a * w0 @ w0, delta, atol=1e-12)
            a_ref, w_ref = _scipy_flow(a0, w0, beta_star, eta_a, eta_w)
            traj = rl.trajectory(jnp.asarray(T_GRID), a0, jnp.asarray(w0), jnp.asarray(beta_star),
                                 eta_a=eta_a, eta_w=eta_w)
            err = max(np.max(np.abs(traj.a - a_ref)), np.max(np.abs(traj.w - w_ref)),
                      np.max(np.abs(traj.beta - a_ref[:, None] * w_ref)))
            # the branch is what it claims to be
            s_bar = np.sqrt(eta_a * eta_w * beta_star @ beta_star)
            u0 = (delta + 2 * eta_a * (w0 @ beta_star) / a0) / np.sqrt(delta**2 + 4 * s_bar**2)
            assert {"real": abs(u0) < 1, "above": u0 > 1, "below": u0 < -1}[branch]
            if branch == "below":
                assert np.any(np.sign(a_ref) != np.sign(a0))      # a crosses zero within [0, 20]
            # nu_bar = eta_a w^T beta_* / a = nu(t, delta, s_bar, nu_bar0)
            nu_ref = eta_a * (w_ref @ beta_star) / a_ref
            nu_t = np.asarray(rl.nu(jnp.asarray(T_GRID), delta, s_bar, eta_a * (w0 @ beta_star) / a0))
            err_nu = np.max(np.abs(nu_t - nu_ref) / np.maximum(1.0, np.abs(nu_ref)))
            # and the closed-form trajectory conserves delta exactly
            np.testing.assert_allclose(rl.conserved(traj.a, traj.w, eta_a=eta_a, eta_w=eta_w), delta, atol=1e-10)
            worst_traj, worst_nu = max(worst_traj, err), max(worst_nu, err_nu)
    print(f"delta={delta}: {len(cases)} cases, branches {sorted(branches)}: "
          f"max |traj - scipy| {worst_traj:.1e}, max nu error {worst_nu:.1e}")
    assert worst_traj < 1e-6
    assert worst_nu < 1e-6


def test_nu_is_the_papers_tanh_and_coth_forms():
    """nu against the paper's formula with numpy (real artanh) and its coth continuation."""
    with jax.enable_x64(True):
        t = np.linspace(0.0, 5.0, 11)
        for delta, s, nu0 in [(0.0, 1.0, 0.3), (-2.0, 1.5, 0.2), (3.0, 0.5, -0.4),    # |u0| < 1
                              (1.0, 1.0, 2.0), (-3.0, 1.0, 4.0),                        # u0 > 1
                              (-3.0, 1.0, -3.5)]:                                      # u0 < -1
            d = np.sqrt(delta**2 + 4 * s**2)
            u0 = (delta + 2 * nu0) / d
            if abs(u0) < 1:
                ref = 0.5 * (-delta + d * np.tanh(d * t / 2 + np.arctanh(u0)))
            else:
                arcoth = 0.5 * np.log((u0 + 1) / (u0 - 1))
                ref = 0.5 * (-delta + d / np.tanh(d * t / 2 + arcoth))
                # the complex branch of the paper's formula, taken literally, has the same real part
                lit = 0.5 * (-delta + d * np.tanh(d * t / 2 + np.arctanh(u0 + 0j)))
                np.testing.assert_allclose(lit.real, ref, rtol=1e-10)
                np.testing.assert_allclose(lit.imag, 0.0, atol=1e-10)
            np.testing.assert_allclose(rl.nu(jnp.asarray(t), delta, s, nu0), ref, rtol=1e-10, atol=1e-12)
        # delta = 0: nu = s tanh(s t + artanh(nu0 / s)); fixed points stay put; t -> infinity gives nu_+
        np.testing.assert_allclose(rl.nu(jnp.asarray(t), 0.0, 2.0, 1.0), 2 * np.tanh(2 * t + np.arctanh(0.5)),
                                   rtol=1e-12)
        nu_p, nu_m, d = _roots_np(-1.0, 1.0)
        np.testing.assert_allclose(rl.nu(jnp.asarray(t), -1.0, 1.0, nu_p), nu_p, rtol=1e-12)
        np.testing.assert_allclose(rl.nu(jnp.asarray(t), -1.0, 1.0, nu_m), nu_m, rtol=1e-9)  # unstable: e^{Dt} eps
        np.testing.assert_allclose(rl.nu(1e4, -1.0, 1.0, 5.0), nu_p, rtol=1e-12)
        # below nu_-: the blow-up time t* = log((nu0 - nu_+) / (nu0 - nu_-)) / D is where a(t*) = 0
        nu0 = nu_m - 1.0
        t_star = np.log((nu0 - nu_p) / (nu0 - nu_m)) / d
        assert rl.nu(t_star - 1e-6, -1.0, 1.0, nu0) < -1e5 and rl.nu(t_star + 1e-6, -1.0, 1.0, nu0) > 1e5
        a0 = 0.5
        beta_star = np.array([1.0, 0.0])
        w0 = np.array([a0 * nu0, np.sqrt(a0**2 + 1.0 - (a0 * nu0) ** 2)])      # a0^2 - ||w0||^2 = -1
        traj = rl.trajectory(jnp.array([0.0, t_star]), a0, jnp.asarray(w0), jnp.asarray(beta_star))
        np.testing.assert_allclose(traj.a, [a0, 0.0], atol=1e-12)


def test_trajectory_special_cases():
    with jax.enable_x64(True):
        beta_star = jnp.array([0.0, 2.0, 0.0])
        # a0 = 0 (nu undefined) is fine for the trajectory; a0 = 0 and w0 _|_ beta_* is a fixed point
        t = jnp.linspace(0.0, 3.0, 7)
        a_ref, w_ref = _scipy_flow(0.0, np.array([0.1, 0.5, 0.0]), np.asarray(beta_star), 1.0, 1.0, np.asarray(t))
        traj = rl.trajectory(t, 0.0, jnp.array([0.1, 0.5, 0.0]), beta_star)
        np.testing.assert_allclose(traj.a, a_ref, atol=1e-8)
        np.testing.assert_allclose(traj.w, w_ref, atol=1e-8)
        fixed = rl.trajectory(t, 0.0, jnp.array([0.3, 0.0, 0.4]), beta_star)
        np.testing.assert_allclose(fixed.w, np.broadcast_to([0.3, 0.0, 0.4], (7, 3)), atol=1e-15)
        np.testing.assert_allclose(fixed.a, 0.0, atol=1e-15)
        # (a, w) -> (-a, -w) is a symmetry; long times converge to beta_* without overflow
        p = rl.trajectory(t, 0.7, jnp.array([0.2, -0.1, 0.3]), beta_star)
        m = rl.trajectory(t, -0.7, jnp.array([-0.2, 0.1, -0.3]), beta_star)
        np.testing.assert_allclose(p.beta, m.beta, atol=1e-14)
        for delta in (-50.0, 0.0, 50.0):
            a0, w0 = rl.init_from_delta(delta, jnp.array([0.5, 0.1, 0.0]))
            far = rl.trajectory(jnp.array(1e4), a0, w0, beta_star)
            np.testing.assert_allclose(far.beta, beta_star, atol=1e-8)


def test_float32():
    """Default float32: finite at long times, dtype kept, close to the float64 result."""
    beta_star = jnp.array([0.3, -1.0, 0.5])
    t = jnp.asarray(10 * T_GRID, jnp.float32)                    # t in [0, 200]
    def run(delta, t, beta0, beta_star):
        a0, w0 = rl.init_from_delta(delta, beta0)
        return rl.trajectory(t, a0, w0, beta_star).beta

    deltas = jnp.array([-30.0, 0.0, 30.0])
    beta = jax.jit(jax.vmap(run, (0, None, None, None)))(deltas, t, jnp.array([0.1, 0.2, -0.3]), beta_star)
    assert beta.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(beta)))
    with jax.enable_x64(True):
        ref = jax.jit(jax.vmap(run, (0, None, None, None)))(
            jnp.asarray(deltas, jnp.float64), jnp.asarray(10 * T_GRID), jnp.array([0.1, 0.2, -0.3], jnp.float64),
            jnp.asarray(beta_star, jnp.float64))
    np.testing.assert_allclose(beta, ref, atol=2e-4)
    assert rl.nu(jnp.float32(1.0), 0.0, 1.0, 0.0).dtype == jnp.float32


# ---------------------------------------------------------------------------------------------
# kernel distance


def test_kernel_distance_by_hand():
    # K_0 = diag(2, 1) (a = 1, w = e1), K = diag(0, 1) (a = 0, w = e2): cos = 1 / sqrt(5)
    np.testing.assert_allclose(rl.ntk(1.0, jnp.array([1.0, 0.0])), [[2.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(rl.kernel_distance(1.0, jnp.array([1.0, 0.0]), 0.0, jnp.array([0.0, 1.0])),
                               1 - 1 / np.sqrt(5), rtol=1e-6)
    # learning rates weight the two parts: eta_w = 2 -> K_0 = diag(3, 2), eta_a = 3 on K = diag(0, 3)
    np.testing.assert_allclose(rl.ntk(1.0, jnp.array([1.0, 0.0]), eta_a=1.0, eta_w=2.0), [[3.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(
        rl.kernel_distance(1.0, jnp.array([1.0, 0.0]), 0.0, jnp.array([0.0, 1.0]), eta_w=2.0),
        1 - 2 / np.sqrt(13), rtol=1e-6)
    # d = 1: the kernel is a positive scalar, it can only rescale
    assert float(rl.kernel_distance(0.3, jnp.array([2.0]), -1.5, jnp.array([0.1]))) == 0.0
    # the same state, or a rescaled kernel: 0
    np.testing.assert_allclose(rl.kernel_distance(0.5, jnp.array([1.0, 2.0]), 1.0, jnp.array([2.0, 4.0])), 0.0,
                               atol=1e-7)


def test_kernel_distance_is_the_data_ntk_cosine(rng):
    """Against the empirical NTK of f on a whitened data matrix (X^T X = n I), via jax.jacobian."""
    with jax.enable_x64(True):
        n, d = 7, 3
        x = np.linalg.qr(rng.normal(size=(n, d)))[0] * np.sqrt(n)      # whitened: X^T X = n I
        x = jnp.asarray(x)

        def data_ntk(a, w, eta_a, eta_w):
            ja, jw = jax.jacobian(lambda a, w: a * (x @ w), argnums=(0, 1))(a, w)
            return eta_a * jnp.outer(ja, ja) + eta_w * jw @ jw.T

        @jax.jit
        def compare(a0, w0, a1, w1, eta_a, eta_w):
            k0, k1 = data_ntk(a0, w0, eta_a, eta_w), data_ntk(a1, w1, eta_a, eta_w)
            ref = 1 - jnp.sum(k0 * k1) / (jnp.linalg.norm(k0) * jnp.linalg.norm(k1))
            got = rl.kernel_distance(a0, w0, a1, w1, eta_a=eta_a, eta_w=eta_w)
            m0, m1 = rl.ntk(a0, w0, eta_a=eta_a, eta_w=eta_w), rl.ntk(a1, w1, eta_a=eta_a, eta_w=eta_w)
            via_matrices = 1 - jnp.sum(m0 * m1) / (jnp.linalg.norm(m0) * jnp.linalg.norm(m1))
            return got, ref, via_matrices, x @ m0 @ x.T, k0

        for eta_a, eta_w in ETAS:
            for _ in range(3):
                a0, a1 = rng.normal(size=2)
                w0, w1 = rng.normal(size=(2, d))
                got, ref, via_matrices, xmx, k0 = compare(a0, w0, a1, w1, eta_a, eta_w)
                np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
                np.testing.assert_allclose(got, via_matrices, rtol=1e-10, atol=1e-14)   # the d x d matrix form
                np.testing.assert_allclose(xmx, k0, rtol=1e-10, atol=1e-12)              # X K X^T = data NTK


def test_kernel_distance_range_and_zero_at_start(rng):
    with jax.enable_x64(True):
        beta_star = jnp.asarray(rng.normal(size=4))
        t = jnp.asarray(T_GRID)
        for delta in DELTAS:
            a0, w0 = rl.init_from_delta(delta, jnp.asarray(rng.normal(size=4)))
            traj = rl.trajectory(t, a0, w0, beta_star)
            s = np.asarray(rl.kernel_distance(a0, w0, traj.a, traj.w))
            assert abs(s[0]) < 1e-12
            assert np.all((s >= 0) & (s <= 1))


def test_kernel_distance_lazy_and_rich_limits():
    """beta_0 = 0.5 e1 _|_ beta_* = e2 (d = 3), the paper's fixed-function initialisations.

    Measured max_t S on t in [0, 20]: delta = 100: 1.5e-9, 10: 1.4e-5, 4: 4.5e-4, 1: 0.021, 0: 0.167,
    delta = -100: 4.4e-9. Balanced reaches the ceiling 1 / (d + 3) of the balanced manifold
    (K ~ I + w w^T / ||w||^2 turned from e1 to e2) by t ~ 4, when the loss is learned. Downstream
    (delta = -10) is lazy first (S(20) = 1e-3) and rich late (S(200) = 0.99)."""
    with jax.enable_x64(True):
        beta_star, beta0 = jnp.array([0.0, 1.0, 0.0]), jnp.array([0.5, 0.0, 0.0])
        t = jnp.asarray(T_GRID)

        def s_curve(delta, t=t):
            a0, w0 = rl.init_from_delta(delta, beta0)
            traj = rl.trajectory(t, a0, w0, beta_star)
            return np.asarray(rl.kernel_distance(a0, w0, traj.a, traj.w))

        s_max = {delta: s_curve(delta).max() for delta in (-100.0, 0.0, 1.0, 4.0, 10.0, 100.0)}
        print({k: f"{v:.1e}" for k, v in s_max.items()})
        assert s_max[100.0] < 1e-6 and s_max[-100.0] < 1e-3                        # large |delta|: lazy
        assert s_max[0.0] > 100 * max(s_max[100.0], s_max[-100.0])                   # balanced: rich
        assert s_max[0.0] > s_max[1.0] > s_max[4.0] > s_max[10.0] > s_max[100.0]    # upstream: ever lazier
        balanced = s_curve(0.0)
        np.testing.assert_allclose(balanced[-1], 1 / (3 + 3), rtol=1e-6)
        assert balanced[t <= 5.0][-1] > 0.95 / 6                                      # rapid
        down = s_curve(-10.0, t=jnp.array([5.0, 20.0, 200.0]))
        assert down[0] < 1e-2 and down[1] < 1e-2 and down[2] > 0.9                    # lazy, then rich


# ---------------------------------------------------------------------------------------------
# transformations and errors


def test_jit_and_vmap():
    t = jnp.asarray(T_GRID / 2, jnp.float32)     # [161] in [0, 10], the shape test_float32 uses (shared compiles)
    deltas = jnp.array([-4.0, -1.0, 0.0, 1.0, 4.0])
    beta_star, beta0 = jnp.array([1.0, 0.5, -0.2]), jnp.array([-0.3, 0.2, 0.4])
    # nu: vmap over delta and t, jit, broadcasting all agree
    grid = jax.jit(jax.vmap(jax.vmap(rl.nu, (0, None, None, None)), (None, 0, None, None)))(t, deltas, 1.2, 0.3)
    np.testing.assert_allclose(jax.jit(rl.nu)(t[None, :], deltas[:, None], 1.2, 0.3), grid, rtol=1e-6)
    np.testing.assert_allclose(grid[2], 1.2 * np.tanh(1.2 * np.asarray(t) + np.arctanh(0.25)), rtol=1e-5)

    # trajectory + kernel distance: one pure function of (eta, delta, t), vmapped over all three and jitted
    def s_at(delta, t, eta=1.0):
        a0, w0 = rl.init_from_delta(delta, beta0, eta_a=eta, eta_w=1.0 / eta)
        traj = rl.trajectory(t, a0, w0, beta_star, eta_a=eta, eta_w=1.0 / eta)
        return rl.kernel_distance(a0, w0, traj.a, traj.w, eta_a=eta, eta_w=1.0 / eta), traj.beta

    etas = jnp.array([0.5, 1.0, 2.0])
    s_grid, b_grid = jax.jit(jax.vmap(jax.vmap(jax.vmap(s_at, (None, 0, None)), (0, None, None)),
                                      (None, None, 0)))(deltas, t, etas)
    assert s_grid.shape == (3, 5, 161) and b_grid.shape == (3, 5, 161, 3)
    assert bool(jnp.all(jnp.isfinite(s_grid)))
    single = jax.jit(s_at)                                   # t as a batch axis, one delta at a time
    for i, delta in enumerate(deltas):
        s_row, b_row = single(delta, t)
        np.testing.assert_allclose(s_grid[1, i], s_row, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b_grid[1, i], b_row, rtol=1e-5, atol=1e-6)
    # delta is differentiable, with a finite gradient at delta = 0
    g = jax.jit(jax.grad(lambda d: s_at(d, 3.0)[0]))(0.0)
    assert bool(jnp.isfinite(g))


@pytest.mark.parametrize("call, exc, name", [
    (lambda: rl.nu(-1.0, 0.0, 1.0, 0.0), ValueError, "t"),
    (lambda: rl.nu(1.0, float("nan"), 1.0, 0.0), ValueError, "delta"),
    (lambda: rl.nu(1.0, 0.0, 0.0, 0.0), ValueError, "s"),
    (lambda: rl.nu(1.0, 0.0, 1.0, float("inf")), ValueError, "nu0"),
    (lambda: rl.nu(1.0, 1j, 1.0, 0.0), TypeError, "delta"),
    (lambda: rl.nu(True, 0.0, 1.0, 0.0), TypeError, "t"),
    (lambda: rl.nu("1", 0.0, 1.0, 0.0), TypeError, "t"),
    (lambda: rl.conserved(1.0, jnp.ones(3), eta_a=0.0), ValueError, "eta_a"),
    (lambda: rl.conserved(1.0, jnp.ones(3), eta_w=-1.0), ValueError, "eta_w"),
    (lambda: rl.conserved(1.0, 2.0), TypeError, "w"),
    (lambda: rl.conserved(1.0, jnp.array(2.0)), ValueError, "w"),
    (lambda: rl.conserved(1.0, jnp.ones(3, jnp.int32)), TypeError, "w"),
    (lambda: rl.init_from_delta(0.0, jnp.zeros(3)), ValueError, "beta0"),
    (lambda: rl.trajectory(1.0, 1.0, jnp.ones(3), jnp.ones(2)), ValueError, "w0"),
    (lambda: rl.trajectory(1.0, 1.0, jnp.ones(3), jnp.zeros(3)), ValueError, "beta_star"),
    (lambda: rl.trajectory(-0.5, 1.0, jnp.ones(3), jnp.ones(3)), ValueError, "t"),
    (lambda: rl.trajectory(1.0, jnp.nan, jnp.ones(3), jnp.ones(3)), ValueError, "a0"),
    (lambda: rl.trajectory(1.0, 1.0, jnp.ones(3), jnp.ones(3), eta_w=0.0), ValueError, "eta_w"),
    (lambda: rl.kernel_distance(1.0, jnp.ones(3), 1.0, jnp.ones(2)), ValueError, "w"),
    (lambda: rl.kernel_distance(None, jnp.ones(3), 1.0, jnp.ones(3)), TypeError, "a0"),
])
def test_bad_arguments(call, exc, name):
    with pytest.raises(exc, match=f"`{name}`"):
        call()


def test_static_checks_only_under_jit():
    """Under jit the value checks are skipped (tracers), the shape checks still apply."""
    out = jax.jit(lambda t: rl.nu(t, 0.0, 1.0, 0.0))(-1.0)        # no error: values unknown at trace time
    assert out.shape == ()
    with pytest.raises(ValueError, match="`w0`"):
        jax.jit(lambda w0: rl.trajectory(1.0, 1.0, w0, jnp.ones(2)))(jnp.ones(3))

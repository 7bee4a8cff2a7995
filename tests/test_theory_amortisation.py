"""Numerical checks of the amortisation-gap theorem (paper 1, Theorem 1) and its quantitative bound."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import solvers
from jaxsparse.data import random_dictionary, sparse_coding_data
from jaxsparse.models.fit import fit_relu_encoder, init_relu_encoder, relu_encoder
from jaxsparse.theory import amortisation as am


def _relu_of_least_squares_error(x, z):
    """ReLU of the least-squares affine map x -> z (numpy): a candidate the best encoder must match."""
    x1 = np.concatenate([np.asarray(x, np.float64), np.ones((x.shape[0], 1))], axis=1)
    z = np.asarray(z, np.float64)
    coef = np.linalg.lstsq(x1, z, rcond=None)[0]
    return np.sum((np.maximum(x1 @ coef, 0.0) - z) ** 2) / np.sum(z**2)


def test_best_relu_encoder_has_a_gap_that_solvers_close():
    """Paper-1 data (noiseless, N=16, M=8, K=3, known D). Measured: the fit goes 1.38 -> 0.341
    (ReLU of the least-squares affine map: 0.363), exact Lasso 0.0096 (a few codes are not
    l1-identifiable at M=8). OMP (k=3) is not exact on this coherent dictionary (0.237), so only
    the Lasso is held to near zero."""
    x, z, d = sparse_coding_data(jax.random.key(0), 2048)
    key = jax.random.key(1)
    start = float(am.relative_code_error(z, relu_encoder(init_relu_encoder(key, 8, 16), x)))
    _, err = fit_relu_encoder(key, x, z, n_steps=3000)
    err = float(err)
    exact = float(am.relative_code_error(z, solvers.homotopy(d, x, lam=1e-4, nonneg=True)))
    print(f"relu encoder: start {start:.3f} -> fit {err:.3f}; exact Lasso {exact:.4f}")
    assert err < 0.5 * start                             # the fit improved on its starting point
    assert err <= _relu_of_least_squares_error(x, z)     # and is at least as good as a closed-form candidate
    assert exact < 0.02
    assert err > 15 * exact                              # the gap: the encoder stays far above the solver


def test_relu_encoder_error_above_the_theorem_bound():
    """On the proof's codes T the sup error of any ReLU(xW + b) is >= relu_gap_bound (a proven bound):
    the fitted encoder (measured max error 2.0) stays above it (0.128), exact Lasso recovers T (0.003)."""
    d = random_dictionary(jax.random.key(0), 16, 8)
    t = am.theorem_codes(16, alpha=1.0, beta=2.0, c=1.5)
    x = t @ d
    bound = float(am.relu_gap_bound(d, alpha=1.0, beta=2.0, c=1.5))
    np.testing.assert_allclose(bound, np.sqrt(16 - 8) / (2 * np.sqrt(16 + 16 * 15 / 1.5**2)), rtol=1e-4)
    params, _ = fit_relu_encoder(jax.random.key(1), x, t, n_steps=3000)
    for p in (params, init_relu_encoder(jax.random.key(2), 8, 16)):
        assert float(jnp.max(jnp.abs(relu_encoder(p, x) - t))) >= bound
    lasso = solvers.homotopy(d, x, lam=1e-4, nonneg=True)
    assert float(jnp.max(jnp.abs(lasso - t))) < 0.1 * bound


def test_theorem_codes_by_hand():
    t = np.asarray(am.theorem_codes(3, alpha=1.0, beta=2.0, c=0.5))
    assert t.shape == (2 * 3 + 3 * 2, 3)
    np.testing.assert_array_equal(t[:6], np.concatenate([np.eye(3), 2 * np.eye(3)]))
    np.testing.assert_array_equal(t[6], [1.0, 0.5, 0.0])   # alpha e_0 + c e_1
    assert np.all(np.sum(t[6:] != 0, axis=1) == 2)
    with pytest.raises(ValueError, match="`beta`"):
        am.theorem_codes(3, alpha=2.0, beta=1.0)
    with pytest.raises(ValueError, match="`c`"):
        am.relu_gap_bound(np.eye(3, 2), c=0.0)
    with pytest.raises(ValueError, match="`n_latents`"):
        am.theorem_codes(1)


def test_linear_gap_closed_form_and_linear_encoder_bound(rng):
    d = sparse_coding_data(jax.random.key(0), 4)[2]
    np.testing.assert_allclose(float(am.linear_gap(d)), 16 - 8, rtol=1e-4)
    np.testing.assert_allclose(float(am.relative_code_error(np.eye(3), np.eye(3))), 0.0)
    # Any linear encoder z -> z D W: ||z D W - z||^2 summed >= lambda_min(Z^T Z) * linear_gap(D).
    d = np.asarray(d, np.float64)
    z = np.asarray(sparse_coding_data(jax.random.key(1), 512)[1], np.float64)
    w_best = np.linalg.lstsq(z @ d, z, rcond=None)[0]
    lower = np.linalg.eigvalsh(z.T @ z)[0] * (16 - 8)
    for w in (w_best, w_best + 0.1 * rng.normal(size=w_best.shape)):
        assert np.sum((z @ d @ w - z) ** 2) >= lower * (1 - 1e-9)


def test_fit_relu_encoder_validates():
    x, z = jnp.ones((4, 8)), jnp.ones((4, 16))
    with pytest.raises(ValueError, match="`z`"):
        fit_relu_encoder(jax.random.key(0), x, z[:3])
    with pytest.raises(ValueError, match="`x`"):
        fit_relu_encoder(jax.random.key(0), x[None], z)
    with pytest.raises(ValueError, match="`n_steps`"):
        fit_relu_encoder(jax.random.key(0), x, z, n_steps=0)
    assert am.fit_relu_encoder is fit_relu_encoder  # the old import path still works

"""Numerical check of the amortisation-gap theorem (paper 1, Theorem 1)."""

import jax
import numpy as np

from jaxsparse import solvers
from jaxsparse.data import sparse_coding_data
from jaxsparse.theory import amortisation as am


def test_best_relu_encoder_has_a_gap_that_solvers_close():
    x, z, d = sparse_coding_data(jax.random.key(0), 2048)  # noiseless, N=16, M=8, K=3, known D
    _, err = am.fit_relu_encoder(jax.random.key(1), x, z, n_steps=3000)
    exact = am.relative_code_error(z, solvers.homotopy(d, x, lam=1e-4, nonneg=True))
    assert float(err) > 0.2          # measured 0.34: bounded away from 0
    assert float(exact) < 0.02       # measured 0.0096 (a few codes are not l1-identifiable at M=8)
    assert float(err) > 15 * float(exact)


def test_linear_gap_closed_form():
    d = sparse_coding_data(jax.random.key(0), 4)[2]
    np.testing.assert_allclose(float(am.linear_gap(d)), 16 - 8, rtol=1e-4)
    np.testing.assert_allclose(float(am.relative_code_error(np.eye(3), np.eye(3))), 0.0)

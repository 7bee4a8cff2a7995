"""Sparse coding as a model: exp-codes, the paper's Adam code fit, and the Lasso scaling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import solvers
from jaxsparse.data import sparse_coding_data
from jaxsparse.models import sparse_coding as sc


def test_init_and_projection():
    p = sc.init_sparse_coding(jax.random.key(0), 10, 8, 16)
    assert p["log_codes"].shape == (10, 16) and float(p["log_codes"][0, 0]) == -10.0
    p = sc.project_sparse_coding(dict(p, decoder={"w": 2.0 * p["decoder"]["w"]}))
    np.testing.assert_allclose(jnp.linalg.norm(p["decoder"]["w"], axis=-1), 1.0, rtol=1e-6)
    loss, aux = sc.sparse_coding_loss(p, jnp.zeros((10, 8)), lam=0.01)
    assert loss.shape == () and set(aux) == {"mse", "l1", "l0"}


def test_fit_codes_reaches_the_lasso_solution():
    """Adam on exp-codes minimises the paper's objective; per sample it is the Lasso with lam*M/(2N)."""
    x, z, d = sparse_coding_data(jax.random.key(0), 64)
    s = sc.fit_codes(d, x, lam=0.01, n_steps=3000, lr=3e-2)
    lasso = solvers.homotopy(d, x, lam=sc.lasso_lam(0.01, 16, 8), nonneg=True)
    obj = lambda c: jnp.mean(solvers.lasso_objective(d, x, c, sc.lasso_lam(0.01, 16, 8)))  # noqa: E731
    assert float(obj(s)) <= float(obj(lasso)) * 1.05 + 1e-6  # exp-codes approach 0 only slowly
    assert float(jnp.mean(jnp.abs(s - lasso))) < 0.03  # a few samples end in a different local basin
    assert bool(jnp.all(s >= 0))


def test_fit_codes_validates():
    with pytest.raises(ValueError, match="`x`"):
        sc.fit_codes(jnp.ones((16, 8)), jnp.ones((4, 7)))
    with pytest.raises(ValueError, match="`n_steps`"):
        sc.fit_codes(jnp.ones((16, 8)), jnp.ones((4, 8)), n_steps=0)

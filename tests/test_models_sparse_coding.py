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


@pytest.mark.parametrize("lead", [(), (2,)])
def test_fit_codes_feature_major_path_gives_the_sample_major_codes(monkeypatch, lead):
    """On CPU a narrow dictionary fits transposed codes (``code_loss(..., feature_major=True)``); the
    codes equal those of the sample-major fit up to float rounding, leading axes included."""
    x, _, d = sparse_coding_data(jax.random.key(1), 64)
    x = x.reshape(*lead, -1, x.shape[-1])
    log0 = jnp.full(x.shape[:-1] + (16,), sc.LOG_INIT)
    fit = sc._fit_codes.__wrapped__  # untraced, so that the patched layout choice is read
    codes = {}
    for fm in (False, True):
        monkeypatch.setattr(sc, "prefers_feature_major", lambda p, fm=fm: fm)
        codes[fm] = fit(d, x, jnp.float32(0.01), log0, n_steps=300, lr=3e-2)
    assert codes[True].shape == x.shape[:-1] + (16,)
    np.testing.assert_allclose(codes[True], codes[False], rtol=1e-3, atol=1e-5)


def test_code_loss_on_transposed_arrays():
    x, _, d = sparse_coding_data(jax.random.key(2), 32)
    log_s = jax.random.normal(jax.random.key(3), (32, 16)) - 2.0
    (v, aux), g = jax.value_and_grad(sc.code_loss, has_aux=True)(log_s, d, x, 0.01)
    (v_t, aux_t), g_t = jax.value_and_grad(sc.code_loss, has_aux=True)(log_s.T, d, x.T, 0.01, feature_major=True)
    np.testing.assert_allclose(v_t, v, rtol=1e-6)
    np.testing.assert_allclose(aux_t["l0"], aux["l0"], rtol=1e-6)
    np.testing.assert_allclose(g_t.T, g, rtol=1e-5, atol=1e-8)

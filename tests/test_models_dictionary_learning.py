"""Batch dictionary learning (FISTA codes + block-coordinate atom updates)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse import solvers
from jaxsparse.data import sparse_coding_data
from jaxsparse.eval import dictionary_mcc, flops
from jaxsparse.models import dictionary_learning as dl


def test_recovers_the_true_dictionary():
    x, _, d_true = sparse_coding_data(jax.random.key(0), 1024)
    d, z = dl.learn_dictionary(jax.random.key(1), x, n_latents=16, lam=0.01, n_iter=600)
    assert d.shape == (16, 8) and z.shape == (1024, 16) and bool(jnp.all(z >= 0))
    np.testing.assert_allclose(jnp.linalg.norm(d, axis=-1), 1.0, rtol=1e-5)
    assert dictionary_mcc(d_true, d)["mcc"] > 0.95


def test_block_coordinate_pass_does_not_increase_the_objective():
    x, _, _ = sparse_coding_data(jax.random.key(0), 256)
    d = jax.random.normal(jax.random.key(2), (16, 8))
    d = d / jnp.linalg.norm(d, axis=-1, keepdims=True)
    z = solvers.fista(d, x, lam=0.01, n_iter=50, nonneg=True)
    d_new = dl.update_dictionary(d, z.T @ z, z.T @ x)
    assert float(jnp.sum((x - z @ d_new) ** 2)) <= float(jnp.sum((x - z @ d) ** 2)) + 1e-5
    assert bool(jnp.all(jnp.linalg.norm(d_new, axis=-1) <= 1 + 1e-6))


def test_flops_and_validation():
    # N=16, M=8, inner FISTA-1 nonneg: 256 + 708; stats 2*256 + 2*128 = 768; BCD 16 * (256 + 48) = 4864.
    assert flops("alternating", n_latents=16, n_features=8, n_iter=1, n_steps=2, n_samples=3,
                 phase="training") == 2 * (3 * (964 + 768) + 4864)
    with pytest.raises(ValueError, match="n_latents"):
        dl.learn_dictionary(jax.random.key(0), jnp.ones((4, 8)), n_latents=16, lam=0.01)

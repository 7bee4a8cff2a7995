"""Config sections shared by several experiments."""

from __future__ import annotations

import dataclasses

import jax

from jaxsparse.data import sparse_coding_data


@dataclasses.dataclass(frozen=True)
class SparseDataConfig:
    """Paper-1 synthetic data (``jaxsparse.data.sparse_coding_data``): ``x = s D``, no noise, N latents,
    M features, exactly K half-normal nonzeros per code; train and test sample counts."""

    n_latents: int = 16
    n_features: int = 8
    k: int = 3
    n_train: int = 1024
    n_test: int = 1024


def sparse_source(data: SparseDataConfig, key: jax.Array) -> dict[str, jax.Array]:
    """One seed's data: train (``x``, ``z``) and test (``x_test``, ``z_test``) sets drawn on one random
    unit-norm ``dictionary``; the ``make_source`` of full-batch paper-1 tasks."""
    k_train, k_test = jax.random.split(key)
    x, z, dictionary = sparse_coding_data(k_train, data.n_train, data.n_latents, data.n_features, data.k)
    x_test, z_test, _ = sparse_coding_data(k_test, data.n_test, data.n_latents, data.n_features, data.k,
                                           dictionary=dictionary)
    return {"x": x, "z": z, "x_test": x_test, "z_test": z_test, "dictionary": dictionary}


def full_batch(source: dict[str, jax.Array], step: jax.Array) -> dict[str, jax.Array]:
    """Full-batch training: every step sees the whole training set (the ``data_fn`` of such tasks)."""
    return source

"""Synthetic sparse-coding problems: ``x = z D + noise`` with exactly ``k`` nonzeros per code.

Defaults are those of O'Neill, Gumran & Klindt (ICML 2025), "Compute optimal inference and provable
amortisation gap in sparse autoencoders": N=16 latents, M=8 features, K=3 active, non-negative
half-normal magnitudes, Gaussian dictionary with unit-norm atoms, no noise.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxsparse._checks import positive_int

Magnitude = Literal["halfnormal", "normal", "uniform", "one"]


def random_dictionary(key: jax.Array, n_latents: int = 16, n_features: int = 8, *, dtype=jnp.float32) -> jax.Array:
    """Gaussian dictionary with unit-norm rows (atoms).

    Args:
      key: PRNG key.
      n_latents: number of atoms N.
      n_features: signal dimension M.
    Returns:
      ``[n_latents, n_features]`` array, each row of Euclidean norm 1.
    """
    n_latents = positive_int("n_latents", n_latents)
    n_features = positive_int("n_features", n_features)
    d = jax.random.normal(key, (n_latents, n_features), dtype)
    return d / jnp.linalg.norm(d, axis=-1, keepdims=True)


def sparse_codes(
    key: jax.Array,
    n_samples: int,
    n_latents: int = 16,
    k: int = 3,
    *,
    nonneg: bool = True,
    magnitude: Magnitude = "halfnormal",
    dtype=jnp.float32,
) -> jax.Array:
    """Codes with exactly ``k`` nonzeros per row at uniformly random positions.

    Magnitudes: ``"halfnormal"`` |N(0,1)|, ``"normal"`` N(0,1), ``"uniform"`` U(0,1), ``"one"`` 1.
    With ``nonneg=False`` each nonzero gets an independent random sign (``"normal"`` already has one).

    Returns:
      ``[n_samples, n_latents]`` array.
    """
    n_samples = positive_int("n_samples", n_samples)
    n_latents = positive_int("n_latents", n_latents)
    k = positive_int("k", k, maximum=n_latents)
    k_pos, k_mag, k_sign = jax.random.split(key, 3)
    # Uniform k-subsets: the positions of the k smallest of n_latents i.i.d. uniforms, per row.
    scores = jax.random.uniform(k_pos, (n_samples, n_latents))
    support = jax.nn.one_hot(jnp.argsort(scores, axis=-1)[:, :k], n_latents, dtype=jnp.bool_).any(axis=-2)
    shape = (n_samples, n_latents)
    if magnitude == "halfnormal":
        values = jnp.abs(jax.random.normal(k_mag, shape, dtype))
    elif magnitude == "normal":
        values = jax.random.normal(k_mag, shape, dtype)
    elif magnitude == "uniform":
        values = jax.random.uniform(k_mag, shape, dtype)
    elif magnitude == "one":
        values = jnp.ones(shape, dtype)
    else:
        raise ValueError(f"`magnitude` must be one of 'halfnormal', 'normal', 'uniform', 'one'; got {magnitude!r}")
    if nonneg:
        values = jnp.abs(values)
    elif magnitude != "normal":
        values = values * jax.random.rademacher(k_sign, shape, dtype)
    return jnp.where(support, values, jnp.zeros((), dtype))


def sparse_coding_data(
    key: jax.Array,
    n_samples: int = 1024,
    n_latents: int = 16,
    n_features: int = 8,
    k: int = 3,
    *,
    noise: float = 0.0,
    nonneg: bool = True,
    magnitude: Magnitude = "halfnormal",
    dictionary: jax.Array | None = None,
    dtype=jnp.float32,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A sparse-coding problem ``x = z D + noise * eps``, ``eps ~ N(0, I)``.

    Args:
      key: PRNG key.
      n_samples, n_latents (N), n_features (M), k (K): sizes; paper-1 defaults 1024, 16, 8, 3.
      noise: standard deviation of additive Gaussian noise (0 for the paper's noiseless data).
      nonneg, magnitude: passed to :func:`sparse_codes`.
      dictionary: optional fixed ``[N, M]`` dictionary (e.g. to draw test data on the training one).
    Returns:
      ``(x [n_samples, M], z [n_samples, N], dictionary [N, M])``.
    """
    if noise < 0:
        raise ValueError(f"`noise` must be >= 0, got {noise}")
    k_dict, k_code, k_noise = jax.random.split(key, 3)
    if dictionary is None:
        dictionary = random_dictionary(k_dict, n_latents, n_features, dtype=dtype)
    elif tuple(dictionary.shape) != (n_latents, n_features):
        raise ValueError(f"`dictionary` must have shape ({n_latents}, {n_features}), got {tuple(dictionary.shape)}")
    z = sparse_codes(k_code, n_samples, n_latents, k, nonneg=nonneg, magnitude=magnitude, dtype=dtype)
    x = z @ dictionary
    if noise > 0:
        x = x + noise * jax.random.normal(k_noise, x.shape, dtype)
    return x, z, dictionary

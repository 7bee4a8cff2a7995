"""Directions in activation space: spherical k-means centroids as new units (Klindt et al. 2023).

Features in superposition are not aligned with single neurons. Klindt et al. cluster the
L2-normalised activation vectors with k-means (``k`` = number of neurons) and read each centroid
as a direction: the new unit ``j`` responds to stimulus ``n`` with the projection of the
normalised activation vector onto centroid ``j``. Their directions score higher on the 2AFC index
(:func:`jaxsparse.eval.two_afc_index`) than single neurons.

Paper: Klindt, Sanborn, Acosta, Poitevin & Miolane (2023), arXiv:2310.11431; official code
``utils.compute_kmeans`` of github.com/david-klindt/Superposition (scikit-learn ``MiniBatchKMeans``
on normalised data). Spherical k-means: Dhillon & Modha (2001); k-means++: Arthur & Vassilvitskii (2007).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxsparse._checks import as_float_array, check_key, positive_int

_TINY_NORM = 1e-6  # the official ``normalize``: norms clipped at 1e-6, so a zero row stays zero


def spherical_kmeans(key: jax.Array, x: Any, k: int, *, n_iter: int = 100, n_init: int = 10) -> jax.Array:
    """Spherical k-means: ``k`` unit centroids maximising the total cosine of points to their centroid.

    With ``x̂_n = x_n / max(||x_n||, 1e-6)`` and unit centroids ``c_j``, the objective is
    ``J = sum_n max_j <x̂_n, c_j>``. Seeding is k-means++ on the sphere: ``c_1`` a uniformly drawn
    point, then each next centroid a point drawn with probability ``∝ D_n² = 2 - 2 max_j <x̂_n, c_j>``
    (squared chordal distance to the nearest chosen centroid; uniform if all ``D_n² = 0``). Each
    Lloyd iteration assigns ``a_n = argmax_j <x̂_n, c_j>`` and sets ``c_j = s_j / ||s_j||`` with
    ``s_j = sum_{n: a_n = j} x̂_n``; a cluster left empty (or with ``s_j = 0``) keeps its previous
    centroid. Iterations stop after ``n_iter`` or when no assignment changes. Of ``n_init`` runs
    (from independent seedings) the one with the largest ``J`` is returned.

    On unit vectors this is Euclidean k-means (``||x̂ - c||² = 2 - 2 <x̂, c>``) with centroids
    renormalised to the sphere; the official code runs scikit-learn's ``MiniBatchKMeans`` on ``x̂``,
    whose centroids are not renormalised. Well separated clusters give the same partition.

    Args:
      key: PRNG key (seedings).
      x: ``[n, d]`` float activations, one row per stimulus (normalised here).
      k: number of centroids, ``1 <= k <= n`` (the number of units in the paper).
      n_iter: maximum number of Lloyd iterations (>= 1).
      n_init: number of seedings; runs are sequential (``lax.map``), so memory is that of one run.
    Returns:
      ``[k, d]`` unit-norm centroids.

    Example::

      centroids = spherical_kmeans(jax.random.key(0), acts, acts.shape[1])
      new_units = project(acts, centroids)  # [n, k]: score with two_afc_index
    """
    check_key("key", key)
    x = as_float_array("x", x, min_ndim=2)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape [n, d], got {tuple(x.shape)}")
    k = positive_int("k", k, maximum=x.shape[0])
    n_iter = positive_int("n_iter", n_iter)
    n_init = positive_int("n_init", n_init)
    return _spherical_kmeans(key, x, k, n_iter, n_init)


def project(activations: Any, centroids: Any) -> jax.Array:
    """New units: projections of the L2-normalised activations onto the centroids.

    ``new[n, j] = <x̂_n, c_j>`` with ``x̂_n = activations[n] / max(||activations[n]||, 1e-6)``, as the
    official ``compute_kmeans`` (``data_test @ kmeans.cluster_centers_.T`` on normalised data). The
    centroids are used as given (unit norm from :func:`spherical_kmeans`); rescaling a centroid by
    ``a > 0`` rescales its unit and leaves its ranking, hence its 2AFC index, unchanged.

    Args:
      activations: ``[n, d]`` float activations.
      centroids: ``[k, d]`` directions.
    Returns:
      ``[n, k]`` responses of the new units.
    """
    activations = as_float_array("activations", activations, min_ndim=2)
    centroids = as_float_array("centroids", centroids, min_ndim=2)
    if activations.ndim != 2:
        raise ValueError(f"`activations` must have shape [n, d], got {tuple(activations.shape)}")
    if centroids.ndim != 2 or centroids.shape[1] != activations.shape[1]:
        raise ValueError(
            f"`centroids` must have shape [k, d={activations.shape[1]}] to match `activations` "
            f"{tuple(activations.shape)}, got {tuple(centroids.shape)}"
        )
    return _normalise(activations) @ centroids.T


def _normalise(x: jax.Array) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), _TINY_NORM)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _spherical_kmeans(key: jax.Array, x: jax.Array, k: int, n_iter: int, n_init: int) -> jax.Array:
    x = _normalise(x)
    centroids = jax.lax.map(lambda kk: _lloyd(x, _kmeans_pp(kk, x, k), n_iter), jax.random.split(key, n_init))
    objective = jax.vmap(lambda c: jnp.sum(jnp.max(x @ c.T, axis=1)))(centroids)  # [n_init]
    return centroids[jnp.argmax(objective)]


def _kmeans_pp(key: jax.Array, x: jax.Array, k: int) -> jax.Array:
    """k-means++ seeding on the sphere (one draw per centroid, no greedy local trials): ``[k, d]``.

    Draw ``j`` is ``argmax_n (log D_n² + g[j, n])`` with Gumbel noise ``g`` (the Gumbel-max trick,
    as ``jax.random.categorical``), all noise drawn at once: one flat threefry call compiles fast.
    """
    n = x.shape[0]
    gumbel = jax.random.gumbel(key, (k * n,), x.dtype).reshape(k, n)
    c0 = x[jnp.argmax(gumbel[0])]  # uniform over the points
    centroids = jnp.zeros((k, x.shape[1]), x.dtype).at[0].set(c0)
    d2 = jnp.maximum(2.0 - 2.0 * (x @ c0), 0.0)  # [n] squared distance to the nearest centroid so far

    def body(j, carry):
        centroids, d2 = carry
        logits = jnp.where(jnp.sum(d2) > 0, jnp.log(d2), 0.0)  # log 0 = -inf: a chosen point is not redrawn
        c = x[jnp.argmax(logits + gumbel[j])]
        return centroids.at[j].set(c), jnp.minimum(d2, jnp.maximum(2.0 - 2.0 * (x @ c), 0.0))

    return jax.lax.fori_loop(1, k, body, (centroids, d2))[0]


def _lloyd(x: jax.Array, centroids: jax.Array, n_iter: int) -> jax.Array:
    """Lloyd iterations with cosine assignment and renormalised means; empty clusters keep their centroid."""
    k = centroids.shape[0]
    assign = lambda c: jnp.argmax(x @ c.T, axis=1)  # noqa: E731

    def update(c, labels):
        sums = jax.nn.one_hot(labels, k, dtype=x.dtype).T @ x  # [k, d]
        norm = jnp.linalg.norm(sums, axis=1, keepdims=True)
        return jnp.where(norm > 0, sums / jnp.where(norm > 0, norm, 1.0), c)

    def cond(state):
        i, _, _, changed = state
        return (i < n_iter) & changed

    def body(state):
        i, c, labels, _ = state
        c = update(c, labels)
        new = assign(c)
        return i + 1, c, new, jnp.any(new != labels)

    state = (jnp.asarray(0), centroids, assign(centroids), jnp.asarray(True))
    return jax.lax.while_loop(cond, body, state)[1]

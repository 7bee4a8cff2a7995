"""Automated interpretability index: a simulated two-alternative forced choice (2AFC) per unit.

A unit is *interpretable* when the stimuli that drive it most look alike, and unlike those that
drive it least. The index simulates the psychophysics task of Klindt et al. (2023): an observer sees
references from the top and from the bottom of a unit's ranking and must assign two queries (one
top, one bottom) to the right side, deciding by a similarity function (LPIPS in the paper; here any
``similarity(a, b) -> [len(a), len(b)]``, e.g. :func:`pixel_similarity`, :func:`colour_similarity`,
:func:`cosine_similarity` of network features or sentence embeddings). Chance is 0.5.

Paper: Klindt, Sanborn, Acosta, Poitevin & Miolane, "Identifying interpretable visual features in
artificial and biological neural systems" (2023), arXiv:2310.11431. Official code:
``psychophysics/psychophysics.py`` and ``psychophysics/metrics.py`` of github.com/david-klindt/
Superposition, which cite the task of Zimmermann et al. (2023, arXiv:2307.05471, appendix A.2).
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxsparse._checks import as_float_array, check_key, positive_int

Similarity = Callable[[jax.Array, jax.Array], jax.Array]


def two_afc_index(
    key: jax.Array,
    activations: Any,
    stimuli: Any,
    similarity: Similarity,
    *,
    n_trials: int = 20,
    n_refs: int = 9,
    quantile: float | None = None,
    return_trials: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Simulated 2AFC interpretability index of each unit (chance 0.5), as Klindt et al. (2023).

    Per unit ``u`` the stimuli are ranked by ``activations[:, u]`` (ties broken by stimulus index); with
    ``quantile = q`` the ``ceil(q (n_stimuli - 1))`` highest and as many lowest stimuli are first
    dropped (the official code keeps ``np.quantile(a, q) <= a <= np.quantile(a, 1 - q)``, the same
    set for distinct activations), so larger ``q`` gives harder trials. Counting ranks ``r = 0, 1,
    ...`` from the top (``T_r``) and from the bottom (``B_r``) of what is left, trial ``t`` of
    ``T = n_trials`` with ``R = n_refs`` uses

        queries     q⁺ = T_{π(t)},  q⁻ = B_{σ(t)}     (π, σ random permutations of 0..T-1)
        references  T_{T + jT + t},  B_{T + jT + t}   for j = 0..R-1

    (query and reference ranks are disjoint; references are dealt to trials in turn, as in the
    official code). ``π, σ`` of all units are ``argsort`` of ``jax.random.bits(key, (n_units*2*T,))``
    reshaped ``[n_units, 2, T]`` (the official code reseeds NumPy per unit, so all its units share
    them; here they are independent across units). With
    ``s = similarity(queries, references)``, the ``2 x 2R`` matrix of trial ``t``, z-scored over its
    ``4R`` entries (``z = (s - mean s) / std s``, population std, 1 if it is 0), and ``m(q, side)``
    the mean of ``z`` over the ``R`` references of that side::

        correct = m(q⁺, top) + m(q⁻, bottom)
        swapped = m(q⁺, bottom) + m(q⁻, top)
        p_t     = softmax([correct, swapped])[0] = 1 / (1 + exp(swapped - correct))
        index_u = (1/T) sum_t p_t

    This is the official ``extract_logits`` (z-score, ``pool_fun = np.mean``) followed by
    ``compute_score`` (evidences summed, softmax, probability of the correct assignment averaged over
    trials). Since ``correct - swapped = <c, z>`` with ``||c||² = 4/R`` and ``||z||² = 4R``, each
    ``p_t`` lies in ``[sigmoid(-4), sigmoid(4)] = [0.018, 0.982]``: a perfectly separating unit scores
    about 0.98, not 1.

    Args:
      key: PRNG key for the permutations of the queries (independent across units).
      activations: ``[n_stimuli, n_units]`` float responses of the units to the stimuli.
      stimuli: array with leading axis ``n_stimuli`` (images ``[n, H, W(, C)]``, feature vectors
        ``[n, d]``, ...); passed to ``similarity`` in slices along that axis.
      similarity: ``similarity(a [m, ...], b [k, ...]) -> [m, k]``, higher = more similar; a pure
        JAX function (it is traced under ``vmap``). For an expensive feature network, compute the
        features once and pass them as ``stimuli`` with :func:`cosine_similarity`.
      n_trials: trials per unit ``T`` (>= 1; 20 in the paper).
      n_refs: references per side and trial ``R`` (>= 1; 9 in the paper).
      quantile: ``None`` (or 0.0) to use the extremes, or a fraction in ``[0, 0.5)`` of the most
        extreme stimuli dropped at each end first (the paper also reports 0.25).
      return_trials: also return the per-trial probabilities ``p_t``.
    Returns:
      ``[n_units]`` indices in ``[0.018, 0.982]``; with ``return_trials``, ``(index, p)`` where ``p``
      is ``[n_units, n_trials]``. Needs ``n_stimuli - 2 ceil(q (n_stimuli - 1)) >= 2 T (R + 1)``
      (disjoint ranks; the official code asks for more than twice that, ``> 4 T (R + 1)``).

    Example::

      labels = jnp.repeat(jnp.array([1.0, 0.0]), 200)  # the unit fires for class A (bright images)
      imgs = labels[:, None, None] + 0.1 * jax.random.normal(jax.random.key(1), (400, 8, 8))
      two_afc_index(jax.random.key(0), labels[:, None], imgs, pixel_similarity)  # [0.98]
    """
    check_key("key", key)
    activations = as_float_array("activations", activations, min_ndim=2)
    if activations.ndim != 2:
        raise ValueError(f"`activations` must have shape [n_stimuli, n_units], got {tuple(activations.shape)}")
    if not hasattr(stimuli, "shape") or not hasattr(stimuli, "dtype"):
        raise TypeError(f"`stimuli` must be an array with leading axis n_stimuli, got {type(stimuli).__name__}")
    stimuli = jnp.asarray(stimuli)
    if stimuli.ndim < 1 or stimuli.shape[0] != activations.shape[0]:
        raise ValueError(
            f"`stimuli` must have leading axis n_stimuli={activations.shape[0]} like `activations` "
            f"{tuple(activations.shape)}, got shape {tuple(stimuli.shape)}"
        )
    if not callable(similarity):
        raise TypeError(f"`similarity` must be a function (a, b) -> [len(a), len(b)], got {type(similarity).__name__}")
    n_trials = positive_int("n_trials", n_trials)
    n_refs = positive_int("n_refs", n_refs)
    if not isinstance(return_trials, bool):
        raise TypeError(f"`return_trials` must be a bool, got {type(return_trials).__name__}")
    n_stimuli = activations.shape[0]
    n_drop = _n_dropped(quantile, n_stimuli)
    needed = 2 * n_trials * (n_refs + 1)
    if n_stimuli - 2 * n_drop < needed:
        raise ValueError(
            f"`activations` has n_stimuli={n_stimuli}, of which {n_stimuli - 2 * n_drop} remain after "
            f"`quantile`={quantile!r} drops {n_drop} at each end; n_trials={n_trials} and n_refs={n_refs} "
            f"need at least 2 * n_trials * (n_refs + 1) = {needed} for disjoint top and bottom ranks"
        )
    _check_similarity(similarity, stimuli, n_refs)
    p = _trials(key, activations, stimuli, similarity, n_trials, n_refs, n_drop)  # [n_units, n_trials]
    index = jnp.mean(p, axis=1)
    return (index, p) if return_trials else index


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6))
def _trials(key, activations, stimuli, similarity, n_trials: int, n_refs: int, n_drop: int) -> jax.Array:
    """``p_t`` of every unit, ``[n_units, n_trials]``; units vmapped."""
    # Uniform random permutations of 0..T-1 (π, σ of every unit) as argsorts of random bits: one
    # flat threefry draw and one sort, much faster to compile than vmapped ``jax.random.permutation``.
    # (Two equal 32-bit draws, probability ~T²/2³³, fall back to index order: negligible bias.)
    n_units = activations.shape[1]
    perms = jnp.argsort(jax.random.bits(key, (n_units * 2 * n_trials,)).reshape(n_units, 2, n_trials), axis=-1)
    unit = lambda a, perm: _unit_trials(a, perm, stimuli, similarity, n_trials, n_refs, n_drop)  # noqa: E731
    return jax.vmap(unit, in_axes=(1, 0))(activations, perms)


def _unit_trials(a, perm, stimuli, similarity, n_trials: int, n_refs: int, n_drop: int) -> jax.Array:
    """``p_t`` of one unit: ``a [n_stimuli]``, ``perm [2, T]`` (π, σ) -> ``[T]`` (vmap adds the units)."""
    band = jnp.argsort(a, stable=True)[n_drop:a.shape[0] - n_drop]
    bottom, top = band, band[::-1]
    query_top = top[perm[0]]  # [T]
    query_bottom = bottom[perm[1]]
    ranks = n_trials + n_trials * jnp.arange(n_refs)[None, :] + jnp.arange(n_trials)[:, None]  # [T, R]

    def trial(q_top, q_bottom, refs_top, refs_bottom):
        queries = stimuli[jnp.stack([q_top, q_bottom])]  # [2, ...]
        references = stimuli[jnp.concatenate([refs_top, refs_bottom])]  # [2R, ...]: top refs first
        s = similarity(queries, references)  # [2, 2R]
        std = jnp.std(s)
        z = (s - jnp.mean(s)) / jnp.where(std > 0, std, 1.0)
        correct = jnp.mean(z[0, :n_refs]) + jnp.mean(z[1, n_refs:])
        swapped = jnp.mean(z[0, n_refs:]) + jnp.mean(z[1, :n_refs])
        return jax.nn.softmax(jnp.stack([correct, swapped]))[0]

    return jax.vmap(trial)(query_top, query_bottom, top[ranks], bottom[ranks])


def _n_dropped(quantile: Any, n_stimuli: int) -> int:
    """Stimuli dropped at each end: ``ceil(q (n - 1))``, the ranks outside ``[Q(q), Q(1 - q)]``."""
    if quantile is None:
        return 0
    if isinstance(quantile, bool) or not isinstance(quantile, numbers.Real):
        raise TypeError(f"`quantile` must be None or a float in [0, 0.5), got {quantile!r}")
    if not 0.0 <= quantile < 0.5:
        raise ValueError(f"`quantile` must be None or a float in [0, 0.5), got {quantile!r}")
    return math.ceil(float(quantile) * (n_stimuli - 1) - 1e-9)  # tolerance: 0.1 * 10 is 1.0000000000000002


def _check_similarity(similarity: Similarity, stimuli: jax.Array, n_refs: int) -> None:
    """``similarity`` must map ``[2, ...]`` and ``[2R, ...]`` stimuli to a float ``[2, 2R]`` matrix."""
    spec = lambda m: jax.ShapeDtypeStruct((m,) + stimuli.shape[1:], stimuli.dtype)  # noqa: E731
    out = jax.eval_shape(similarity, spec(2), spec(2 * n_refs))
    if not hasattr(out, "shape") or out.shape != (2, 2 * n_refs) or not jnp.issubdtype(out.dtype, jnp.floating):
        got = f"{out.dtype}{list(out.shape)}" if hasattr(out, "shape") else type(out).__name__
        raise ValueError(
            f"`similarity` must map stimuli [m, ...] and [k, ...] to a float [m, k] matrix; "
            f"for m=2, k={2 * n_refs} it returned {got}"
        )


# --------------------------------------------------------------------------------------------
# Similarities: plain functions (a [m, ...], b [k, ...]) -> [m, k], higher = more similar
# --------------------------------------------------------------------------------------------


@jax.jit
def pixel_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """Negative Euclidean distance between flattened stimuli: ``s[i, j] = -||a_i - b_j||_2``.

    The official ``l2_metric``. Args: ``a [m, ...]``, ``b [k, ...]`` with equal trailing shapes
    (integer images are cast to float). Returns ``[m, k]``.
    """
    a, b = _flat_pair(a, b)
    return -jnp.sqrt(jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1))


@jax.jit
def colour_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """Negative distance between mean colours: ``s[i, j] = -||mean_{h,w} a_i - mean_{h,w} b_j||_2``.

    The official ``color_metric``, for NHWC images (the library's layout; the official code is NCHW):
    ``a [m, H, W, C]``, ``b [k, H, W, C]``, or greyscale ``[m, H, W]`` (mean intensity). Returns ``[m, k]``.
    """
    for name, x in (("a", a), ("b", b)):
        if jnp.ndim(x) not in (3, 4):
            raise ValueError(f"`{name}` must be images [n, H, W] or [n, H, W, C], got shape {jnp.shape(x)}")
    a, b = _floating(a), _floating(b)
    return pixel_similarity(jnp.mean(a, axis=(1, 2)), jnp.mean(b, axis=(1, 2)))


@jax.jit
def cosine_similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """Cosine between flattened stimuli: ``s[i, j] = <a_i, b_j> / (||a_i|| ||b_j||)`` (0 for a zero vector).

    For network features or sentence embeddings. Args: ``a [m, ...]``, ``b [k, ...]`` with equal
    trailing shapes. Returns ``[m, k]`` in ``[-1, 1]``.
    """
    a, b = _flat_pair(a, b)
    return _unit_rows(a) @ _unit_rows(b).T


def feature_similarity(feature_fn: Callable[[jax.Array], jax.Array]) -> Similarity:
    """A similarity that is the cosine in feature space: ``s[i, j] = cos(f(a)_i, f(b)_j)``.

    ``feature_fn`` maps stimuli ``[m, ...]`` to features ``[m, ...]`` (e.g. a JAX network with its
    parameters bound). It runs on every trial's stimuli; when it is expensive, compute the features
    once and call :func:`two_afc_index` on them with :func:`cosine_similarity` (the same index).
    """
    if not callable(feature_fn):
        raise TypeError(f"`feature_fn` must be a function stimuli -> features, got {type(feature_fn).__name__}")
    return lambda a, b: cosine_similarity(feature_fn(a), feature_fn(b))


def _floating(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.result_type(x.dtype, jnp.float32))


def _flat_pair(a: Any, b: Any) -> tuple[jax.Array, jax.Array]:
    a, b = _floating(a), _floating(b)
    if a.ndim < 1 or b.ndim < 1 or a.shape[1:] != b.shape[1:]:
        raise ValueError(
            f"`a` and `b` must be stimuli [m, ...] and [k, ...] with equal trailing shapes, got {a.shape} and {b.shape}"
        )
    return a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)


def _unit_rows(x: jax.Array) -> jax.Array:
    norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
    return x / jnp.where(norm > 0, norm, 1.0)

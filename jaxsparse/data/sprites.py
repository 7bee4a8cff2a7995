"""Procedural dSprites: a jit/vmap-able renderer of the dSprites factor grid and temporal pair samplers.

The grid is that of dSprites (Matthey et al. 2017), without its constant colour factor::

    factor        size  values                         categorical
    shape            3  square, ellipse, heart         yes
    scale            6  linspace(0.5, 1.0, 6)          no
    orientation     40  linspace(0, 2π, 40) radians    no
    pos_x           32  linspace(0, 1, 32)             no
    pos_y           32  linspace(0, 1, 32)             no

A sprite is described by integer factor indices ``factors: [..., 5]`` in that order (3·6·40·32·32
= 737,280 configurations, :data:`N_CONFIGURATIONS`). As in dSprites, the orientation grid contains
both 0 and 2π (``endpoint=True``), so indices 0 and 39 render the same image, and neighbouring
indices are 2π/39 apart (index 10 is 92.3°, not 90°). We keep that behaviour rather than "fix" it.
Squares (90°) and ellipses (180°) are rotationally symmetric, so several orientation indices render
the same image too; dSprites has the same property.

**Rendering** is an implicit-function test at each pixel centre (point sampling, binary images)::

    u = pixel centre (x right, y up) − sprite centre          (pixel units of an S×S image)
    v = R(−θ) u / (h · scale · S)                             (sprite frame, h = HALF_SIZE = 0.16)
    pixel = 1  if  shape(v) <= 0                              square:  max(|v_x|, |v_y|) − 1
                                                              ellipse: v_x² + (v_y / 0.5)² − 1
                                                              heart:   (a² + b² − 1)³ − a² b³,
                                                                       a = 1.139 v_x, b = 1.139 v_y + 0.118

so the square at scale 1 has side 2h = 0.32 of the image (20.5 px at 64×64), the ellipse has axes
2h × h, and the heart (the classical sextic heart curve, rescaled so its bounding box is [−1, 1] ×
[−0.98, 0.98] in the sprite frame) points down at θ = 0. θ rotates counter-clockwise as displayed
(row 0 at the top). The sprite centre is ``0.5 + (pos − 0.5) · 31/64`` of the image width
(:data:`POSITION_SPAN`): columns for ``pos_x``, rows counted from the top for ``pos_y``. At 64×64
the 32 positions are the pixel centres 16.5 … 47.5, one pixel apart, and every sprite at every
orientation stays at least 2 px inside the frame. The sizes and this mapping are our choices in
the spirit of dSprites (whose generator is not public), not a pixel-exact copy of its images.

Images are float32 in {0, 1} with a channel axis, ``[..., S, S, 1]`` (NHWC, as the conv VAE of
:mod:`jaxsparse.models.vae` expects), ``S = image_size`` (default 64; 32 is the cheap CPU setting:
the same continuous scene sampled at a coarser grid, where neighbouring positions are half a pixel
apart and some neighbouring factor values render the same image). ``supersample=k`` averages
``k × k`` point samples per pixel (grey levels in multiples of 1/k²) for anti-aliased images.

**Temporal pairs** (Klindt et al., ICLR 2021, "Towards nonlinear disentanglement in natural data
with temporal sparse coding"; official code bethgelab/slow_disentanglement, ``scripts/dataset.py``):
:func:`lap_pairs` (sparse Laplace transitions), :func:`loc_pairs` (k factors resampled, Locatello
et al. 2020) and :func:`natural_pairs` (heavy-tailed position/scale transitions standing in for
Natural Sprites). Each returns ``(factors_t0, factors_t1)``, int32 ``[n, 5]``, and is a pure
function of its key, so batches drawn from ``jax.random.fold_in(key, step)`` inside a jitted,
vmapped training step are reproducible.

Example::

    f0, f1 = lap_pairs(jax.random.fold_in(key, step), 32)
    x0, x1 = render(f0, image_size=32), render(f1, image_size=32)    # [32, 32, 32, 1] each
"""

from __future__ import annotations

import functools
import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import is_concrete, positive_int

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
CATEGORICAL: tuple[bool, ...] = (True, False, False, False, False)
SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
N_FACTORS = len(FACTOR_SIZES)
N_CONFIGURATIONS = int(np.prod(FACTOR_SIZES))  # 737,280

# Factor values (float64 here; the renderer's float32 tables are built from these).
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)  # endpoint included, as in dSprites
POSITIONS = np.linspace(0.0, 1.0, 32)

HALF_SIZE = 0.16  # half the side of the unit-scale square, as a fraction of the image width
POSITION_SPAN = 31 / 64  # fraction of the image width spanned by the 32 sprite centres
ELLIPSE_ASPECT = 0.5  # minor/major axis of the ellipse (major axis along x at θ = 0)
_HEART_SCALE = 1.139  # half-width of the curve (x²+y²−1)³ = x²y³ ...
_HEART_SHIFT = 0.11825  # ... and the centre of its y-range [-1, 1.2365]

# Mixed-radix strides: shape is the most significant digit (dSprites' and the official code's order).
_STRIDES = tuple(int(np.prod(FACTOR_SIZES[i + 1:])) for i in range(N_FACTORS))
_NON_CATEGORICAL = ~np.asarray(CATEGORICAL)
_MAX_SIZE = max(FACTOR_SIZES)


# --------------------------------------------------------------------------------------------------
# Factor grid


def _check_factors(name: str, factors: Any) -> jax.Array:
    """Integer ``[..., 5]`` factor indices; values checked against the grid when concrete."""
    if isinstance(factors, (list, tuple)):
        factors = np.asarray(factors)
    if not hasattr(factors, "dtype") or not hasattr(factors, "shape"):
        raise TypeError(f"`{name}` must be an integer array of factor indices, got {type(factors).__name__}")
    if not jnp.issubdtype(factors.dtype, jnp.integer):
        raise TypeError(f"`{name}` must have an integer dtype (factor indices), got {factors.dtype}")
    if factors.ndim < 1 or factors.shape[-1] != N_FACTORS:
        raise ValueError(
            f"`{name}` must have shape [..., {N_FACTORS}] (indices of {', '.join(FACTOR_NAMES)}), "
            f"got {tuple(factors.shape)}"
        )
    if is_concrete(factors) and factors.size:
        f = np.asarray(factors)
        low, high = f.min(axis=tuple(range(f.ndim - 1))), f.max(axis=tuple(range(f.ndim - 1)))
        for i, (lo, hi, size) in enumerate(zip(low, high, FACTOR_SIZES)):
            if lo < 0 or hi >= size:
                raise ValueError(
                    f"`{name}[..., {i}]` ({FACTOR_NAMES[i]}) must lie in [0, {size - 1}], "
                    f"got values in [{lo}, {hi}]"
                )
    return jnp.asarray(factors).astype(jnp.int32)


def factors_to_index(factors: Any) -> jax.Array:
    """Flat index of each configuration: ``index = Σ_i factors[..., i] · Π_{j>i} FACTOR_SIZES[j]``.

    Shape is the most significant digit and pos_y the least, the order of the dSprites arrays (with
    its single colour dropped) and of the official SlowVAE ``IndexManger``.

    Args:
      factors: integer ``[..., 5]`` factor indices.
    Returns:
      int32 ``[...]`` in ``[0, N_CONFIGURATIONS)``.
    """
    return _factors_to_index(_check_factors("factors", factors))


@jax.jit
def _factors_to_index(factors: jax.Array) -> jax.Array:
    return jnp.sum(factors * jnp.asarray(_STRIDES, jnp.int32), axis=-1)


def index_to_factors(index: Any) -> jax.Array:
    """Inverse of :func:`factors_to_index`: ``factors[..., i] = (index // stride_i) % FACTOR_SIZES[i]``.

    Args:
      index: integer ``[...]`` in ``[0, N_CONFIGURATIONS)``.
    Returns:
      int32 ``[..., 5]`` factor indices.
    """
    if isinstance(index, (list, tuple, numbers.Integral)) and not isinstance(index, bool):
        index = np.asarray(index)
    if not hasattr(index, "dtype") or not jnp.issubdtype(index.dtype, jnp.integer):
        raise TypeError(f"`index` must be an integer array, got {getattr(index, 'dtype', type(index).__name__)}")
    if is_concrete(index) and np.size(index):
        lo, hi = np.min(index), np.max(index)
        if lo < 0 or hi >= N_CONFIGURATIONS:
            raise ValueError(f"`index` must lie in [0, {N_CONFIGURATIONS - 1}], got values in [{lo}, {hi}]")
    return _index_to_factors(index)


@jax.jit
def _index_to_factors(index: jax.Array) -> jax.Array:
    index = jnp.asarray(index).astype(jnp.int32)[..., None]
    return (index // jnp.asarray(_STRIDES, jnp.int32)) % jnp.asarray(FACTOR_SIZES, jnp.int32)


def factor_values(factors: Any) -> jax.Array:
    """The dSprites values of factor indices: shape index, scale, orientation (radians), pos_x, pos_y.

    Args:
      factors: integer ``[..., 5]`` factor indices.
    Returns:
      float32 ``[..., 5]``; the shape column is the (categorical) index as a float.
    """
    return _factor_values(_check_factors("factors", factors))


@jax.jit
def _factor_values(factors: jax.Array) -> jax.Array:
    tables = (np.arange(3.0), SCALES, ORIENTATIONS, POSITIONS, POSITIONS)
    return jnp.stack([jnp.asarray(t, jnp.float32)[factors[..., i]] for i, t in enumerate(tables)], axis=-1)


def sample_factors(key: jax.Array, n: int) -> jax.Array:
    """``n`` configurations drawn uniformly from the grid (each factor independently uniform).

    Args:
      key: PRNG key.
      n: number of samples.
    Returns:
      int32 ``[n, 5]`` factor indices.
    """
    n = positive_int("n", n)
    return _sample_factors(key, n)


def _uniform(bits: jax.Array) -> jax.Array:
    """float32 uniforms on [0, 1) (multiples of 2^-24) from uint32 random bits."""
    return (bits >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


def _uniform_ints(bits: jax.Array, size: Any) -> jax.Array:
    """int32 uniform on ``{0, …, size − 1}`` from uint32 bits (``bits % size``: bias < size / 2^32)."""
    return (bits % jnp.asarray(size, jnp.uint32)).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=1)
def _sample_factors(key: jax.Array, n: int) -> jax.Array:
    # One threefry call per sampler: each jax.random call adds about a second of CPU compile time.
    return _uniform_ints(jax.random.bits(key, (n, N_FACTORS), jnp.uint32), FACTOR_SIZES)


# --------------------------------------------------------------------------------------------------
# Rendering


def _render_one(shape, scale, cos, sin, cx, cy, image_size: int, supersample: int) -> jax.Array:
    """One sprite ``[S, S, 1]``; ``cx, cy``: centre in pixel units of the ``S × S`` image."""
    s, k = image_size, supersample
    grid = (jnp.arange(s * k, dtype=jnp.float32) + 0.5) / k  # sample points in pixel units
    dx = (grid - cx)[None, :]  # columns: x to the right
    dy = (cy - grid)[:, None]  # rows: y up (row 0 at the top)
    inv = 1.0 / (HALF_SIZE * scale * s)
    vx = (cos * dx + sin * dy) * inv  # R(-θ) u, in the sprite frame
    vy = (cos * dy - sin * dx) * inv
    square = jnp.maximum(jnp.abs(vx), jnp.abs(vy)) <= 1.0
    ellipse = vx * vx + (vy / ELLIPSE_ASPECT) ** 2 <= 1.0
    a, b = _HEART_SCALE * vx, _HEART_SCALE * vy + _HEART_SHIFT
    heart = (a * a + b * b - 1.0) ** 3 - a * a * b * b * b <= 0.0
    inside = jnp.where(shape == 0, square, jnp.where(shape == 1, ellipse, heart)).astype(jnp.float32)
    if k > 1:
        inside = inside.reshape(s, k, s, k).mean(axis=(1, 3))
    return inside[..., None]


@functools.partial(jax.jit, static_argnums=(6, 7))
def _render_batch(shape, scale, cos, sin, cx, cy, image_size: int, supersample: int) -> jax.Array:
    batch = jnp.shape(shape)
    args = [jnp.ravel(a) for a in (shape, scale, cos, sin, cx, cy)]
    fn = jax.vmap(lambda *a: _render_one(*a, image_size, supersample))
    return fn(*args).reshape(batch + (image_size, image_size, 1))


def _check_image_options(image_size: Any, supersample: Any) -> tuple[int, int]:
    image_size = positive_int("image_size", image_size, minimum=4)
    supersample = positive_int("supersample", supersample)
    return image_size, supersample


def render(factors: Any, *, image_size: int = 64, supersample: int = 1) -> jax.Array:
    """Render sprites from integer factor indices (the dSprites grid; see the module docstring).

    Each pixel is 1 where its centre lies inside the sprite: the centre is moved into the sprite
    frame, ``v = R(−θ)(p − c) / (h · scale · S)``, and tested with the shape's implicit function.
    Orientation cosines and sines come from float64 tables, so index 39 (2π) renders exactly as
    index 0.

    Args:
      factors: integer ``[..., 5]`` indices (shape, scale, orientation, pos_x, pos_y).
      image_size: side ``S`` of the square image in pixels (64 as dSprites; 32 for cheap runs).
      supersample: ``k``: average ``k × k`` point samples per pixel (1: binary images).
    Returns:
      float32 ``[..., S, S, 1]`` images (NHWC), values in {0, 1} when ``supersample == 1``.

    Example::

      x = render(sample_factors(key, 64))            # [64, 64, 64, 1]
      x = jax.jit(render, static_argnames="image_size")(f, image_size=32)
    """
    factors = _check_factors("factors", factors)
    image_size, supersample = _check_image_options(image_size, supersample)
    return _render_factors(factors, image_size, supersample)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _render_factors(factors: jax.Array, image_size: int, supersample: int) -> jax.Array:
    centres = jnp.asarray(image_size * (0.5 + (POSITIONS - 0.5) * POSITION_SPAN), jnp.float32)
    return _render_batch(
        factors[..., 0],
        jnp.asarray(SCALES, jnp.float32)[factors[..., 1]],
        jnp.asarray(np.cos(ORIENTATIONS), jnp.float32)[factors[..., 2]],
        jnp.asarray(np.sin(ORIENTATIONS), jnp.float32)[factors[..., 2]],
        centres[factors[..., 3]],
        centres[factors[..., 4]],
        image_size,
        supersample,
    )


def render_continuous(
    shape: Any,
    scale: Any,
    orientation: Any,
    pos_x: Any,
    pos_y: Any,
    *,
    image_size: int = 64,
    supersample: int = 1,
) -> jax.Array:
    """Render sprites from continuous factor values (off-grid scales, angles and positions).

    :func:`render` is this function at the grid values (up to float32 rounding of cos/sin).

    Args:
      shape: integer ``[...]`` in {0: square, 1: ellipse, 2: heart}.
      scale: ``[...]`` size multiplier (dSprites' range is [0.5, 1]; must be > 0).
      orientation: ``[...]`` angle θ in radians, counter-clockwise as displayed.
      pos_x, pos_y: ``[...]`` positions in [0, 1] (values outside extrapolate the mapping, and the
        sprite may leave the frame).
      image_size, supersample: as in :func:`render`.
    Returns:
      float32 ``[..., S, S, 1]`` images, the batch shape being the broadcast of the five inputs.
    """
    image_size, supersample = _check_image_options(image_size, supersample)
    if not jnp.issubdtype(jnp.result_type(shape), jnp.integer):
        raise TypeError(f"`shape` must have an integer dtype (0 square, 1 ellipse, 2 heart), got {jnp.result_type(shape)}")
    if is_concrete(shape) and np.size(shape) and (np.min(shape) < 0 or np.max(shape) > 2):
        raise ValueError(f"`shape` must lie in {{0, 1, 2}}, got values in [{np.min(shape)}, {np.max(shape)}]")
    named = {"scale": scale, "orientation": orientation, "pos_x": pos_x, "pos_y": pos_y}
    for name, v in named.items():
        if is_concrete(v) and not np.all(np.isfinite(np.asarray(v, np.float64))):
            raise ValueError(f"`{name}` contains NaN or infinite values")
    if is_concrete(scale) and not np.all(np.asarray(scale) > 0):
        raise ValueError("`scale` must be > 0")
    return _render_values(shape, scale, orientation, pos_x, pos_y, image_size, supersample)


@functools.partial(jax.jit, static_argnums=(5, 6))
def _render_values(shape, scale, orientation, pos_x, pos_y, image_size: int, supersample: int) -> jax.Array:
    f32 = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
    shape, scale, theta, px, py = jnp.broadcast_arrays(shape, f32(scale), f32(orientation), f32(pos_x), f32(pos_y))
    to_pixels = lambda p: image_size * (0.5 + (p - 0.5) * POSITION_SPAN)  # noqa: E731
    return _render_batch(
        shape, scale, jnp.cos(theta), jnp.sin(theta), to_pixels(px), to_pixels(py), image_size, supersample
    )


# --------------------------------------------------------------------------------------------------
# Temporal pairs


def _check_rate(rate: Any) -> tuple[Any, Any]:
    """``rate`` as ``(low, high)`` of a per-pair uniform draw (equal for a fixed rate)."""
    if isinstance(rate, (tuple, list)):
        if len(rate) != 2:
            raise ValueError(f"`rate` must be a number or a (low, high) pair, got {rate!r}")
        low, high = rate
    else:
        low = high = rate
    for v in (low, high):
        if isinstance(v, bool):
            raise TypeError("`rate` must be a real number or a (low, high) pair, got bool")
        if is_concrete(v):
            arr = np.asarray(v)
            if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.number):
                raise TypeError(f"`rate` must be a real number or a (low, high) pair, got {rate!r}")
            if not np.isfinite(arr) or arr <= 0:
                raise ValueError(f"`rate` must be > 0 and finite, got {rate!r}")
    if is_concrete(low) and is_concrete(high) and float(low) > float(high):
        raise ValueError(f"`rate` as (low, high) needs low <= high, got {rate!r}")
    return low, high


def _step_logits(f0: jax.Array, rate: jax.Array, alpha: float) -> jax.Array:
    """Log-probabilities (unnormalised) ``−(|v − f0| · rate / log(size))^α`` over each factor's grid.

    Returns ``[n, 5, 40]`` with ``−inf`` beyond each factor's size (the truncation to the grid).
    """
    sizes = np.asarray(FACTOR_SIZES, np.float32)
    values = jnp.arange(_MAX_SIZE, dtype=jnp.float32)
    dist = jnp.abs(values - f0[..., None].astype(jnp.float32))  # [n, 5, 40]
    scaled = dist * (rate[:, None, None] / jnp.asarray(np.log(sizes))[:, None])
    # α is static: no power for LAP (α = 1), a square root for the default α = 0.5 (4x faster).
    if alpha == 1.0:
        logits = -scaled
    elif alpha == 0.5:
        logits = -jnp.sqrt(scaled)
    else:
        logits = -(scaled**alpha)
    return jnp.where(values < jnp.asarray(sizes)[:, None], logits, -jnp.inf)


def _sample_logits(u: jax.Array, logits: jax.Array, last: jax.Array) -> jax.Array:
    """One draw from ``softmax(logits)`` along the last axis per row, given uniforms ``u: logits.shape[:-1]``.

    Inverts the CDF; ``last`` (broadcast to ``u``) is the index of the last finite logit, the
    entries after it being ``-inf``. The CDF is a product with a triangular matrix:
    ``jax.random.categorical`` (Gumbel-max, a uniform and two logs per entry) and ``jnp.cumsum``
    (a reduce-window on CPU) are several times slower here.
    """
    m = logits.shape[-1]
    p = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
    cdf = jnp.matmul(p, jnp.triu(jnp.ones((m, m), p.dtype)), precision=jax.lax.Precision.HIGHEST)
    index = jnp.sum(cdf <= u[..., None] * cdf[..., -1:], axis=-1)
    return jnp.minimum(index, last).astype(jnp.int32)  # u * total can round up to the total


def _transition(bits, f0, rate, moving, alpha: float, force_change) -> jax.Array:
    """Move each ``moving`` factor by a draw from the truncated discrete step distribution.

    ``bits``: uint32 ``[n, 11]`` random bits; ``moving``: bool ``[5]``; ``force_change``: bool
    scalar; ``alpha``: a static float. With ``force_change``, a pair left unchanged gets one moving factor (uniform among them)
    redrawn from the same distribution with its current value excluded, as the official
    ``truncated_laplace``. The excluded value is removed from the candidates (not given zero
    weight), so rounding cannot bring it back. Both draws are made for every factor in one batched
    call and the fallback is selected afterwards: fewer, larger XLA ops than gathering the chosen
    factor's row (a third of the CPU compile time).
    """
    sizes = jnp.asarray(FACTOR_SIZES, jnp.int32)
    logits = _step_logits(f0, rate, alpha)  # [n, 5, 40]
    # Candidates j = 0..38 stand for the values j + (j >= current): all but the current one.
    j = jnp.arange(_MAX_SIZE - 1)
    others = jnp.where(j < f0[..., None], logits[..., :-1], logits[..., 1:])
    others = jnp.concatenate([others, jnp.full(others.shape[:-1] + (1,), -jnp.inf)], axis=-1)
    u = _uniform(bits[:, : 2 * N_FACTORS]).reshape(-1, N_FACTORS, 2)
    draws = _sample_logits(u, jnp.stack([logits, others], axis=-2), jnp.stack([sizes - 1, sizes - 2], axis=-1))
    f1 = jnp.where(moving, draws[..., 0], f0)
    fallback = draws[..., 1] + (draws[..., 1] >= f0)
    unchanged = jnp.all(f1 == f0, axis=-1, keepdims=True) & force_change
    # The pick-th moving factor, pick uniform in {0, ..., n_moving - 1}.
    pick = _uniform_ints(bits[:, 2 * N_FACTORS], jnp.sum(moving))[:, None]
    chosen = moving & (jnp.cumsum(moving) - 1 == pick)
    return jnp.where(unchanged & chosen, fallback, f1)


def lap_pairs(key: jax.Array, n: int, *, rate: float | tuple[float, float] = (1.0, 10.0)) -> tuple[jax.Array, jax.Array]:
    """SlowVAE's LAP transitions: sparse discrete-Laplace steps of every non-categorical factor.

    As the official ``TupleLoader.truncated_laplace`` (bethgelab/slow_disentanglement,
    ``scripts/dataset.py``): the first frame is uniform on the grid; per pair a rate ``λ`` is drawn
    (``U(low, high)``; the paper's ``λ ~ U(1, 10)`` is ``--rate-data -1`` there, whose default is a
    fixed ``λ = 1``); each non-categorical factor ``i`` then takes the value ``v ∈ {0, …, size_i − 1}``
    with probability::

        p(v | v0) ∝ exp(−|v − v0| / b_i),    b_i = log(size_i) / λ

    i.e. a discrete Laplace **truncated to the grid and renormalised** (a step that would leave the
    grid is never proposed; there is no clipping and no reflection, so near an edge the mass of the
    outside values is spread over the inside ones). Orientation is treated like any other ordinal
    factor, **not cyclically**: index 39 (2π) is 39 steps from index 0 although both render the same
    image. The categorical shape never changes. If no factor changed, one non-categorical factor
    (uniformly chosen) is redrawn from its distribution with the current value excluded, so every
    pair differs in at least one factor. That is exact and needs no rejection loop.

    Args:
      key: PRNG key.
      n: number of pairs.
      rate: fixed ``λ > 0``, or ``(low, high)`` for ``λ ~ U(low, high)`` drawn per pair.
    Returns:
      ``(factors_t0, factors_t1)``, int32 ``[n, 5]`` each.

    Example::

      f0, f1 = lap_pairs(jax.random.key(0), 32)            # λ ~ U(1, 10) per pair
      f0, f1 = lap_pairs(jax.random.key(0), 32, rate=1.0)  # the official default --rate-data 1
    """
    n = positive_int("n", n)
    low, high = _check_rate(rate)
    return _step_pairs(key, n, low, high, _NON_CATEGORICAL, 1.0, True)


@functools.partial(jax.jit, static_argnums=(1, 5))
def _step_pairs(key, n: int, low, high, moving, alpha: float, force_change):
    """Uniform first frames, then :func:`_transition` of the named factors at ``λ ~ U(low, high)``."""
    bits = jax.random.bits(key, (n, 3 * N_FACTORS + 2), jnp.uint32)
    f0 = _uniform_ints(bits[:, :N_FACTORS], FACTOR_SIZES)
    lam = low + (high - low) * _uniform(bits[:, N_FACTORS])
    return f0, _transition(bits[:, N_FACTORS + 1 :], f0, lam, jnp.asarray(moving), alpha, jnp.asarray(force_change))


def loc_pairs(key: jax.Array, n: int, *, k: int | None = 1) -> tuple[jax.Array, jax.Array]:
    """LOC transitions (Locatello et al. 2020): ``k`` factors change, each to a uniformly drawn new value.

    As the official ``TupleLoader.__getitem__`` with ``prior='uniform'``: the first frame is uniform
    on the grid; ``k`` distinct factors are chosen uniformly among **all five, shape included**;
    each gets a value uniform among its ``size − 1`` other values; the rest stay fixed.

    Args:
      key: PRNG key.
      n: number of pairs.
      k: number of changing factors in ``[1, 5]``; ``None`` draws ``k`` per pair uniformly from
        ``{1, …, 4}`` (the official ``k = -1``: ``np.random.randint(1, n_factors)``).
    Returns:
      ``(factors_t0, factors_t1)``, int32 ``[n, 5]``; exactly ``k`` columns differ in each row.
    """
    n = positive_int("n", n)
    if k is not None:
        k = positive_int("k", k, maximum=N_FACTORS)
    return _loc_pairs(key, n, 0 if k is None else k, k is None)


@functools.partial(jax.jit, static_argnums=1)
def _loc_pairs(key, n: int, k, random_k) -> tuple[jax.Array, jax.Array]:
    bits = jax.random.bits(key, (n, 3 * N_FACTORS + 1), jnp.uint32)
    f0 = _uniform_ints(bits[:, :N_FACTORS], FACTOR_SIZES)
    # k and random_k are traced: one program for every k.
    count = jnp.where(random_k, 1 + _uniform_ints(bits[:, N_FACTORS : N_FACTORS + 1], N_FACTORS - 1), k)
    # k distinct factors: the k smallest of 5 i.i.d. uniforms.
    scores = _uniform(bits[:, N_FACTORS + 1 : 2 * N_FACTORS + 1])
    chosen = jnp.argsort(jnp.argsort(scores, axis=-1), axis=-1) < count
    sizes = np.asarray(FACTOR_SIZES)
    offset = 1 + _uniform_ints(bits[:, 2 * N_FACTORS + 1 :], sizes - 1)  # uniform in {1, ..., size-1}
    f1 = jnp.where(chosen, (f0 + offset) % jnp.asarray(sizes, jnp.int32), f0)
    return f0, f1


def natural_pairs(
    key: jax.Array,
    n: int,
    *,
    rate: float | tuple[float, float] = 4.0,
    alpha: float = 0.5,
    force_change: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Heavy-tailed position and scale transitions: an offline stand-in for Natural Sprites.

    The paper's Natural Sprites take the (x, y, area) of segmentation masks in consecutive
    YouTube-VOS frames (``NaturalSprites`` in the official code) and render a sprite whose shape,
    orientation and colour stay fixed over the pair. Those statistics cannot be downloaded here, so
    we **approximate** them: the first frame is uniform on the grid; shape and orientation stay
    fixed; scale, pos_x and pos_y move by a discrete generalised-Laplace step truncated to the grid::

        p(v | v0) ∝ exp(−(|v − v0| / b_i)^α),    b_i = log(size_i) / λ

    With ``α < 1`` the steps are heavier-tailed than LAP's: mostly small moves with occasional
    large jumps, the "temporally sparse" statistics the paper measured on those masks (which it
    models with generalised Laplace distributions). The defaults ``α = 0.5, λ = 4`` are our
    choices, not values fitted to YouTube-VOS; with ``α = 1`` this is LAP restricted to position
    and scale. ``force_change`` applies LAP's
    at-least-one-change rule (the official Natural Sprites have continuous values, so their frames
    practically always differ).

    Args:
      key: PRNG key.
      n: number of pairs.
      rate: ``λ > 0``, or ``(low, high)`` for ``λ ~ U(low, high)`` per pair.
      alpha: shape ``α > 0`` of the step distribution (1: Laplace, < 1: heavier tails).
      force_change: redraw one of the moving factors when none moved.
    Returns:
      ``(factors_t0, factors_t1)``, int32 ``[n, 5]`` each.
    """
    n = positive_int("n", n)
    low, high = _check_rate(rate)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"`alpha` must be a finite number > 0, got {alpha!r}")
    moving = np.array([name in ("scale", "pos_x", "pos_y") for name in FACTOR_NAMES])
    return _step_pairs(key, n, low, high, moving, float(alpha), bool(force_change))


TRANSITIONS: dict[str, Callable[..., tuple[jax.Array, jax.Array]]] = {
    "lap": lap_pairs,
    "loc": loc_pairs,
    "natural": natural_pairs,
}
"""Pair samplers by name, for configs: ``TRANSITIONS[config.transition](key, n, **options)``."""

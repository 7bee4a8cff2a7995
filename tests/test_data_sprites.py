import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxsparse.data import sprites
from jaxsparse.data.sprites import (
    FACTOR_SIZES,
    N_CONFIGURATIONS,
    factor_values,
    factors_to_index,
    index_to_factors,
    lap_pairs,
    loc_pairs,
    natural_pairs,
    render,
    render_continuous,
    sample_factors,
)

SQUARE, ELLIPSE, HEART = 0, 1, 2
N = 20_000  # pairs per statistical test: one size, so each sampler compiles once


@pytest.fixture(scope="module")
def factors64():
    """One batch of random configurations shared by the rendering tests (one compile per size)."""
    return sample_factors(jax.random.key(0), 64)


def img(factors, **kw):
    """One [S, S] image from a list of 5 factor indices."""
    return np.asarray(render(jnp.asarray([factors], jnp.int32), **kw))[0, ..., 0]


def crop(image, centre, half=20):
    """The (2 half + 1)^2 window centred on pixel (centre, centre)."""
    return image[centre - half : centre + half + 1, centre - half : centre + half + 1]


# -------------------------------------------------------------------------------- rendering


def test_square_covers_the_hand_computed_pixels():
    # 64x64: position index i puts the centre on pixel centre 16.5 + i, i.e. in pixel 16 + i.
    # Half-side h * scale * S = 0.16 * 1.0 * 64 = 10.24 px, so pixel centres at integer offsets
    # -10..10 from the centre are inside: 21 x 21 = 441 pixels, rows and columns 6..26.
    x = img([SQUARE, 5, 0, 0, 0])
    assert x.sum() == 441
    rows, cols = np.nonzero(x)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 26, 6, 26)
    np.testing.assert_array_equal(x[6:27, 6:27], 1.0)
    # Scale 0.5 at position (31, 4): half-side 5.12 px -> offsets -5..5 -> 11 x 11 = 121 pixels
    # around pixel (row 16 + 4, column 16 + 31) = (20, 47).
    x = img([SQUARE, 0, 0, 31, 4])
    assert x.sum() == 121
    np.testing.assert_array_equal(x[15:26, 42:53], 1.0)
    # 32x32: centre 32 * (0.5 - 0.5 * 31/64) = 8.25 px, half-side 0.16 * 32 = 5.12 px; pixel j
    # (centre j + 0.5) is inside iff 3.13 <= j + 0.5 <= 13.37, i.e. j = 3..12: 10 x 10 = 100.
    x = img([SQUARE, 5, 0, 0, 0], image_size=32)
    assert x.shape == (32, 32) and x.sum() == 100
    np.testing.assert_array_equal(x[3:13, 3:13], 1.0)


def test_images_are_binary_nhwc_and_sprites_stay_in_frame(factors64):
    f = factors64
    for s in (64, 32):
        x = np.asarray(render(f, image_size=s))
        assert x.shape == (64, s, s, 1) and x.dtype == np.float32
        assert set(np.unique(x)) <= {0.0, 1.0}
        assert np.all(x.sum((1, 2, 3)) > 0)
    # The largest sprites at the extreme positions, every orientation: a 2 px empty border at 64x64.
    corners = [[sh, 5, o, px, py] for sh in range(3) for o in range(40) for px in (0, 31) for py in (0, 31)]
    x = np.asarray(render(jnp.asarray(corners)))[..., 0]
    border = np.ones((64, 64), bool)
    border[2:-2, 2:-2] = False
    assert not x[:, border].any()
    # Leading batch axes are kept.
    assert render(f.reshape(4, 16, 5), image_size=32).shape == (4, 16, 32, 32, 1)


def test_position_step_is_a_one_pixel_shift():
    for shape in range(3):
        a, b = img([shape, 3, 7, 10, 12]), img([shape, 3, 7, 11, 12])
        np.testing.assert_array_equal(np.roll(a, 1, axis=1), b)  # pos_x moves right
        c = img([shape, 3, 7, 10, 13])
        np.testing.assert_array_equal(np.roll(a, 1, axis=0), c)  # pos_y moves down


def test_orientation_endpoints_render_identically():
    # dSprites' orientation grid is linspace(0, 2pi, 40): index 39 is 2pi, the same angle as index 0.
    f0 = jnp.asarray([[sh, sc, 0, px, py] for sh in range(3) for sc in range(6) for px, py in [(0, 0), (15, 20), (31, 9)]])
    f39 = f0.at[:, 2].set(39)
    np.testing.assert_array_equal(render(f0), render(f39))
    np.testing.assert_array_equal(render(f0, image_size=32), render(f39, image_size=32))
    # ... and index 10 is 2pi * 10/39 (92.3 deg), not 90 deg.
    np.testing.assert_allclose(factor_values(jnp.asarray([0, 0, 10, 0, 0]))[2], 2 * np.pi * 10 / 39, rtol=1e-6)


def test_quarter_turn_is_a_counter_clockwise_rot90():
    # Centre on pixel (31, 31) (position 15): a 90 deg turn maps pixel centres onto pixel centres.
    pos = float(sprites.POSITIONS[15])
    for shape in range(3):
        upright = np.asarray(render_continuous(shape, 0.8, 0.0, pos, pos))[..., 0]
        turned = np.asarray(render_continuous(shape, 0.8, np.pi / 2, pos, pos))[..., 0]
        np.testing.assert_array_equal(crop(turned, 31), np.rot90(crop(upright, 31)))
    # The square is symmetric under a quarter turn, the ellipse is not (its axes swap).
    sq = [np.asarray(render_continuous(SQUARE, 1.0, t, pos, pos)) for t in (0.0, np.pi / 2)]
    np.testing.assert_array_equal(sq[0], sq[1])
    el = [np.asarray(render_continuous(ELLIPSE, 1.0, t, pos, pos)) for t in (0.0, np.pi / 2)]
    assert not np.array_equal(el[0], el[1])


def test_ellipse_half_turn_and_heart_symmetries():
    pos = float(sprites.POSITIONS[15])
    for scale in (0.5, 0.7, 1.0):
        half_turn = [np.asarray(render_continuous(ELLIPSE, scale, t, pos, pos)) for t in (0.0, np.pi)]
        np.testing.assert_array_equal(half_turn[0], half_turn[1])
    heart = crop(img([HEART, 5, 0, 15, 15]), 31)
    assert heart.sum() > 100
    np.testing.assert_array_equal(heart, heart[:, ::-1])  # symmetric about its own vertical axis
    assert not np.array_equal(heart, heart[::-1, :])  # but not upside down
    # It points down at orientation 0: its lowest row is narrower than its highest.
    rows = np.nonzero(heart.any(1))[0]
    assert heart[rows[-1]].sum() < heart[rows[0]].sum()


def test_continuous_renderer_matches_the_grid_renderer(factors64):
    f = factors64
    v = np.asarray(factor_values(f))
    x = render_continuous(f[:, 0], v[:, 1], v[:, 2], v[:, 3], v[:, 4], image_size=32)
    # cos/sin of float32 angles vs float64 tables: at most a stray boundary pixel.
    assert np.mean(np.asarray(x) == np.asarray(render(f, image_size=32))) > 0.9999


def test_supersampled_areas_match_the_shapes_areas():
    # Square side 2 h s S, ellipse axes 2 h s S x h s S (h = 0.16, S = 32): areas (2hsS)^2 and
    # pi (hsS)^2 / 2 in pixels, at any orientation. 16 x 16 samples per pixel approach them closely.
    scale = np.asarray(sprites.SCALES)[[0, 3, 5]]
    half = sprites.HALF_SIZE * scale * 32
    theta = np.asarray([0.0, 0.3, 1.0])
    pos = float(sprites.POSITIONS[16])
    for shape, area in [(SQUARE, (2 * half) ** 2), (ELLIPSE, np.pi * half**2 / 2)]:
        x = np.asarray(render_continuous(shape, scale[:, None], theta[None, :], pos, pos, image_size=32, supersample=16))
        assert np.all(np.isclose(x * 256, np.round(x * 256))) and ((x > 0) & (x < 1)).any()
        np.testing.assert_allclose(x.sum((-3, -2, -1)), np.broadcast_to(area[:, None], (3, 3)), rtol=0.02)


def test_render_under_jit_and_vmap(factors64):
    f = factors64
    eager = np.asarray(render(f, image_size=32))
    jitted = jax.jit(jax.vmap(functools.partial(render, image_size=32)))
    np.testing.assert_array_equal(jitted(f.reshape(4, 16, 5)).reshape(eager.shape), eager)


# -------------------------------------------------------------------------------- factor grid


def test_index_factor_round_trip_over_the_whole_grid():
    index = jnp.arange(N_CONFIGURATIONS, dtype=jnp.int32)
    f = index_to_factors(index)
    assert f.shape == (N_CONFIGURATIONS, 5) and f.dtype == jnp.int32
    np.testing.assert_array_equal(factors_to_index(f), index)
    # Shape is the most significant digit: the dSprites (and official IndexManger) order.
    np.testing.assert_array_equal(np.asarray(f), np.stack(np.unravel_index(np.asarray(index), FACTOR_SIZES), -1))
    assert int(factors_to_index(jnp.asarray([2, 5, 39, 31, 31]))) == N_CONFIGURATIONS - 1


def test_sample_factors_in_range_and_uniform():
    n = N
    f = np.asarray(sample_factors(jax.random.key(6), n))
    assert f.shape == (n, 5) and f.dtype == np.int32
    for i, size in enumerate(FACTOR_SIZES):
        counts = np.bincount(f[:, i], minlength=size)
        assert len(counts) == size
        assert stats.chisquare(counts).pvalue > 1e-3
    np.testing.assert_array_equal(sample_factors(jax.random.key(6), n), f)


# -------------------------------------------------------------------------------- pairs


def _changed(f0, f1):
    return np.asarray(f0) != np.asarray(f1)


def test_lap_pairs_basic_properties():
    f0, f1 = map(np.asarray, lap_pairs(jax.random.key(7), N))
    assert f0.shape == f1.shape == (N, 5) and f1.dtype == np.int32
    assert np.all(f1 >= 0) and np.all(f1 < np.asarray(FACTOR_SIZES))
    assert np.all(f0[:, 0] == f1[:, 0])  # shape is categorical: never changes
    assert np.all(_changed(f0, f1).sum(1) >= 1)  # at least one factor changes
    assert np.all(f0[:, 1:] != f1[:, 1:], axis=0).sum() == 0  # but not all, and each factor moves sometimes
    assert np.all(_changed(f0, f1)[:, 1:].any(0))


def test_lap_step_distribution_is_the_truncated_laplace_of_the_official_code():
    # The official truncated_laplace: p(v) = laplace.pdf(v, loc=v0, scale=log(size)/rate), normalised
    # over the grid. Average it over uniform v0 for the distribution of the step v - v0 (rate 1: the
    # at-least-one-change fallback touches ~0.15 % of the pairs).
    n, rate = N, 1.0
    f0, f1 = map(np.asarray, lap_pairs(jax.random.key(8), n, rate=rate))
    for i in (2, 3):  # orientation (40, not cyclic) and pos_x (32)
        size = FACTOR_SIZES[i]
        grid = np.arange(size)
        expected = np.zeros(2 * size - 1)
        for v0 in grid:
            p = stats.laplace.pdf(grid, loc=v0, scale=np.log(size) / rate)
            expected[grid - v0 + size - 1] += p / p.sum() / size
        observed = np.bincount(f1[:, i] - f0[:, i] + size - 1, minlength=2 * size - 1) / n
        np.testing.assert_allclose(observed, expected, atol=0.008)
        # Steps that would leave the grid are not clipped to the edge: from v0 = 0 the edge value 0
        # keeps the Laplace weight of a zero step (no pile-up of the outside mass on it).
        at_edge = f0[:, i] == 0
        p = stats.laplace.pdf(grid, loc=0, scale=np.log(size) / rate)
        assert abs(np.mean(f1[at_edge, i] == 0) - p[0] / p.sum()) < 0.08


def test_lap_step_scale_decreases_with_rate():
    means = []
    for rate in (1.0, 3.0, 10.0):
        f0, f1 = lap_pairs(jax.random.key(9), N, rate=rate)
        means.append(np.abs(np.asarray(f1) - np.asarray(f0))[:, 1:].mean(0))
    means = np.asarray(means)  # [rate, factor]
    assert np.all(means[0] > 1.5 * means[1]) and np.all(means[1] > 1.5 * means[2])
    # A per-pair rate ~ U(1, 10) lies in between.
    f0, f1 = lap_pairs(jax.random.key(9), N)
    mixed = np.abs(np.asarray(f1) - np.asarray(f0))[:, 1:].mean(0)
    assert np.all(means[2] < mixed) and np.all(mixed < means[0])


def test_lap_fallback_changes_exactly_one_factor_to_a_neighbour():
    # At a huge rate every factor stays put, so every pair goes through the fallback: one
    # non-categorical factor (uniformly chosen) is redrawn with its current value excluded.
    n = N
    f0, f1 = map(np.asarray, lap_pairs(jax.random.key(10), n, rate=1e3))
    changed = _changed(f0, f1)
    assert np.all(changed.sum(1) == 1) and not changed[:, 0].any()
    assert np.all(np.abs(f1 - f0)[changed] == 1)
    np.testing.assert_allclose(changed[:, 1:].mean(0), 0.25, atol=0.03)


def test_loc_pairs_change_exactly_k_factors():
    for k in range(1, 6):
        f0, f1 = loc_pairs(jax.random.key(11), N, k=k)
        assert np.all(_changed(f0, f1).sum(1) == k)
        assert np.all(np.asarray(f1) < np.asarray(FACTOR_SIZES)) and np.all(np.asarray(f1) >= 0)
    # All factors (shape included, as the official code) are chosen equally often.
    f0, f1 = loc_pairs(jax.random.key(12), N, k=1)
    np.testing.assert_allclose(_changed(f0, f1).mean(0), 0.2, atol=0.015)
    # New values are uniform among the other values: the shape moves to each other shape equally.
    f0, f1 = map(np.asarray, loc_pairs(jax.random.key(13), N, k=5))
    step = (f1[:, 0] - f0[:, 0]) % 3
    np.testing.assert_allclose(np.bincount(step, minlength=3) / N, [0, 0.5, 0.5], atol=0.015)
    # k=None: k uniform in {1, ..., 4} per pair (the official k = -1).
    counts = np.bincount(_changed(*loc_pairs(jax.random.key(14), N, k=None)).sum(1), minlength=6)
    np.testing.assert_allclose(counts / N, [0, 0.25, 0.25, 0.25, 0.25, 0], atol=0.02)


def test_natural_pairs_move_position_and_scale_with_heavy_tails():
    n = N
    f0, f1 = map(np.asarray, natural_pairs(jax.random.key(15), n))
    changed = _changed(f0, f1)
    assert not changed[:, 0].any() and not changed[:, 2].any()  # shape, orientation fixed
    assert np.all(changed.sum(1) >= 1)
    assert np.all(f1 >= 0) and np.all(f1 < np.asarray(FACTOR_SIZES))
    # alpha = 0.5 has heavier tails than the Laplace (alpha = 1) at the same rate: relatively more
    # large jumps for its typical step.
    lap0, lap1 = map(np.asarray, natural_pairs(jax.random.key(15), n, alpha=1.0))
    for d in (np.abs(f1 - f0)[:, 3], np.abs(lap1 - lap0)[:, 3]):
        assert np.median(d) >= 1
    heavy = np.abs(f1 - f0)[:, 3]
    light = np.abs(lap1 - lap0)[:, 3]
    assert np.quantile(heavy, 0.99) / np.median(heavy) > 1.5 * np.quantile(light, 0.99) / np.median(light)


@pytest.mark.parametrize("sampler", [lap_pairs, loc_pairs, natural_pairs])
def test_pairs_are_pure_functions_of_the_key(sampler):
    key = jax.random.key(16)
    a, b = sampler(key, N), sampler(key, N)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(sampler(jax.random.fold_in(key, 1), N)[1], a[1])


# natural_pairs runs the same code as lap_pairs (_step_pairs), with other options.
@pytest.mark.parametrize("sampler", [lap_pairs, loc_pairs])
def test_pairs_work_under_jit_and_vmap(sampler):
    key = jax.random.key(16)
    # The training pattern: pairs drawn from fold_in(key, step) inside jit, vmapped over seeds,
    # equal the eager draws one seed at a time.
    keys = jax.random.split(key, 2)
    step = jax.jit(jax.vmap(lambda k, i: sampler(jax.random.fold_in(k, i), N), in_axes=(0, None)))
    batched = step(keys, 3)
    for i in range(2):
        eager = sampler(jax.random.fold_in(keys[i], 3), N)
        np.testing.assert_array_equal(batched[0][i], eager[0])
        np.testing.assert_array_equal(batched[1][i], eager[1])


# -------------------------------------------------------------------------------- bad input


def test_bad_input_names_the_argument():
    key = jax.random.key(0)
    good = jnp.asarray([[0, 0, 0, 0, 0]])
    with pytest.raises(TypeError, match="`factors`.*integer"):
        render(good.astype(jnp.float32))
    with pytest.raises(ValueError, match=r"`factors`.*\[\.\.\., 5\]"):
        render(good[:, :4])
    with pytest.raises(ValueError, match=r"`factors\[\.\.\., 2\]` \(orientation\).*\[0, 39\]"):
        render(good.at[0, 2].set(40))
    with pytest.raises(ValueError, match=r"`factors\[\.\.\., 0\]`"):
        factors_to_index(good.at[0, 0].set(-1))
    with pytest.raises(ValueError, match="`index`"):
        index_to_factors(jnp.asarray([N_CONFIGURATIONS]))
    with pytest.raises(TypeError, match="`index`"):
        index_to_factors(jnp.asarray([1.0]))
    with pytest.raises(ValueError, match="`image_size`"):
        render(good, image_size=0)
    with pytest.raises(TypeError, match="`supersample`"):
        render(good, supersample=1.5)
    with pytest.raises(ValueError, match="`n`"):
        sample_factors(key, 0)
    with pytest.raises(ValueError, match="`rate`"):
        lap_pairs(key, 4, rate=0.0)
    with pytest.raises(ValueError, match="`rate`"):
        lap_pairs(key, 4, rate=(10.0, 1.0))
    with pytest.raises(ValueError, match="`k`"):
        loc_pairs(key, 4, k=6)
    with pytest.raises(ValueError, match="`alpha`"):
        natural_pairs(key, 4, alpha=-1.0)
    with pytest.raises(ValueError, match="`shape`"):
        render_continuous(3, 1.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="`scale`"):
        render_continuous(0, -1.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="`pos_x`"):
        render_continuous(0, 1.0, 0.0, np.nan, 0.5)

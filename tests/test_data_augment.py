"""Augmentations: shapes, key determinism, value ranges, and cases worked by hand."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.data import augment as A

IMAGES = jax.random.uniform(jax.random.key(0), (3, 10, 10, 3))


def test_ssl_views_are_deterministic_for_a_key_and_stay_in_range():
    run = jax.jit(A.augment_batch)
    a, b = run(jax.random.key(1), IMAGES), run(jax.random.key(1), IMAGES)
    c = run(jax.random.key(2), IMAGES)
    assert a.shape == IMAGES.shape and a.dtype == IMAGES.dtype
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    grey_images = IMAGES[..., :1]
    assert run(jax.random.key(3), grey_images).shape == grey_images.shape
    # the batch is one view per image with keys split(key, B)
    keys = jax.random.split(jax.random.key(1), 3)
    np.testing.assert_allclose(a[2], jax.jit(A.ssl_view)(keys[2], IMAGES[2]), atol=1e-6)


def test_crop_of_the_whole_image_is_the_identity_and_flip_by_hand():
    image = IMAGES[0]
    same = A.random_resized_crop(jax.random.key(0), image, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(same, image, atol=1e-5)
    np.testing.assert_array_equal(A.horizontal_flip(jax.random.key(0), image, p=1.0), image[:, ::-1])
    np.testing.assert_array_equal(A.horizontal_flip(jax.random.key(0), image, p=0.0), image)
    crop = A.random_resized_crop(jax.random.key(5), image, scale=(0.1, 0.2))
    assert crop.shape == image.shape and not np.allclose(crop, image)


def test_colour_operations_by_hand():
    image = IMAGES[1]
    np.testing.assert_allclose(A.grey(image)[..., 0], image @ jnp.array([0.299, 0.587, 0.114]), rtol=1e-6)
    # zero strength: every factor is 1
    np.testing.assert_allclose(A.color_jitter(jax.random.key(0), image, brightness=0.0, contrast=0.0, saturation=0.0),
                               image, atol=1e-6)
    # brightness alone multiplies by one factor in [0.5, 1.5]
    out = A.color_jitter(jax.random.key(0), image, brightness=0.5, contrast=0.0, saturation=0.0)
    ratio = np.asarray(out / image)
    assert np.allclose(ratio, ratio.flat[0], rtol=1e-5) and 0.5 <= ratio.flat[0] <= 1.5
    g = A.random_grayscale(jax.random.key(0), image, p=1.0)
    np.testing.assert_allclose(g[..., 0], g[..., 2])
    np.testing.assert_allclose(g[..., :1], A.grey(image), rtol=1e-6)


def test_blur_keeps_a_constant_image_and_smooths_a_spike():
    const = jnp.full((9, 9, 1), 0.3)
    np.testing.assert_allclose(A.gaussian_blur(jax.random.key(0), const, kernel=5), const, rtol=1e-6)
    spike = jnp.zeros((9, 9, 1)).at[4, 4, 0].set(1.0)
    out = np.asarray(A.gaussian_blur(jax.random.key(0), spike, sigma=(1.0, 1.0), kernel=5))[..., 0]
    k = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    k /= k.sum()
    np.testing.assert_allclose(out[2:7, 2:7], np.outer(k, k), rtol=1e-5)
    assert out.sum() == pytest.approx(1.0, rel=1e-5)


def test_noise_and_config_errors():
    image = IMAGES[2]
    noisy = A.gaussian_noise(jax.random.key(0), image, std=0.1)
    assert 0.05 < float(jnp.std(noisy - image)) < 0.15
    view = functools.partial(A.ssl_view, config=A.AugmentConfig(noise_std=0.05, blur_p=0.0))
    assert jax.jit(A.augment_batch, static_argnums=2)(jax.random.key(0), IMAGES, view).shape == IMAGES.shape
    with pytest.raises(ValueError, match="blur_p"):
        A.AugmentConfig(blur_p=1.5)
    with pytest.raises(ValueError, match="image"):
        A.ssl_view(jax.random.key(0), IMAGES)
    with pytest.raises(TypeError, match="floating"):
        A.horizontal_flip(jax.random.key(0), jnp.zeros((4, 4, 1), jnp.int32))
    with pytest.raises(ValueError, match="images"):
        A.augment_batch(jax.random.key(0), IMAGES[0])
    with pytest.raises(ValueError, match="scale"):
        A.random_resized_crop(jax.random.key(0), IMAGES[0], scale=(0.5, 1.5))

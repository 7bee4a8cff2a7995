"""Image augmentations as pure functions of a key: jit-able, vmapped over a batch, deterministic for a key.

Every augmentation maps one image ``[H, W, C]`` (float, values in ``[0, 1]``) and a key to an image;
:func:`augment_batch` applies one to a batch with one key per image (``split(key, B)``), so the same
key always gives the same views. :func:`ssl_view` is the usual SSL pipeline (SimCLR, Chen et al.
2020; DIET, Ibrahim et al. 2024 use the same):

    random resized crop -> horizontal flip (p) -> colour jitter (p) -> grayscale (p) -> Gaussian blur (p)
    -> Gaussian noise -> clip to [0, 1]

- crop: area fraction ``s ~ U(scale)``, aspect ``r = exp(U(log ratio))``, box ``h = sqrt(s H W / r)``,
  ``w = sqrt(s H W r)`` (clipped to the image), its corner uniform over the valid positions, resized back
  to ``[H, W]`` by bilinear interpolation (``jax.image.scale_and_translate``);
- colour jitter, in this order: brightness ``x * b``, contrast ``(x - mean) * c + mean`` (mean of the
  grey image), saturation ``(x - grey) * s + grey``, with ``b, c, s ~ U(1 - strength, 1 + strength)``;
  grey = ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B`` (the channel itself for one channel);
- blur: a separable Gaussian kernel of ``sigma ~ U(sigma)``, width ``kernel`` (odd), edges reflected.

Example::

    views = augment_batch(jax.random.key(0), images, ssl_view)          # images [B, H, W, C]
    views = augment_batch(jax.random.key(0), images, functools.partial(ssl_view, config=AugmentConfig(blur_p=0.0)))
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from jaxsparse._checks import check_key


def _check_image(image: jax.Array) -> None:
    if not hasattr(image, "ndim") or image.ndim != 3:
        raise ValueError(f"`image` must be one [H, W, C] image, got shape {getattr(image, 'shape', None)}; "
                         "use augment_batch for a batch")
    if not jnp.issubdtype(image.dtype, jnp.floating):
        raise TypeError(f"`image` must have a floating dtype (values in [0, 1]), got {image.dtype}")


def random_resized_crop(key: jax.Array, image: jax.Array, *, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> jax.Array:
    """A random box of area fraction ``U(scale)`` and aspect ``exp(U(log ratio))``, resized to ``[H, W]``."""
    _check_image(image)
    if not 0 < scale[0] <= scale[1] <= 1:
        raise ValueError(f"`scale` must satisfy 0 < low <= high <= 1, got {scale}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"`ratio` must satisfy 0 < low <= high, got {ratio}")
    h, w = image.shape[:2]
    k_s, k_r, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_s, minval=scale[0], maxval=scale[1]) * h * w
    aspect = jnp.exp(jax.random.uniform(k_r, minval=math.log(ratio[0]), maxval=math.log(ratio[1])))
    ch = jnp.clip(jnp.sqrt(area / aspect), 1.0, h)
    cw = jnp.clip(jnp.sqrt(area * aspect), 1.0, w)
    y0 = jax.random.uniform(k_y) * (h - ch)
    x0 = jax.random.uniform(k_x) * (w - cw)
    s = jnp.stack([h / ch, w / cw])
    return jax.image.scale_and_translate(image, image.shape, (0, 1), s, -jnp.stack([y0, x0]) * s, "linear",
                                         antialias=False)


def horizontal_flip(key: jax.Array, image: jax.Array, *, p: float = 0.5) -> jax.Array:
    """``image[:, ::-1]`` with probability ``p``."""
    _check_image(image)
    return jnp.where(jax.random.bernoulli(key, p), image[:, ::-1], image)


def grey(image: jax.Array) -> jax.Array:
    """``[H, W, 1]`` luma ``0.299 R + 0.587 G + 0.114 B`` (a one-channel image is its own grey)."""
    if image.shape[-1] == 1:
        return image
    if image.shape[-1] != 3:
        raise ValueError(f"`image` must have 1 or 3 channels for colour operations, got {image.shape[-1]}")
    return (image @ jnp.array([0.299, 0.587, 0.114], image.dtype))[..., None]


def color_jitter(key: jax.Array, image: jax.Array, *, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> jax.Array:
    """Brightness, contrast, then saturation, each factor ``U(1 - strength, 1 + strength)`` (module docstring)."""
    _check_image(image)
    k_b, k_c, k_s = jax.random.split(key, 3)

    def factor(k, strength):
        return jax.random.uniform(k, minval=1 - strength, maxval=1 + strength)

    x = image * factor(k_b, brightness)
    mean = jnp.mean(grey(x))
    x = (x - mean) * factor(k_c, contrast) + mean
    g = grey(x)
    return (x - g) * factor(k_s, saturation) + g


def random_grayscale(key: jax.Array, image: jax.Array, *, p: float = 0.2) -> jax.Array:
    """The grey image (in every channel) with probability ``p``."""
    _check_image(image)
    return jnp.where(jax.random.bernoulli(key, p), jnp.broadcast_to(grey(image), image.shape), image)


def gaussian_blur(key: jax.Array, image: jax.Array, *, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel: int | None = None) -> jax.Array:
    """Separable Gaussian blur with ``sigma ~ U(sigma)`` (pixels), width ``kernel`` (default: the odd
    number nearest a tenth of the image, at least 3), reflected edges."""
    _check_image(image)
    h, w = image.shape[:2]
    kernel = kernel or max(3, 2 * (min(h, w) // 20) + 1)
    if kernel % 2 != 1:
        raise ValueError(f"`kernel` must be odd, got {kernel}")
    s = jax.random.uniform(key, minval=sigma[0], maxval=sigma[1])
    t = jnp.arange(kernel, dtype=image.dtype) - kernel // 2
    k = jnp.exp(-0.5 * (t / s) ** 2)
    k = k / jnp.sum(k)
    r = kernel // 2
    x = jnp.pad(image, ((r, r), (r, r), (0, 0)), mode="reflect")
    x = sum(k[i] * x[i:i + h] for i in range(kernel))  # rows
    return sum(k[i] * x[:, i:i + w] for i in range(kernel))  # columns


def gaussian_noise(key: jax.Array, image: jax.Array, *, std: float = 0.02) -> jax.Array:
    """``image + std * N(0, 1)``."""
    _check_image(image)
    return image + std * jax.random.normal(key, image.shape, image.dtype)


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The pipeline of :func:`ssl_view` (defaults: SimCLR's for small images, without hue)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    noise_std: float = 0.0

    def __post_init__(self):
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"`{name}` must be a probability in [0, 1], got {getattr(self, name)}")
        if self.noise_std < 0:
            raise ValueError(f"`noise_std` must be >= 0, got {self.noise_std}")


def ssl_view(key: jax.Array, image: jax.Array, config: AugmentConfig = AugmentConfig()) -> jax.Array:
    """One augmented view of ``image [H, W, C]`` by the pipeline of the module docstring, clipped to ``[0, 1]``."""
    _check_image(image)
    k = jax.random.split(key, 8)
    x = random_resized_crop(k[0], image, scale=config.crop_scale, ratio=config.crop_ratio)
    x = horizontal_flip(k[1], x, p=config.flip_p)
    jittered = color_jitter(k[2], x, brightness=config.brightness, contrast=config.contrast,
                            saturation=config.saturation)
    x = jnp.where(jax.random.bernoulli(k[3], config.jitter_p), jittered, x)
    x = random_grayscale(k[4], x, p=config.grayscale_p)
    x = jnp.where(jax.random.bernoulli(k[5], config.blur_p), gaussian_blur(k[6], x, sigma=config.blur_sigma), x)
    if config.noise_std > 0:
        x = gaussian_noise(k[7], x, std=config.noise_std)
    return jnp.clip(x, 0.0, 1.0)


def augment_batch(key: jax.Array, images: jax.Array, fn: Callable[[jax.Array, jax.Array], jax.Array] = ssl_view
                  ) -> jax.Array:
    """``fn`` applied to each image of ``images [B, H, W, C]`` with keys ``split(key, B)`` (vmapped)."""
    check_key("key", key)
    if not hasattr(images, "ndim") or images.ndim != 4:
        raise ValueError(f"`images` must be [B, H, W, C], got shape {getattr(images, 'shape', None)}")
    return jax.vmap(fn)(jax.random.split(key, images.shape[0]), images)

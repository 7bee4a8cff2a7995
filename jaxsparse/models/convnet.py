"""A small convolutional classifier whose every layer can be read out, as pure ``init``/``apply``.

For images ``x: [B, H, W, C]`` and channel widths ``(c_1, ..., c_L)``::

    h_1 = relu(conv3x3_s1(x) + b_1)                 [B, H, W, c_1]
    h_l = relu(conv3x3_s2(h_{l-1}) + b_l)           [B, H / 2^(l-1), W / 2^(l-1), c_l]    l = 2 .. L
    h_fc = relu(flatten(h_L) W_fc + b_fc)           [B, hidden]
    logits = h_fc W_out + b_out                      [B, n_classes]

(3x3 kernels, padding 1; stride 1 for the first convolution, 2 after it). :func:`units` turns the
hidden layers into "neurons" the way interpretability work reads a conv net: a convolutional
channel's activation for an image is its spatial mean (global average pooling), a dense unit's is
its value. Paper 5 (Klindt et al. 2023) scores such units, and directions among them, with the 2AFC
index.

Initialisation: Kaiming-normal weights ``N(0, 2 / fan_in)`` (``fan_in`` = kernel taps x input
channels for a convolution), zero biases, drawn as one flat normal draw cut into the tensors (XLA:CPU
compiles one draw per shape slowly). Convolutions go through :func:`jaxsparse.models.conv.conv2d`, so
a vmapped stack of nets (one per seed) trains fast on CPU.

Example::

    params = init(jax.random.key(0), image_shape=(8, 8, 1))
    logits, layers = apply(params, x, return_layers=True)      # x [B, 8, 8, 1]
    neurons = units(layers)                                    # {"conv_0": [B, 16], "conv_1": [B, 32], "fc": [B, 64]}
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.models.conv import conv2d

PyTree = Any
KERNEL = 3


def _spatial(image_shape: tuple[int, int, int], n_convs: int) -> tuple[int, int]:
    h, w = image_shape[:2]
    for _ in range(n_convs - 1):  # stride 2, padding 1, kernel 3: ceil(size / 2)
        h, w = (h + 1) // 2, (w + 1) // 2
    return h, w


def init(key: jax.Array, *, image_shape: Sequence[int], channels: Sequence[int] = (16, 32), hidden: int = 64,
         n_classes: int = 10, dtype=jnp.float32) -> PyTree:
    """Parameters ``{"conv_0": {"w": [3, 3, C, c_1], "b": [c_1]}, ..., "fc": {...}, "out": {...}}``.

    Args:
      key: PRNG key (``jax.vmap`` over keys gives one net per seed).
      image_shape: ``(H, W, C)`` of the input images.
      channels: output channels of the convolutions (at least one).
      hidden: width of the dense hidden layer ``fc``.
      n_classes: number of logits.
      dtype: floating dtype of the parameters.
    """
    if isinstance(image_shape, (str, bytes)) or not hasattr(image_shape, "__len__") or len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (H, W, C), got {image_shape!r}")
    image_shape = tuple(positive_int(f"image_shape[{i}]", s) for i, s in enumerate(image_shape))
    if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) < 1:
        raise ValueError(f"`channels` must be a non-empty sequence of channel counts, got {channels!r}")
    channels = tuple(positive_int(f"channels[{i}]", c) for i, c in enumerate(channels))
    hidden, n_classes = positive_int("hidden", hidden), positive_int("n_classes", n_classes)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}")
    h, w = _spatial(image_shape, len(channels))
    c_in = (image_shape[2],) + channels[:-1]
    shapes = [(KERNEL, KERNEL, a, b) for a, b in zip(c_in, channels)] + [(h * w * channels[-1], hidden),
                                                                          (hidden, n_classes)]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = jax.random.normal(key, (sum(sizes),), dtype)
    ends = np.cumsum(sizes)
    names = [f"conv_{i}" for i in range(len(channels))] + ["fc", "out"]
    params = {}
    for name, shape, end, size in zip(names, shapes, ends, sizes):
        scale = float(np.sqrt(2.0 / np.prod(shape[:-1])))
        params[name] = {"w": scale * flat[end - size:end].reshape(shape), "b": jnp.zeros((shape[-1],), dtype)}
    return params


def n_convs(params: PyTree) -> int:
    """Number of convolutional layers of ``params``."""
    return sum(1 for k in params if k.startswith("conv_"))


def apply(params: PyTree, x: jax.Array, *, return_layers: bool = False):
    """Logits ``[B, n_classes]`` of images ``x: [B, H, W, C]`` (see the module docstring).

    Args:
      params: from :func:`init`.
      x: ``[B, H, W, C]`` float images with ``C`` the channels ``params`` was built for.
      return_layers: also return ``{"conv_0": [B, H, W, c_1], ..., "fc": [B, hidden]}``, every hidden
        layer after its ReLU.
    Returns:
      ``logits``, or ``(logits, layers)`` with ``return_layers``.
    """
    if not hasattr(x, "ndim") or x.ndim != 4 or x.shape[-1] != params["conv_0"]["w"].shape[2]:
        raise ValueError(f"`x` must be [batch, H, W, {params['conv_0']['w'].shape[2]}] images, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`x` must have a floating dtype, got {x.dtype}")
    layers, h = {}, x
    for i in range(n_convs(params)):
        p = params[f"conv_{i}"]
        h = jax.nn.relu(conv2d(h, p["w"], 1 if i == 0 else 2, ((1, 1), (1, 1))) + p["b"])
        layers[f"conv_{i}"] = h
    h = h.reshape(h.shape[0], -1)
    if h.shape[1] != params["fc"]["w"].shape[0]:
        raise ValueError(f"`x` of shape {tuple(x.shape)} does not give the {params['fc']['w'].shape[0]} features "
                         "`params` was built for; pass images of the `image_shape` given to `init`")
    h = jax.nn.relu(h @ params["fc"]["w"] + params["fc"]["b"])
    layers["fc"] = h
    logits = h @ params["out"]["w"] + params["out"]["b"]
    return (logits, layers) if return_layers else logits


def units(layers: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Each layer's units ``[B, n_units]``: a convolutional map ``[B, H, W, c]`` is averaged over space
    (one unit per channel); a dense layer ``[B, n]`` is returned as it is."""
    return {name: h.mean(axis=(1, 2)) if h.ndim == 4 else h for name, h in layers.items()}

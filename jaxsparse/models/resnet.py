"""A small ResNet backbone (He et al. 2016, basic blocks) with GroupNorm, as pure ``init``/``apply``.

For images ``x: [B, H, W, C]``, stage widths ``(c_1, ..., c_S)`` and ``blocks`` basic blocks per stage::

    h = relu(GN(conv3x3_t(x)))                                     stem, c_1 channels, stride t (stem_stride)
    block(h) = relu(GN(conv3x3(relu(GN(conv3x3_s(h))))) + shortcut(h))
    shortcut(h) = h, or GN(conv1x1_s(h)) when the block changes the width or the stride
    features = mean_{H, W} h                                       [B, c_S] (global average pooling)

Stage ``i``'s first block has stride ``s = 1`` for ``i = 0`` and ``2`` after, so the spatial size
halves (``ceil``) at each later stage; the other blocks have stride 1 and identity shortcuts.

GroupNorm (Wu & He 2018) instead of BatchNorm: it has no running statistics and no dependence on the
rest of the batch, so the backbone is a pure function of its parameters and one image, vmaps over
seeds and hyperparameters without cross-run state, and a BYOL teacher is just a second copy of the
parameters (BYOL trains without batch statistics when the norm layers are GroupNorm with weight
standardisation; Richemond et al. 2020). ``GN(h)_c = gamma_c (h_c - mu_g) / sqrt(var_g + 1e-5) + beta_c``
with ``mu_g, var_g`` over the height, width and the channels of ``c``'s group.

Initialisation: convolutions Kaiming-normal ``N(0, 2 / fan_in)`` (one flat normal draw cut into the
tensors, as :mod:`jaxsparse.models.convnet`), GroupNorm ``gamma = 1, beta = 0``; convolutions go
through :func:`jaxsparse.models.conv.conv2d` (fast vmapped seed sweeps on CPU).

Example::

    params = init(jax.random.key(0), image_shape=(32, 32, 1), widths=(16, 32, 64))
    features = apply(params, x)                    # x [B, 32, 32, 1] -> [B, 64]
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.models.conv import conv2d

PyTree = Any
EPS = 1e-5


def _block_names(n_stages: int, blocks: int) -> list[str]:
    return [f"block_{s}_{b}" for s in range(n_stages) for b in range(blocks)]


def init(key: jax.Array, *, image_shape: Sequence[int], widths: Sequence[int] = (16, 32, 64), blocks: int = 1,
         groups: int = 4, dtype=jnp.float32) -> PyTree:
    """Parameters ``{"stem": {"w", "gamma", "beta"}, "block_<stage>_<block>": {...}}`` (module docstring).

    Args:
      key: PRNG key (``jax.vmap`` over keys gives one backbone per seed).
      image_shape: ``(H, W, C)`` of the input images.
      widths: channels of each stage (at least one); the feature width is ``widths[-1]``.
      blocks: basic blocks per stage.
      groups: GroupNorm groups; must divide every width.
      dtype: floating dtype of the parameters.
    """
    if isinstance(image_shape, (str, bytes)) or not hasattr(image_shape, "__len__") or len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (H, W, C), got {image_shape!r}")
    c_in = positive_int("image_shape[2]", image_shape[2])
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) < 1:
        raise ValueError(f"`widths` must be a non-empty sequence of channel counts, got {widths!r}")
    widths = tuple(positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))
    blocks, groups = positive_int("blocks", blocks), positive_int("groups", groups)
    if bad := [w for w in widths if w % groups]:
        raise ValueError(f"`groups`={groups} must divide every width in `widths`={widths}; {bad} are not multiples")
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}")
    convs: list[tuple[str, str, tuple[int, ...]]] = [("stem", "w", (3, 3, c_in, widths[0]))]
    prev = widths[0]
    for s, width in enumerate(widths):
        for b in range(blocks):
            name = f"block_{s}_{b}"
            convs += [(name, "w1", (3, 3, prev, width)), (name, "w2", (3, 3, width, width))]
            if prev != width or (s > 0 and b == 0):
                convs.append((name, "w_short", (1, 1, prev, width)))
            prev = width
    sizes = [int(np.prod(shape)) for _, _, shape in convs]
    flat = jax.random.normal(key, (sum(sizes),), dtype)
    params: dict[str, dict[str, jax.Array]] = {}
    for (name, w, shape), end, size in zip(convs, np.cumsum(sizes), sizes):
        p = params.setdefault(name, {})
        p[w] = float(np.sqrt(2.0 / np.prod(shape[:-1]))) * flat[end - size:end].reshape(shape)
        suffix = w[1:]  # "", "1", "2", "_short"
        p["gamma" + suffix] = jnp.ones((shape[-1],), dtype)
        p["beta" + suffix] = jnp.zeros((shape[-1],), dtype)
    return params


def group_norm(h: jax.Array, gamma: jax.Array, beta: jax.Array, groups: int) -> jax.Array:
    """GroupNorm of ``h: [B, H, W, C]`` over ``(H, W, channels of a group)`` (module docstring)."""
    b, height, width, c = h.shape
    g = h.reshape(b, height, width, groups, c // groups)
    mean = jnp.mean(g, axis=(1, 2, 4), keepdims=True)
    var = jnp.mean(jnp.square(g - mean), axis=(1, 2, 4), keepdims=True)
    g = (g - mean) * jax.lax.rsqrt(var + EPS)
    return g.reshape(h.shape) * gamma + beta


def _blocks(params: PyTree) -> list[tuple[int, int, str]]:
    """``(stage, block, name)`` of the residual blocks in order (pytree dicts come back key-sorted)."""
    found = [(int(k.split("_")[1]), int(k.split("_")[2]), k) for k in params if k.startswith("block_")]
    return sorted(found)


def feature_dim(params: PyTree) -> int:
    """Width of :func:`apply`'s features."""
    return params[_blocks(params)[-1][2]]["w2"].shape[-1]


def apply(params: PyTree, x: jax.Array, *, groups: int = 4, stem_stride: int = 1) -> jax.Array:
    """Features ``[B, widths[-1]]`` of images ``x: [B, H, W, C]`` (module docstring).

    ``groups`` must be the one given to :func:`init`; ``stem_stride`` 2 halves the images in the stem
    (4x cheaper stages, as ResNet's strided stem on larger images).
    """
    c = params["stem"]["w"].shape[2]
    if not hasattr(x, "ndim") or x.ndim != 4 or x.shape[-1] != c:
        raise ValueError(f"`x` must be [batch, H, W, {c}] images, got {getattr(x, 'shape', type(x).__name__)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`x` must have a floating dtype, got {x.dtype}")
    same = ((1, 1), (1, 1))
    p = params["stem"]
    h = jax.nn.relu(group_norm(conv2d(x, p["w"], stem_stride, same), p["gamma"], p["beta"], groups))
    for stage, block, name in _blocks(params):
        p = params[name]
        stride = 2 if stage > 0 and block == 0 else 1
        y = jax.nn.relu(group_norm(conv2d(h, p["w1"], stride, same), p["gamma1"], p["beta1"], groups))
        y = group_norm(conv2d(y, p["w2"], 1, same), p["gamma2"], p["beta2"], groups)
        if "w_short" in p:
            h = group_norm(conv2d(h, p["w_short"], stride, ((0, 0), (0, 0))), p["gamma_short"], p["beta_short"], groups)
        h = jax.nn.relu(y + h)
    return jnp.mean(h, axis=(1, 2))

"""A multilayer perceptron with optional batch normalisation, as pure ``init``/``apply`` functions.

For widths ``(n_0, n_1, ..., n_L)`` the net maps ``[..., n_0] -> [..., n_L]``::

    h_0 = x
    h_l = leaky_relu(BN_l(h_{l-1} W_l + b_l))      l = 1 .. L-1   (hidden layers)
    y   = h_{L-1} W_L + b_L                                       (linear output)

with ``BN(u) = scale * (u - mean_B u) / sqrt(var_B u + eps) + shift`` over the batch axis, and
``leaky_relu(u) = max(u, slope * u)``. This is the encoder of paper 2 (Reizinger et al., ICLR 2025,
code klindtlab/csi, from brendel-group/cl-ica): widths ``d, 10d, 50d, 50d, 50d, 50d, 10d, d``
(:func:`csi_widths`), BatchNorm and LeakyReLU.

**Batch statistics only.** ``BN`` always normalises with the statistics of the batch it is given:
there are no running averages, so parameters stay a plain pytree that one gradient step updates
(``jaxsparse.train`` carries no mutable state). Evaluate on a large batch at once (thousands of
samples): its statistics are then the population statistics that PyTorch's running averages
estimate (the "precise BN" of Wu & Johnson 2021). Each output then depends on the rest of its batch.

**Initialisation** as PyTorch's ``nn.Linear``: weights and biases ``U(-1/sqrt(n_in), 1/sqrt(n_in))``;
BN ``scale = 1``, ``shift = 0``.

Example::

    params = init(jax.random.key(0), csi_widths(5))
    f = apply(params, x)                                  # x: [1024, 5] -> f: [1024, 5]
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.models.matmul import matmul

PyTree = Any
BN_EPS = 1e-5  # PyTorch's BatchNorm1d default


def csi_widths(d: int, *, n_hidden: int = 4, wide: int = 50, narrow: int = 10) -> tuple[int, ...]:
    """The csi/cl-ica encoder's widths ``(d, narrow d, wide d x n_hidden, narrow d, d)``."""
    d = positive_int("d", d)
    n_hidden = positive_int("n_hidden", n_hidden, minimum=0)
    return (d, narrow * d) + (wide * d,) * n_hidden + (narrow * d, d)


def init(key: jax.Array, widths: Sequence[int], *, batch_norm: bool = True, dtype=jnp.float32) -> PyTree:
    """Parameters ``{"layers": [{"w": [n_in, n_out], "b": [n_out], ("scale", "shift"): [n_out]}, ...]}``.

    Args:
      key: PRNG key (``jax.vmap`` over keys gives one net per seed).
      widths: ``(n_0, ..., n_L)``, at least two entries, all >= 1.
      batch_norm: add BN's ``scale`` and ``shift`` to every hidden layer.
      dtype: floating dtype of the parameters.
    """
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) < 2:
        raise ValueError(f"`widths` must be a sequence of at least 2 layer widths, got {widths!r}")
    widths = [positive_int(f"widths[{i}]", w) for i, w in enumerate(widths)]
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}")
    # one flat uniform draw cut into the tensors: XLA:CPU compiles one draw per shape slowly (seconds
    # each with partitionable threefry), a single flat draw in well under a second
    shapes = [((n_in, n_out), (n_out,)) for n_in, n_out in zip(widths[:-1], widths[1:])]
    sizes = [n_in * n_out + n_out for n_in, n_out in zip(widths[:-1], widths[1:])]
    flat = jax.random.uniform(key, (sum(sizes),), dtype, -1.0, 1.0)
    layers, start = [], 0
    for i, ((w_shape, b_shape), size) in enumerate(zip(shapes, sizes)):
        bound = 1.0 / np.sqrt(w_shape[0])
        chunk = flat[start:start + size] * bound
        start += size
        layer = {"w": chunk[:-b_shape[0]].reshape(w_shape), "b": chunk[-b_shape[0]:]}
        if batch_norm and i < len(widths) - 2:
            layer["scale"] = jnp.ones(b_shape, dtype)
            layer["shift"] = jnp.zeros(b_shape, dtype)
        layers.append(layer)
    return {"layers": layers}


def batch_norm(u: jax.Array, scale: jax.Array, shift: jax.Array, *, eps: float = BN_EPS) -> jax.Array:
    """``scale * (u - mean) / sqrt(var + eps) + shift`` with the (biased) mean and variance over axis 0."""
    mean = jnp.mean(u, axis=0)
    var = jnp.mean(jnp.square(u - mean), axis=0)
    return scale * (u - mean) * jax.lax.rsqrt(var + eps) + shift


def apply(params: PyTree, x: jax.Array, *, slope: float = 0.01, features: bool = False) -> jax.Array:
    """The net's output ``[B, n_L]`` for inputs ``x: [B, n_0]`` (see the module docstring).

    Args:
      params: from :func:`init`.
      x: ``[B, n_0]`` float inputs; with BN, ``B >= 2`` and the batch statistics come from ``x``.
      slope: LeakyReLU negative slope (PyTorch's default 0.01).
      features: return the last hidden layer ``h_{L-1}`` instead of the output.
    """
    layers = params["layers"]
    if not hasattr(x, "ndim") or x.ndim != 2 or x.shape[1] != layers[0]["w"].shape[0]:
        raise ValueError(f"`x` must be [batch, {layers[0]['w'].shape[0]}], got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    h = x
    for layer in layers[:-1]:
        h = matmul(h, layer["w"]) + layer["b"]
        if "scale" in layer:
            h = batch_norm(h, layer["scale"], layer["shift"])
        h = jax.nn.leaky_relu(h, slope)
    if features:
        return h
    return matmul(h, layers[-1]["w"]) + layers[-1]["b"]

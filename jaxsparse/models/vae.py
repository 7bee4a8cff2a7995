"""The convolutional VAE of SlowVAE and β-VAE (Higgins et al. 2017), as pure functions over a params dict.

This is the network of the official SlowVAE code (Klindt et al., ICLR 2021, "Towards nonlinear
disentanglement in natural data with temporal sparse coding"; bethgelab/slow_disentanglement,
``scripts/model.py``, class ``BetaVAE_H``), written NHWC. For a 64×64×C image and ``n`` latents::

    encoder                                        decoder
    conv 4×4 stride 2 pad 1, C  -> 32, ReLU  32²   dense n -> 256, ReLU                     1²
    conv 4×4 stride 2 pad 1, 32 -> 32, ReLU  16²   conv^T 4×4 stride 1 pad 0, 256 -> 64, ReLU  4²
    conv 4×4 stride 2 pad 1, 32 -> 64, ReLU   8²   conv^T 4×4 stride 2 pad 1, 64 -> 64, ReLU   8²
    conv 4×4 stride 2 pad 1, 64 -> 64, ReLU   4²   conv^T 4×4 stride 2 pad 1, 64 -> 32, ReLU  16²
    conv 4×4 valid,          64 -> 256, ReLU  1²   conv^T 4×4 stride 2 pad 1, 32 -> 32, ReLU  32²
    dense 256 -> 2n: (mean, logvar)                conv^T 4×4 stride 2 pad 1, 32 -> C         64²  (logits)

(This is Higgins et al.'s "H" network, not Burgess et al.'s "B" one with dense 256-256 layers: the
official code builds only ``BetaVAE_H``.) 10 latents by default; 763,285 parameters for 64×64×1.

**32×32 images** drop the second stride-2 convolution (the 32 -> 32 one) and its mirror, the
fourth transposed convolution, so each resolution keeps the widths of the 64×64 net at the same
spatial size (32 channels at 16², 64 at 8² and 4²)::

    encoder: conv C->32 (16²), conv 32->64 (8²), conv 64->64 (4²), conv 64->256 valid (1²), dense 256->2n
    decoder: dense n->256, conv^T 256->64 (4²), conv^T 64->64 (8²), conv^T 64->32 (16²), conv^T 32->C (32²)

That net has 730,453 parameters for 32×32×1 (32,832 fewer: one 32->32 layer of 16,416 in each
half) and 41% of the 64×64 net's FLOPs (12.1 M against 29.4 M per image, :func:`vae_flops`; the
4×4 layers at the bottleneck do not shrink with the image).

**Initialisation** as the official ``kaiming_init``: convolutions and dense layers get Kaiming-normal
weights ``N(0, 2 / fan_in)`` (``fan_in = k·k·C_in`` or ``n_in``) and zero biases. The official
``kaiming_init`` only matches ``nn.Linear`` and ``nn.Conv2d``, and ``nn.ConvTranspose2d`` is not a
``nn.Conv2d``, so the transposed convolutions keep PyTorch's default (torch 1.4 pinned by the
official code): weights and biases ``U(-b, b)``, ``b = 1 / sqrt(C_out · k · k)`` (PyTorch takes
``fan_in`` from the weight's second axis, which for a transposed convolution is ``C_out``). We
reproduce that, quirk included.

Parameters (plain nested dicts; kernels ``[k, k, C_in, C_out]``)::

    {"encoder": {"conv_0".."conv_{L-1}": stride-2 convs, "conv_L": the 4×4 valid conv, "dense": {"w": [256, 2n], "b"}},
     "decoder": {"dense": {"w": [n, 256], "b"}, "deconv_0": the 1² -> 4² conv^T, "deconv_1".."deconv_L": stride-2}}

with ``L = log2(image_size / 4)`` stride-2 layers (4 for 64×64, 3 for 32×32). From PyTorch weights
``w_torch``: a ``Conv2d`` kernel (``[C_out, C_in, k, k]``) is ``w_torch.transpose(2, 3, 1, 0)`` here, a
``ConvTranspose2d`` one (``[C_in, C_out, k, k]``) is ``w_torch.transpose(2, 3, 0, 1)``, a ``Linear``
weight is transposed; the tests check the whole net against PyTorch this way.

Example::

    params = init(jax.random.key(0), n_latents=10, image_size=64)
    mean, logvar = encode(params, x)                      # x: [B, 64, 64, 1] in [0, 1]
    logits = decode(params, sample_posterior(key, mean, logvar))   # [B, 64, 64, 1]

The losses (Bernoulli reconstruction, KL, the SlowVAE Laplace transition term) are in
:mod:`jaxsparse.losses`.

**Speed on CPU.** Every convolution goes through :func:`jaxsparse.models.conv.conv2d`, whose
gradients are canonical NHWC/HWIO convolutions (with JAX's own transpose rules a training step
inside ``lax.scan`` ran 17× slower on XLA:CPU) and which, on CPU, unrolls a vmapped stack of
kernels (seeds) into separate convolutions instead of one grouped convolution (XLA:CPU runs
grouped convolutions slowly: a value-and-gradient at 32×32 took 82 ms for one net, 389 ms for two
vmapped nets and 976 ms for four before). The stride-2 transposed convolutions run as four phase
convolutions (:func:`_conv_transpose_s2`), 2-3× faster than the dilated-input form.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsparse._checks import positive_int
from jaxsparse.models.conv import conv2d

PyTree = Any

IMAGE_SIZES = (32, 64)
KERNEL = 4
HIDDEN = 256
# widths of the stride-2 convolutions at 64×64; smaller images drop the earliest (widest-resolution) ones
# after the first: 32×32 keeps (32, 64, 64)
_WIDTHS_64 = (32, 32, 64, 64)


def _widths(image_size: int) -> tuple[int, ...]:
    if image_size == 64:
        return _WIDTHS_64
    if image_size == 32:
        return (_WIDTHS_64[0],) + _WIDTHS_64[2:]
    raise ValueError(f"`image_size` must be one of {IMAGE_SIZES}, got {image_size}")


def _layers(image_size: int, channels: int, n_latents: int):
    """``(encoder convs, decoder conv^Ts)`` as lists of ``(name, C_in, C_out)``."""
    widths = _widths(image_size)
    enc = [(f"conv_{i}", c_in, c_out) for i, (c_in, c_out) in enumerate(zip((channels,) + widths[:-1], widths))]
    enc.append((f"conv_{len(widths)}", widths[-1], HIDDEN))
    rev = widths[::-1]  # (64, 64, 32, 32) at 64×64
    dec = [("deconv_0", HIDDEN, rev[0])]
    dec += [(f"deconv_{i + 1}", c_in, c_out) for i, (c_in, c_out) in enumerate(zip(rev, rev[1:] + (channels,)))]
    return enc, dec


def init(key: jax.Array, *, n_latents: int = 10, image_size: int = 64, channels: int = 1,
         dtype=jnp.float32) -> PyTree:
    """Parameters of the conv VAE for ``[image_size, image_size, channels]`` images (see the module docstring).

    Args:
      key: PRNG key (``jax.vmap`` over a stack of keys gives a stack of nets, one per seed).
      n_latents: latent dimension ``n`` (the encoder outputs ``2n``: mean and log-variance).
      image_size: 64 (the official net) or 32 (one stride-2 layer fewer in each half).
      channels: image channels ``C`` (1 for sprites).
      dtype: floating dtype of the parameters.

    Returns:
      ``{"encoder": {...}, "decoder": {...}}`` of arrays of ``dtype``.
    """
    n = positive_int("n_latents", n_latents)
    image_size = positive_int("image_size", image_size)
    channels = positive_int("channels", channels)
    _widths(image_size)  # validates image_size
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}")
    return _init(key, n, image_size, channels, jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _init(key, n, image_size, channels, dtype):
    # One flat normal draw for the Kaiming-initialised tensors and one flat uniform draw for the transposed
    # convolutions, cut into the tensors: XLA compiles a multi-axis draw slowly on CPU (several seconds per
    # shape with partitionable threefry), a flat one in about a second.
    enc_layers, dec_layers = _layers(image_size, channels, n)
    normal_shapes = [(KERNEL, KERNEL, c_in, c_out) for _, c_in, c_out in enc_layers] + [(HIDDEN, 2 * n), (n, HIDDEN)]
    uniform_shapes = [s for _, c_in, c_out in dec_layers for s in ((KERNEL, KERNEL, c_in, c_out), (c_out,))]
    k_normal, k_uniform = jax.random.split(key)
    normals = _cut(jax.random.normal(k_normal, (_total(normal_shapes),), dtype), normal_shapes)
    uniforms = _cut(jax.random.uniform(k_uniform, (_total(uniform_shapes),), dtype, -1.0, 1.0), uniform_shapes)

    def kaiming(w):  # N(0, 2 / fan_in), fan_in = all axes but the output one
        return float(np.sqrt(2.0 / np.prod(w.shape[:-1]))) * w

    encoder = {name: {"w": kaiming(w), "b": jnp.zeros((c_out,), dtype)}
               for (name, _, c_out), w in zip(enc_layers, normals)}
    encoder["dense"] = {"w": kaiming(normals[-2]), "b": jnp.zeros((2 * n,), dtype)}
    decoder = {"dense": {"w": kaiming(normals[-1]), "b": jnp.zeros((HIDDEN,), dtype)}}
    for i, (name, _, c_out) in enumerate(dec_layers):  # PyTorch's default: U(-b, b), b = 1 / sqrt(C_out k k)
        bound = float(1.0 / np.sqrt(c_out * KERNEL * KERNEL))
        decoder[name] = {"w": bound * uniforms[2 * i], "b": bound * uniforms[2 * i + 1]}
    return {"encoder": encoder, "decoder": decoder}


def _total(shapes) -> int:
    return int(sum(np.prod(s) for s in shapes))


def _cut(flat: jax.Array, shapes) -> list[jax.Array]:
    ends = np.cumsum([int(np.prod(s)) for s in shapes])
    return [flat[end - int(np.prod(s)):end].reshape(s) for s, end in zip(shapes, ends)]


def _n_stride2(params: PyTree) -> int:
    return sum(1 for k in params["encoder"] if k.startswith("conv_")) - 1


def image_shape(params: PyTree) -> tuple[int, int, int]:
    """``(H, W, C)`` of the images ``params`` was built for."""
    size = 4 * 2 ** _n_stride2(params)
    return size, size, int(params["encoder"]["conv_0"]["w"].shape[2])


def n_latents_of(params: PyTree) -> int:
    """The latent dimension ``n`` of ``params``."""
    return int(params["decoder"]["dense"]["w"].shape[0])


def _conv(p, h, stride, pad):
    return conv2d(h, p["w"], stride, ((pad, pad), (pad, pad))) + p["b"]


def _dense_to_map(p, h):
    """PyTorch's ``ConvTranspose2d(k)`` (stride 1, no padding) of a 1×1 map ``h: [B, C]``: ``out[y, x] = h W[y, x]``.
    """
    return jnp.einsum("bc,yxco->byxo", h, p["w"]) + p["b"]


def _map_to_dense(p, h):
    """A ``k×k`` valid convolution of a ``k×k`` map ``h: [B, k, k, C]`` (one output pixel), ``[B, C_out]``."""
    return jnp.einsum("byxc,yxco->bo", h, p["w"]) + p["b"]


def _conv_transpose_s2(p, h):
    """PyTorch's ``ConvTranspose2d(4, stride=2, padding=1)``, ``[B, H, W, C] -> [B, 2H, 2W, C_out]``, by phases.

    With ``out[y] = sum_i in[i] W[y - 2i + 1]`` (one axis), the even outputs ``y = 2m`` take
    ``in[m-1] W[3] + in[m] W[1]`` and the odd ones ``y = 2m + 1`` take ``in[m] W[2] + in[m+1] W[0]``. So
    each of the four output phases is a stride-1 ``2×2`` convolution of the input, with the kernel taps
    ``W[3::-2]`` or ``W[2::-2]`` per axis and one pixel of padding before or after, and the phases are
    interleaved. The same numbers as the dilated-input form of the transposed convolution, without
    its multiplies by the dilation zeros; on CPU a training step runs 2-3 times faster this way.
    """
    w = p["w"]
    taps, pads = (w[3::-2], w[2::-2]), ((1, 0), (0, 1))
    rows = []
    for a in (0, 1):
        cols = [conv2d(h, taps[a][:, (3, 2)[b]::-2], 1, (pads[a], pads[b])) for b in (0, 1)]
        rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (column phase), C_out]
    out = jnp.stack(rows, axis=2)  # [B, H, 2 (row phase), W, 2, C_out]
    b_, hh, _, ww, _, c = out.shape
    return out.reshape(b_, 2 * hh, 2 * ww, c) + p["b"]


def _check_float(name: str, x: Any) -> jax.Array:
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must have a floating dtype (float32 values in [0, 1] for images), got {x.dtype}")
    return jnp.asarray(x)


def features(params: PyTree, x: jax.Array) -> jax.Array:
    """The encoder's last hidden layer ``[..., 256]`` (after the 4×4 valid convolution and its ReLU).

    Reads only the convolutions of ``params["encoder"]``, so a classifier can reuse the encoder's
    trunk with its own head: ``{"encoder": {conv layers}, "head": ...}``.

    Args:
      params: from :func:`init` (or any dict whose ``"encoder"`` holds its ``conv_*`` layers).
      x: ``[..., H, W, C]`` float images in ``[0, 1]`` (NHWC; leading axes are batch axes), with
        ``(H, W, C)`` those of ``params`` (:func:`image_shape`).
    """
    x = _check_float("x", x)
    shape = image_shape(params)
    if x.ndim < 3 or tuple(x.shape[-3:]) != shape:
        raise ValueError(f"`x` must have shape [..., {shape[0]}, {shape[1]}, {shape[2]}] (NHWC images the params "
                         f"were built for), got {tuple(x.shape)}")
    lead = x.shape[:-3]
    h = x.reshape((-1,) + shape)
    enc = params["encoder"]
    n_s2 = _n_stride2(params)
    for i in range(n_s2):
        h = jax.nn.relu(_conv(enc[f"conv_{i}"], h, 2, 1))
    h = jax.nn.relu(_map_to_dense(enc[f"conv_{n_s2}"], h))
    return h.reshape(lead + h.shape[-1:])


def encode(params: PyTree, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Posterior ``q(z | x) = N(mean, exp(logvar))`` of images ``x``.

    Args:
      params: from :func:`init`.
      x: ``[..., H, W, C]`` float images in ``[0, 1]`` (NHWC; leading axes are batch axes), with
        ``(H, W, C)`` those of ``params`` (:func:`image_shape`).

    Returns:
      ``(mean, logvar)``, each ``[..., n_latents]``: the first and second halves of the encoder's
      ``2n`` outputs (a dense layer on :func:`features`), as the official code splits them.
    """
    h = features(params, x)
    dense = params["encoder"]["dense"]
    out = h @ dense["w"] + dense["b"]
    n = out.shape[-1] // 2
    return out[..., :n], out[..., n:]


def decode(params: PyTree, z: jax.Array) -> jax.Array:
    """Bernoulli logits ``[..., H, W, C]`` of ``p(x | z)`` for latents ``z: [..., n_latents]``.

    ``sigmoid(logits)`` is the mean image; the losses take the logits.
    """
    z = _check_float("z", z)
    n = n_latents_of(params)
    if z.ndim < 1 or z.shape[-1] != n:
        raise ValueError(f"`z` must have shape [..., n_latents={n}], got {tuple(z.shape)}")
    lead = z.shape[:-1]
    dec = params["decoder"]
    h = jax.nn.relu(z.reshape(-1, n) @ dec["dense"]["w"] + dec["dense"]["b"])
    h = _dense_to_map(dec["deconv_0"], h)
    for i in range(1, _n_stride2(params) + 1):
        h = _conv_transpose_s2(dec[f"deconv_{i}"], jax.nn.relu(h))
    return h.reshape(lead + h.shape[1:])


def sample_posterior(key: jax.Array, mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """One reparameterised draw ``z = mean + exp(logvar / 2) · eps``, ``eps ~ N(0, I)``, of the shape of ``mean``."""
    return mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, jnp.shape(mean), jnp.result_type(mean))


def n_params(*, n_latents: int = 10, image_size: int = 64, channels: int = 1) -> int:
    """Number of parameters of :func:`init`'s net (763,285 for the official 64×64×1, 10 latents)."""
    n = positive_int("n_latents", n_latents)
    enc, dec = _layers(image_size, positive_int("channels", channels), n)
    convs = sum(KERNEL * KERNEL * c_in * c_out + c_out for _, c_in, c_out in enc + dec)
    return convs + HIDDEN * 2 * n + 2 * n + n * HIDDEN + HIDDEN


def _taps(size_in: int, stride: int, pad: int) -> int:
    """Multiply-adds per channel pair, along one axis, of a ``KERNEL``-wide convolution of ``size_in`` pixels:
    the window taps that land on real pixels (padding taps skipped)."""
    size_out = (size_in + 2 * pad - KERNEL) // stride + 1
    return sum(1 for o in range(size_out) for t in range(KERNEL) if 0 <= stride * o - pad + t < size_in)


def vae_flops(*, n_latents: int = 10, image_size: int = 64, channels: int = 1) -> int:
    """Forward FLOPs per image of :func:`encode` then :func:`decode` ("image in, logits out").

    One multiply-add is 2 FLOPs; biases and ReLUs are not counted (they add about 1%). A layer counts
    the multiply-adds that touch real pixels: a convolution skips the window taps that fall on its
    zero padding (``4×4`` stride 2 pad 1 from ``S²`` pixels: ``(2S - 2)²`` taps per channel pair,
    not ``(S/2)² · 16``), and a transposed convolution, the adjoint of a convolution, counts the taps
    of that convolution (no multiplies by its dilation zeros or by what the padding crops); a dense
    layer ``2 · n_in n_out``. This is what XLA's cost analysis counts for the compiled net. The
    sampling ``z = mean + std · eps`` is not counted.

    Example::

        vae_flops(image_size=64)   # 29,425,152 (encoder 14,715,136)
        vae_flops(image_size=32)   # 12,140,032
    """
    n = positive_int("n_latents", n_latents)
    enc, dec = _layers(image_size, positive_int("channels", channels), n)
    total, size = 0, image_size
    for _, c_in, c_out in enc[:-1]:
        total += 2 * _taps(size, 2, 1) ** 2 * c_in * c_out
        size //= 2
    total += 2 * _taps(size, 1, 0) ** 2 * enc[-1][1] * HIDDEN  # 4×4 valid conv on 4×4: 16 taps
    total += 2 * HIDDEN * 2 * n + 2 * n * HIDDEN  # the two dense layers
    total += 2 * KERNEL * KERNEL * HIDDEN * dec[0][2]  # 1² -> 4²: every tap on the one input pixel
    size = KERNEL
    for _, c_in, c_out in dec[1:]:
        size *= 2
        total += 2 * _taps(size, 2, 1) ** 2 * c_in * c_out  # adjoint of a conv from the output size
    return total

"""2-D convolution for conv nets trained as vmapped seed sweeps: fast gradients and fast ``vmap`` on CPU.

:func:`conv2d` is ``lax.conv_general_dilated`` (NHWC images, HWIO kernels) with two changes that
only affect speed, never values:

1. **Gradients as canonical convolutions** (``jax.custom_vjp``). JAX's own transpose rules emit the
   gradient convolutions with swapped-axis dimension labels; XLA's CPU backend rewrites those into
   the canonical form at the top level of a program but not inside a loop body, where they ran
   10-40× slower (a SlowVAE training step under ``lax.scan`` took 2.3 s instead of 0.13 s).
2. **Seeds unrolled on CPU** (``jax.custom_batching.custom_vmap``). ``jax.vmap`` over a stack of
   kernels (one net per seed) turns a convolution into a grouped one (``feature_group_count`` = the
   number of nets), which XLA's CPU backend runs far slower than the same convolutions one at a
   time: on 2 cores 3 vmapped SlowVAE nets stepped at 0.41× the speed of 3 single-net programs
   run in turn (``python benchmarks/slowvae_steps.py``). With :data:`UNROLL_VMAP` (default: on
   CPU only), a vmapped axis of the kernel is unrolled into separate convolutions, and a vmapped
   axis of the images alone is folded into the batch axis. GPUs run grouped convolutions well and
   keep JAX's rule.

Example::

    out = conv2d(x, w, 2, ((1, 1), (1, 1)))                   # x [B, H, W, C], w [4, 4, C, C_out]
    outs = jax.vmap(conv2d, (None, 0, None, None))(x, ws, 2, ((1, 1), (1, 1)))  # one per kernel
"""

from __future__ import annotations

import functools

import jax
from jax import custom_batching

Padding = tuple[tuple[int, int], tuple[int, int]]
DIMS = ("NHWC", "HWIO", "NHWC")

UNROLL_VMAP: bool | None = None
"""Unroll vmapped kernels into separate convolutions: ``None`` (default) on CPU only; ``True`` or
``False`` everywhere. Read when a program is traced."""


def _unroll() -> bool:
    return jax.default_backend() == "cpu" if UNROLL_VMAP is None else bool(UNROLL_VMAP)


@functools.lru_cache(maxsize=None)
def _conv(stride: tuple[int, int], padding: Padding, lhs_dilation: tuple[int, int], rhs_dilation: tuple[int, int]):
    """``conv(h, w)`` for fixed options, with the CPU batching rule of the module docstring."""

    def plain(h, w):
        return jax.lax.conv_general_dilated(h, w, stride, padding, lhs_dilation=lhs_dilation,
                                            rhs_dilation=rhs_dilation, dimension_numbers=DIMS)

    conv = custom_batching.custom_vmap(plain)

    @conv.def_vmap
    def rule(axis_size, in_batched, h, w):
        h_batched, w_batched = in_batched
        if not w_batched:  # one kernel for every image stack: fold the vmapped axis into the batch
            out = conv(h.reshape((-1,) + h.shape[2:]), w)
            return out.reshape(h.shape[:2] + out.shape[1:]), True
        if not _unroll():
            return jax.vmap(plain, (0 if h_batched else None, 0))(h, w), True
        outs = [conv(h[i] if h_batched else h, w[i]) for i in range(axis_size)]
        return jax.numpy.stack(outs), True

    return conv


def _apply(h, w, stride, padding, lhs_dilation=(1, 1), rhs_dilation=(1, 1)):
    return _conv(tuple(stride), tuple(tuple(p) for p in padding), tuple(lhs_dilation), tuple(rhs_dilation))(h, w)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv2d(h: jax.Array, w: jax.Array, stride: int, padding: Padding) -> jax.Array:
    """``out[b, y, x, o] = sum_{u, v, i} h_pad[b, s y + u, s x + v, i] w[u, v, i, o]`` (NHWC/HWIO).

    Args:
      h: ``[B, H, W, C_in]`` images.
      w: ``[k_h, k_w, C_in, C_out]`` kernel.
      stride: ``s``, the same along both axes.
      padding: ``((top, bottom), (left, right))`` zero padding.

    Backward, with ``g`` the output gradient:

    - ``dh``: ``g`` dilated by the stride, correlated with the flipped kernel ``w[::-1, ::-1]`` with its
      channel axes swapped, padded by ``k - 1 - pad`` (plus the input rows the window never reached);
    - ``dw[u, v, i, o] = sum_{b, y, x} h_pad[b, s y + u, s x + v, i] g[b, y, x, o]``: ``h`` with channels and
      batch swapped (``[C_in, H, W, B]``) correlated with ``g`` as a ``[Y, X, B, C_out]`` kernel dilated by
      the stride.

    These are the numbers of JAX's own transpose rules (tested). Reverse mode only (no ``jax.jvp``).
    """
    return _apply(h, w, (stride, stride), padding)


def _conv2d_fwd(h, w, stride, padding):
    return conv2d(h, w, stride, padding), (h, w)


def _conv2d_bwd(stride, padding, res, g):
    h, w = res
    k = w.shape[:2]
    # input rows/columns past the last window (when (H + pads - k) is not a multiple of the stride)
    rest = [h.shape[1 + a] + sum(padding[a]) - (stride * (g.shape[1 + a] - 1) + k[a]) for a in (0, 1)]
    pads = [(k[a] - 1 - padding[a][0], k[a] - 1 - padding[a][1] + rest[a]) for a in (0, 1)]
    dh = _apply(g, w[::-1, ::-1].transpose(0, 1, 3, 2), (1, 1), pads, lhs_dilation=(stride, stride))
    dw = _apply(h.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3), (1, 1), padding, rhs_dilation=(stride, stride))
    dw = dw[:, :k[0], :k[1]].transpose(1, 2, 0, 3)  # [C_in, kh', kw', C_out] -> [kh, kw, C_in, C_out]
    return dh, dw


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)

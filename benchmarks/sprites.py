"""Sprite rendering speed: the jitted JAX renderer against a vectorised NumPy renderer of the same scene.

Both renderers test every pixel centre against the sprite's implicit function (jaxsparse.data.sprites);
the NumPy one (below) is written independently, batched over images with broadcasting, in float32,
and its images are checked against ours before timing. "vs NumPy" = NumPy time / JAX time (> 1
means the jitted renderer is faster). The "pairs" rows time what a SlowVAE training step does:
draw LAP pairs from a key and render both frames, in one jitted function.

    pip install -e ".[test,bench]" && python benchmarks/sprites.py [--repeats 5]

Measured (images/s, best of 10; the CPU host was shared with other jobs, so its figures vary by
about 2x between runs; every row agreed with NumPy on all pixels):

    device                         image  batch   JAX img/s   NumPy img/s   vs NumPy   pairs img/s
    CPU, 2 cores (jax 0.10.2)      64x64     64     165,175         5,514      30.0x        74,882
                                   64x64   4096      47,489         3,882      12.2x        21,164
                                   32x32     64     280,829        25,525      11.0x       329,457
                                   32x32   4096   1,360,560        18,340      74.2x       200,120
    NVIDIA H200 (jax 0.11.2;       64x64     64     801,142         3,424     234.0x     1,378,939
      NumPy on its 16-core host)   64x64   4096  37,091,706         3,045   12179.4x    42,547,003
                                   32x32     64     784,900        12,015      65.3x     1,462,205
                                   32x32   4096  45,803,234        11,780    3888.2x    60,944,672

A SlowVAE batch (32 pairs at 32x32) thus costs well under a millisecond to generate on either.
"""

from __future__ import annotations

import argparse
import functools

import jax
import numpy as np

from jaxsparse.data import sprites
from timing import best_time


def render_numpy(factors: np.ndarray, image_size: int) -> np.ndarray:
    """Baseline: the same point-sampled scene in NumPy, ``[B, S, S, 1]`` float32."""
    s = image_size
    f = np.asarray(factors)
    shape = f[:, 0][:, None, None]
    theta = sprites.ORIENTATIONS[f[:, 2]]
    cos, sin = (np.cos(theta).astype(np.float32)[:, None, None], np.sin(theta).astype(np.float32)[:, None, None])
    centres = (s * (0.5 + (sprites.POSITIONS - 0.5) * sprites.POSITION_SPAN)).astype(np.float32)
    grid = np.arange(s, dtype=np.float32) + 0.5
    dx = (grid[None, :] - centres[f[:, 3]][:, None])[:, None, :]  # [B, 1, S]
    dy = (centres[f[:, 4]][:, None] - grid[None, :])[:, :, None]  # [B, S, 1]
    inv = (1.0 / (sprites.HALF_SIZE * sprites.SCALES[f[:, 1]] * s)).astype(np.float32)[:, None, None]
    vx = (cos * dx + sin * dy) * inv
    vy = (cos * dy - sin * dx) * inv
    square = np.maximum(np.abs(vx), np.abs(vy)) <= 1
    ellipse = vx**2 + (vy / np.float32(sprites.ELLIPSE_ASPECT)) ** 2 <= 1
    a = np.float32(1.139) * vx
    b = np.float32(1.139) * vy + np.float32(0.11825)
    heart = (a * a + b * b - 1) ** 3 - a * a * b**3 <= 0
    img = np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))
    return img.astype(np.float32)[..., None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 32])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 4096])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}, numpy {np.__version__}")
    print(f"{'image':>7} {'batch':>6} {'JAX img/s':>12} {'NumPy img/s':>12} {'vs NumPy':>9} {'pairs img/s':>12} {'agree':>9}")
    for s in args.sizes:
        render = jax.jit(functools.partial(sprites.render, image_size=s))

        @functools.partial(jax.jit, static_argnums=1)
        def pairs(key, n, s=s):
            f0, f1 = sprites.lap_pairs(key, n)
            return sprites.render(f0, image_size=s), sprites.render(f1, image_size=s)

        for b in args.batches:
            f = sprites.sample_factors(jax.random.key(0), b)
            f_np = np.asarray(f)
            agree = float(np.mean(np.asarray(render(f)) == render_numpy(f_np, s)))
            t_jax = best_time(lambda: render(f).block_until_ready(), args.repeats)
            t_np = best_time(lambda: render_numpy(f_np, s), args.repeats)
            key = jax.random.key(1)
            t_pairs = best_time(lambda: jax.block_until_ready(pairs(key, b)), args.repeats)
            print(
                f"{s:>4}x{s:<2} {b:>6} {b / t_jax:>12,.0f} {b / t_np:>12,.0f} {t_np / t_jax:>8.1f}x "
                f"{2 * b / t_pairs:>12,.0f} {agree:>9.6f}"
            )


if __name__ == "__main__":
    main()

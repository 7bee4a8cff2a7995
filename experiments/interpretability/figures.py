"""Figures shared by paper 5's experiments: each unit's top and bottom stimuli as one mosaic, and the
index of every readout per seed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def stimulus_grid(examples: dict[str, tuple[np.ndarray, np.ndarray]], images: np.ndarray, path: Path, *,
                  n_show: int = 6, max_units: int | None = None, title: str = "") -> str:
    """Each unit's ``n_show`` top and bottom stimuli, one row per unit, readouts one after another.

    Args:
      examples: ``{readout: (units [n_stimuli, k], index [k])}``; the first ``max_units`` units of each
        readout are drawn (all with ``None``), labelled with their 2AFC index ("dead" where it is NaN).
      images: ``[n_stimuli, H, W]`` grey images in ``[0, 1]`` (drawn dark on light).
      path: the PNG to write.
    Returns:
      the file's name.
    """
    plt = _pyplot()
    rows = [(m, u) for m, (units, _) in examples.items() for u in range(units.shape[1])[:max_units]]
    h, w = images.shape[1:3]
    pad, gap = 1, w  # pixels between images, and the gap between the top and the bottom block
    canvas = np.ones((len(rows) * (h + pad), 2 * n_show * (w + pad) + gap))
    for r, (m, u) in enumerate(rows):
        order = np.argsort(-examples[m][0][:, u], kind="stable")
        for c, n in enumerate(list(order[:n_show]) + list(order[::-1][:n_show][::-1])):
            x0 = c * (w + pad) + (gap if c >= n_show else 0)
            canvas[r * (h + pad):r * (h + pad) + h, x0:x0 + w] = 1.0 - images[n]
    fig, ax = plt.subplots(figsize=(canvas.shape[1] / 14 + 1.6, canvas.shape[0] / 14 + 0.4))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([r * (h + pad) + h / 2 for r in range(len(rows))],
                  [f"{m} {u}: " + ("dead" if np.isnan(examples[m][1][u]) else f"{examples[m][1][u]:.2f}")
                   for m, u in rows], fontsize=6)
    ax.set_xticks([n_show * (w + pad) / 2, n_show * (w + pad) + gap + n_show * (w + pad) / 2], ["top", "bottom"])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title or "each unit's top and bottom stimuli, with its 2AFC index", fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def index_panels(runs: list[dict[str, Any]], panels: list[tuple[str, list[tuple[str, str]]]], path: Path, *,
                 chance: float | None = 0.5) -> str:
    """One panel per ``(y label, [(x tick, key in runs), ...])``: every seed's value as a dot and the mean as a
    bar, per tick."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (label, ticks) in zip(axes[0], panels):
        for j, (_, key) in enumerate(ticks):
            v = [r[key] for r in runs if key in r]
            ax.scatter([j] * len(v), v, s=18)
            if v:
                ax.hlines(np.mean(v), j - 0.25, j + 0.25, color="k")
        ax.set_xticks(range(len(ticks)), [t for t, _ in ticks], fontsize=8)
        ax.set_ylabel(label)
        if chance is not None and "index" in label:
            ax.axhline(chance, color="grey", lw=0.6, ls=":")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name

"""Small labelled image sets that ship inside a PyPI package (no download at run time)."""

from __future__ import annotations

import numpy as np


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits (UCI optdigits test set): images ``float32 [1797, 8, 8]`` in
    ``[0, 1]`` (the 0..16 counts divided by 16) and labels ``int32 [1797]``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int32)

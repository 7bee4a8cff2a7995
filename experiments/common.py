"""Config sections shared by several experiments."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SparseDataConfig:
    """Paper-1 synthetic data (``jaxsparse.data.sparse_coding_data``): ``x = s D``, no noise, N latents,
    M features, exactly K half-normal nonzeros per code; train and test sample counts."""

    n_latents: int = 16
    n_features: int = 8
    k: int = 3
    n_train: int = 1024
    n_test: int = 1024

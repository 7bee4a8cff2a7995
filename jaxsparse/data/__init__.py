"""Procedural data generators. Every function takes a PRNG ``key`` first."""

from jaxsparse.data.sparse import random_dictionary, sparse_codes, sparse_coding_data

__all__ = ["random_dictionary", "sparse_codes", "sparse_coding_data"]

from jaxsparse.data import sprites  # noqa: E402  (procedural dSprites: render, pair samplers)

__all__ += ["sprites"]

from jaxsparse.data import hypersphere  # noqa: E402  (vMF latents on the sphere, invertible MLP mixing)

__all__ += ["hypersphere"]

from jaxsparse.data import activations  # noqa: E402  (activation stores on disk: extract, ActivationStore)
from jaxsparse.data import text  # noqa: E402  (offline text corpora: package docstrings, user files)

__all__ += ["activations", "text"]

from jaxsparse.data import augment  # noqa: E402  (image augmentations for SSL, pure functions of a key)

__all__ += ["augment"]

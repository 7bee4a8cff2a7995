"""jaxsparse: sparse inference, sparse autoencoders and identifiable representation learning in JAX.

Subpackages (imports point down this list): ``train`` -> ``models`` -> ``solvers`` -> ``data``,
with ``eval`` and ``theory`` beside them taking plain arrays.
"""

import jax

# Keys must mean the same thing across JAX versions and device counts (DESIGN.md, "Known pitfalls").
jax.config.update("jax_threefry_partitionable", True)

from jaxsparse import data, eval, solvers  # noqa: E402  (after the config pin)

__all__ = ["data", "eval", "solvers"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """Import ``jaxsparse.train`` on first use: it pulls in optax and orbax, which plain
    ``import jaxsparse`` (data, solvers, metrics) does not need."""
    if name == "train":
        import importlib

        return importlib.import_module("jaxsparse.train")
    raise AttributeError(f"module 'jaxsparse' has no attribute {name!r}")


__all__ += ["train"]

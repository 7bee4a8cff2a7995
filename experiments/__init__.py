"""Experiments, one module or sub-package each; importing this package registers them all.

Each registers ``name -> (config class, build(config) -> Task[, run])`` with
:func:`jaxsparse.train.register`; the ``jaxsparse`` CLI finds them by name. Add a new
experiment by importing its module below.
"""

from experiments import amortisation_gap, sae_synthetic  # noqa: F401

__all__ = ["amortisation_gap", "sae_synthetic"]

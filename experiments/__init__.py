"""Experiments, one module or sub-package each, installed as ``jaxsparse.experiments``.

Each registers ``name -> (config class, build(config) -> Task | {method: Task}[, analyze])`` with
:func:`jaxsparse.train.register` when imported, and is listed as a ``jaxsparse.experiments`` entry
point in ``setup.cfg`` (``name = module``), which is how the ``jaxsparse`` CLI finds it. Add a new
experiment: write its module here and add its entry point (and import it below).
"""

from jaxsparse.experiments import (  # noqa: F401
    amortisation_gap, ce_identifiability, dl_peers, interpretability, llm_saes, rich_lazy, sae_synthetic, slowvae,
    ssl_occam)

__all__ = ["amortisation_gap", "ce_identifiability", "dl_peers", "interpretability", "llm_saes", "rich_lazy",
           "sae_synthetic", "slowvae", "ssl_occam"]

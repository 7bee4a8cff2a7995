"""Paper 5: interpretable directions in activation space and the automated 2AFC interpretability index
(Klindt et al. 2023). Registered: ``interp-superposition`` (:mod:`.superposition`: digit classes as
sparse features in fewer neurons; neurons vs spherical k-means directions vs SAE latents) and
``interp-convnet`` (:mod:`.convnet`: the same readouts, layer by layer, of a conv net trained on digits)."""

from jaxsparse.experiments.interpretability import superposition  # noqa: F401  (registers interp-superposition)

from jaxsparse.experiments.interpretability import convnet  # noqa: F401  (registers interp-convnet)

__all__ = ["convnet", "superposition"]

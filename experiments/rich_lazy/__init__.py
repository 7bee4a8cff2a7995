"""Paper 4: exact lazy/rich dynamics and unbalanced initialisations (Kunin et al., NeurIPS 2024).

Registered experiments: ``rich-lazy-neuron`` (:mod:`.neuron`: the single neuron against its exact
flow). The two-layer ReLU phase diagram and the grokking sweep of the issue are not built yet.
"""

from jaxsparse.experiments.rich_lazy import neuron  # noqa: F401  (registers rich-lazy-neuron)

__all__ = ["neuron"]

"""Paper 4: exact lazy/rich dynamics and unbalanced initialisations (Kunin et al., NeurIPS 2024).

Registered experiments: ``rich-lazy-neuron`` (:mod:`.neuron`: the single neuron against its exact
flow) and ``rich-lazy-grid`` (:mod:`.relu_grid`: the two-layer ReLU teacher-student phase diagram
over scale x delta, Figure 1b) and ``rich-lazy-grokking`` (:mod:`.grokking`: modular addition with a
one-layer transformer, time to grok against the embedding/readout initialisation ratio).
"""

from jaxsparse.experiments.rich_lazy import neuron  # noqa: F401  (registers rich-lazy-neuron)
from jaxsparse.experiments.rich_lazy import grokking  # noqa: F401  (registers rich-lazy-grokking)
from jaxsparse.experiments.rich_lazy import relu_grid  # noqa: F401  (registers rich-lazy-grid)

__all__ = ["grokking", "neuron", "relu_grid"]

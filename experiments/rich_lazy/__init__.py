"""Paper 4: exact lazy/rich dynamics and unbalanced initialisations (Kunin et al., NeurIPS 2024).

Registered experiments: ``rich-lazy-neuron`` (:mod:`.neuron`: the single neuron against its exact
flow) and ``rich-lazy-grid`` (:mod:`.relu_grid`: the two-layer ReLU teacher-student phase diagram
over scale x delta, Figure 1b). The grokking sweep of the issue is not built yet.
"""

from jaxsparse.experiments.rich_lazy import neuron  # noqa: F401  (registers rich-lazy-neuron)
from jaxsparse.experiments.rich_lazy import relu_grid  # noqa: F401  (registers rich-lazy-grid)

__all__ = ["neuron", "relu_grid"]

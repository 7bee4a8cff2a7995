"""Metrics shared by every experiment: arrays in, floats or small dicts out."""

from jaxsparse.eval.compute import flops
from jaxsparse.eval.disentanglement import (
    beta_vae_score,
    dci,
    dci_from_importance,
    explicitness,
    factor_vae_score,
    mig,
    modularity,
    sap,
)
from jaxsparse.eval.directions import project, spherical_kmeans
from jaxsparse.eval.identifiability import linear_r2
from jaxsparse.eval.interpretability import (
    colour_similarity,
    cosine_similarity,
    feature_similarity,
    pixel_similarity,
    two_afc_index,
)
from jaxsparse.eval.probe import linear_probe
from jaxsparse.eval.matching import dictionary_mcc, mcc
from jaxsparse.eval.sparsity import dead_fraction, fvu, l0, support_f1

__all__ = ["dead_fraction", "dictionary_mcc", "flops", "fvu", "l0", "linear_probe", "linear_r2", "mcc", "support_f1"]
__all__ += ["beta_vae_score", "dci", "dci_from_importance", "explicitness", "factor_vae_score", "mig", "modularity", "sap"]
__all__ += ["colour_similarity", "cosine_similarity", "feature_similarity", "pixel_similarity", "project",
            "spherical_kmeans", "two_afc_index"]

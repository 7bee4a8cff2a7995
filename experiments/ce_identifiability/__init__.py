"""Paper 2: cross-entropy and parametric instance discrimination identify the latents up to a linear map.

Reizinger, Bizeul, Juhos, Vogt, Balestriero, Brendel, Klindt, "Cross-entropy is all you need to
invert the data generating process" (ICLR 2025; code klindtlab/csi, a fork of brendel-group/cl-ica).
Latents ``z`` on the sphere S^{d-1} come from a mixture of von Mises–Fisher clusters; a frozen
invertible leaky-ReLU MLP mixes them into observations ``x = g(z)``
(:mod:`jaxsparse.data.hypersphere`). An encoder (:mod:`jaxsparse.models.mlp`, BatchNorm,
LeakyReLU) is trained with softmax cross-entropy through a bias-free linear head
(:func:`jaxsparse.losses.linear_head_cross_entropy`): one row per instance label (parametric
instance discrimination) or per cluster (supervised); InfoNCE (:func:`jaxsparse.losses.info_nce`)
is the contrastive reference. Claim: the features are a linear function of ``z``; scored by the
held-out linear R² on fresh samples (:func:`jaxsparse.eval.linear_r2`), with the singular values
of the fitted map, against a random encoder and the observations themselves.

DisLib part: a conv classifier of the shape of procedural sprites (:mod:`jaxsparse.data.sprites`),
then each continuous factor decoded linearly from its features, against raw pixels.

Command: ``jaxsparse run ce-identifiability`` (the CPU default of :class:`.config.CEConfig`).
"""

from jaxsparse.experiments.ce_identifiability.analysis import analyze
from jaxsparse.experiments.ce_identifiability.config import CEConfig, paper, smoke
from jaxsparse.experiments.ce_identifiability.tasks import build
from jaxsparse.train import register

NAME = "ce-identifiability"

register(NAME, CEConfig, build, analyze=analyze, module=__name__)

__all__ = ["NAME", "CEConfig", "analyze", "build", "paper", "smoke"]

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

Command: ``jaxsparse run ce-identifiability`` (the CPU default of :class:`.config.CEConfig`: d = 5,
κ = 10, 1,000 instance labels, batch 256, 4,000 steps, 3 seeds; sprites 32 × 32, 1,000 steps of 64).
``/usr/bin/time jaxsparse run ce-identifiability`` took 4 min 36 s on 2 idle CPU cores. Held-out
linear R² (mean ± std over 3 seeds): supervised 0.968 ± 0.012, instance discrimination 0.859 ±
0.134 (0.71, 0.95, 0.92); a random encoder 0.155 ± 0.010, the observations themselves 0.700 ±
0.030. Sprites: shape accuracy 0.928 ± 0.021; Pearson r of each factor's linear readout from the
classifier's features / a random conv trunk / raw pixels: scale 0.855 / 0.727 / 0.633, pos_x
0.965 / 0.971 / 0.868, pos_y 0.968 / 0.973 / 0.873, orientation 0.08 / 0.03 / −0.01.
InfoNCE at the same budget (``--set model.methods=infonce --set sprites.enabled=false``): R² 0.984 ±
0.001 with a nearly orthogonal map (s_min/s_max 0.91 ± 0.00, supervised 0.66).

``--set data.dims=5,10 --set train.steps=10000 --set sprites.enabled=false`` (31 min on 2 CPU
cores, partly shared): d = 5: supervised 0.984 ± 0.004, instance 0.948 ± 0.058 (0.88, 0.98, 0.98),
s_min/s_max of the fitted map 0.70 and 0.65; d = 10: supervised 0.881 ± 0.016, instance 0.824 ±
0.037. The paper (500k steps of 1024, 10,240 labels: :func:`.config.paper`) reports 0.986–0.998 at
d = 5 and 0.92–0.93 at d = 10; at 0.5 % of its sample budget d = 10 is not there yet.

On an H200 at the paper's batch and labels, 11 % of its steps (``--set data.dims=5,10 --set
data.n_instances=10240 --set data.batch_size=1024 --set sprites.enabled=false --set train.seeds=5
--set train.steps=53000``, 255 steps/s for the four 5-seed tasks): d = 5 instance 0.996 ± 0.000,
supervised 0.996 ± 0.000; d = 10 instance 0.966 ± 0.005, supervised 0.968 ± 0.004 (every seed
≥ 0.961); random encoder 0.16 / 0.11; s_min/s_max 0.73–0.80.
"""

from jaxsparse.experiments.ce_identifiability.analysis import analyze
from jaxsparse.experiments.ce_identifiability.config import CEConfig, paper, smoke
from jaxsparse.experiments.ce_identifiability.tasks import build
from jaxsparse.train import register

NAME = "ce-identifiability"

register(NAME, CEConfig, build, analyze=analyze, module=__name__)

__all__ = ["NAME", "CEConfig", "analyze", "build", "paper", "smoke"]

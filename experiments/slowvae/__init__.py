"""Paper 6: SlowVAE, disentanglement from temporally sparse transitions, against β-VAE.

Klindt, Schott, Sharma, Ustyuzhaninov, Brendel, Bethge, Paiton, "Towards nonlinear disentanglement
in natural data with temporal sparse coding" (ICLR 2021; code bethgelab/slow_disentanglement).
Pairs of procedural sprites ``(x_{t-1}, x_t)`` (:mod:`jaxsparse.data.sprites`; LAP: sparse
discrete-Laplace transitions of the non-categorical factors; LOC: one factor resampled) train the
Higgins conv VAE (:mod:`jaxsparse.models.vae`, 10 latents, Adam 1e-4, 32 pairs per step) on
:func:`jaxsparse.losses.slowvae_loss`: ``2·recon + β·KL + γ·(Laplace cross-entropy − entropy)``,
SlowVAE β=1, γ=10, λ=6; the β-VAE baseline is the same loss with β=8, γ=0. Every model is scored
by MCC (Spearman, Hungarian), MIG, modularity, DCI, SAP, explicitness, BetaVAE and FactorVAE
(:mod:`jaxsparse.eval.disentanglement`, disentanglement_lib's definitions).

The models of a transition are one engine task whose loss weights are a vmapped grid: each seed's
SlowVAE and β-VAE start from the same parameters and see the same batches, so the headline is a
paired per-seed difference (``results.json["headline"]``: the winner on every seed, or a tie).

Command: ``jaxsparse run slowvae`` (the CPU default of :class:`.config.SlowVAEConfig`: 32 × 32
images, LAP, 3 seeds, 200 steps: a check of the pipeline, far from trained). ``/usr/bin/time
jaxsparse run slowvae`` took 13 min 1 s on 2 idle CPU cores (before vmapped convolutions were
unrolled on CPU, which made its training about 3× faster: ``python benchmarks/slowvae_steps.py``),
SlowVAE ahead on every seed on MCC (0.428 ± 0.035 vs 0.329 ± 0.026) and DCI (0.022 ± 0.009 vs
0.008 ± 0.002); MIG a tie (0.021 vs 0.008, the sign flips on one seed).
Measured at 300 steps (``--set train.steps=300``; 15 min 21 s on 2 idle CPU cores: 468 s training, the
rest scoring): SlowVAE ahead of β-VAE on every seed already, at low levels: MCC 0.456 ± 0.041 vs
0.367 ± 0.018, MIG 0.025 ± 0.006 vs 0.013 ± 0.001, DCI 0.037 ± 0.010 vs 0.016 ± 0.003.

Measured on one H200 (``OUT=out python benchmarks/slowvae_gpu.py train 230 64 3``, which calls :func:`jaxsparse.train.fit` with
:func:`.config.paper`'s 64 × 64 images, batch 32 pairs, 3 seeds, and that script's evaluation
sizes: 10k points for MCC/MIG/modularity, 2000/1000 for SAP, 1000/500 BetaVAE/FactorVAE points; the 6 networks train as one vmapped program at 112 steps/s): after 25k steps
(8 % of the paper's 300k) under LAP, mean ± std over 3 seeds (ddof=1)::

    LAP, 25k steps   MCC            MIG            DCI dis.       BetaVAE        FactorVAE      modularity
    SlowVAE          0.545 ± 0.017  0.208 ± 0.111  0.153 ± 0.062  0.840 ± 0.055  0.729 ± 0.067  0.786 ± 0.080
    β-VAE            0.383 ± 0.035  0.053 ± 0.009  0.035 ± 0.006  0.769 ± 0.040  0.533 ± 0.035  0.776 ± 0.033

SlowVAE is ahead on MCC, MIG and DCI disentanglement on every seed (paired differences MCC +0.11,
+0.17, +0.20; MIG +0.03, +0.25, +0.19; DCI +0.05, +0.18, +0.13); modularity and SAP are ties.
Under LOC (one factor resampled, 20k steps): MCC 0.514 ± 0.051 vs 0.390 ± 0.037, MIG 0.281 ±
0.124 vs 0.048 ± 0.025, SlowVAE ahead on every seed. DCI and explicitness of the LAP models were
scored afterwards on CPU from the returned parameters (DCI's boosted trees take about a minute
per model). The paper trains 300k steps and reports SlowVAE above β-VAE on MCC and MIG under LAP;
our shorter runs agree in direction, not in level.
"""

from jaxsparse.experiments.slowvae.analysis import analyze
from jaxsparse.experiments.slowvae.config import SlowVAEConfig, paper, smoke
from jaxsparse.experiments.slowvae.tasks import build
from jaxsparse.train import register

NAME = "slowvae"

register(NAME, SlowVAEConfig, build, analyze=analyze, module=__name__)

__all__ = ["NAME", "SlowVAEConfig", "analyze", "build", "paper", "smoke"]

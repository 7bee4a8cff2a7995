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

Command: ``jaxsparse run slowvae`` (CPU default, see :class:`.config.SlowVAEConfig`).
"""

from jaxsparse.experiments.slowvae.analysis import analyze
from jaxsparse.experiments.slowvae.config import SlowVAEConfig, paper, smoke
from jaxsparse.experiments.slowvae.tasks import build
from jaxsparse.train import register

NAME = "slowvae"

register(NAME, SlowVAEConfig, build, analyze=analyze, module=__name__)

__all__ = ["NAME", "SlowVAEConfig", "analyze", "build", "paper", "smoke"]

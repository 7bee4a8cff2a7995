"""Configuration of the SlowVAE experiment (paper 6), with the paper's defaults and a CPU budget.

Command: ``jaxsparse run slowvae`` (SlowVAE and the β-VAE baseline on LAP pairs, 3 seeds, 32 × 32
images, 200 steps: a CPU budget that checks the pipeline, far from the paper's 300k steps; see
``experiments/slowvae/__init__.py`` for the runtime and the measured numbers). On 2 CPU cores
scoring the 6 models takes about 7 min, most of it DCI; a training step of the 6 vmapped networks
took 1.6 s while XLA:CPU ran them as grouped convolutions, about 3× less since
:mod:`jaxsparse.models.conv` unrolls the seeds. The paper's setting
(64 × 64 images, 300k steps, LAP and LOC pairs, disentanglement_lib's sample sizes) is
:func:`paper`, a GPU job. Tests use :func:`smoke`.
"""

from __future__ import annotations

import dataclasses

from jaxsparse.models import vae
from jaxsparse.train import ConfigError, TrainConfig

TRANSITIONS = ("lap", "loc", "natural")
METRICS = ("mcc", "mig", "modularity", "dci", "sap", "explicitness", "beta_vae", "factor_vae")
MODELS = ("slowvae", "betavae")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Procedural sprites (:mod:`jaxsparse.data.sprites`) and the pairs the models see.

    Attributes:
      image_size: 64 as in the paper and dSprites; the CPU default is 32 (the conv net with one
        stride-2 layer fewer in each half, :mod:`jaxsparse.models.vae`), about 4x cheaper per step.
      transitions: pair samplers, each trained with every model: ``lap`` (the paper's LAP: every
        non-categorical factor moves by a discrete-Laplace step of scale ``log(size) / rate``,
        ``rate ~ U(rate_range)`` per pair), ``loc`` (``loc_k`` factors resampled), ``natural``
        (heavy-tailed position and scale transitions, :func:`jaxsparse.data.sprites.natural_pairs`).
      rate_range: LAP's ``(low, high)`` range of the per-pair rate (paper ``(1, 10)``).
      loc_k: how many factors a LOC pair resamples (paper 1).
      batch_pairs: pairs per step (paper 32, i.e. 64 images).
    """

    image_size: int = 32
    transitions: tuple[str, ...] = ("lap",)
    rate_range: tuple[float, float] = (1.0, 10.0)
    loc_k: int = 1
    batch_pairs: int = 32


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The models and their loss weights (:func:`jaxsparse.losses.slowvae_loss`; paper defaults).

    Attributes:
      models: ``slowvae`` (``beta`` KL, ``gamma`` Laplace transition term of rate ``rate``) and/or
        ``betavae`` (the same loss with ``gamma = 0`` and ``betavae_beta``).
      n_latents: latent dimension (paper 10).
      beta, gamma, rate: SlowVAE's KL weight (1), transition weight (10) and Laplace rate λ (6).
      betavae_beta: the β-VAE baseline's KL weight (8).
      lr: Adam learning rate (paper 1e-4).
    """

    models: tuple[str, ...] = MODELS
    n_latents: int = 10
    beta: float = 1.0
    gamma: float = 10.0
    rate: float = 6.0
    betavae_beta: float = 8.0
    lr: float = 1e-4


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Sample sizes of the scores (:mod:`jaxsparse.eval.disentanglement`), per seed and method.

    disentanglement_lib's sizes are ``n_points=10000`` (MIG, modularity; MCC here too),
    ``n_train=10000``/``n_test=5000`` (DCI, SAP, explicitness) and BetaVAE/FactorVAE
    ``num_train=10000``/``num_eval=5000`` points of 64 pairs (:func:`paper`). The CPU default
    uses fewer (below): every score is then a noisier estimate of the same quantity.

    Attributes:
      metrics: which scores to compute, among :data:`METRICS` (DCI's boosted trees take most of the
        scoring time: about a minute per model on a 2-core CPU at the default sizes).
      n_points: samples for MCC (Spearman, Hungarian), MIG and modularity.
      n_train, n_test: samples for DCI (gradient-boosted trees), SAP and explicitness.
      vote_train, vote_eval: BetaVAE and FactorVAE training and evaluation points.
      dci_estimators: boosting stages per factor in DCI (disentanglement_lib's 100; fewer only in
        smoke tests).
      seed: the evaluation samples' seed (the same samples for every run).
    """

    metrics: tuple[str, ...] = ("mcc", "mig", "modularity", "dci", "sap", "explicitness", "beta_vae", "factor_vae")
    n_points: int = 5_000
    n_train: int = 1_000
    n_test: int = 500
    vote_train: int = 200
    vote_eval: int = 100
    dci_estimators: int = 100
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class SlowVAEConfig:
    """SlowVAE vs β-VAE on procedural sprites with temporally sparse transitions (paper 6)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    eval: EvalConfig = EvalConfig()
    train: TrainConfig = TrainConfig(steps=200, seeds=3, log_every=50, checkpoint_every=100)

    def __post_init__(self):
        d, m = self.data, self.model
        if d.image_size not in vae.IMAGE_SIZES:
            raise ConfigError(f"`data.image_size` must be one of {vae.IMAGE_SIZES}, got {d.image_size}")
        bad = [t for t in d.transitions if t not in TRANSITIONS]
        if bad or not d.transitions:
            raise ConfigError(f"`data.transitions` must be a non-empty tuple of {TRANSITIONS}, got {d.transitions}")
        bad = [x for x in m.models if x not in MODELS]
        if bad or not m.models:
            raise ConfigError(f"`model.models` must be a non-empty tuple of {MODELS}, got {m.models}")
        low, high = d.rate_range
        if not 0 < low <= high:
            raise ConfigError(f"`data.rate_range` must be (low, high) with 0 < low <= high, got {d.rate_range}")
        if not 1 <= d.loc_k <= 5:
            raise ConfigError(f"`data.loc_k` must be in 1..5 (sprites have 5 factors), got {d.loc_k}")
        for name in ("batch_pairs",):
            if getattr(d, name) < 1:
                raise ConfigError(f"`data.{name}` must be >= 1, got {getattr(d, name)}")
        for name in ("beta", "gamma", "rate", "betavae_beta", "lr"):
            if not getattr(m, name) >= 0 or (name in ("rate", "lr") and getattr(m, name) == 0):
                raise ConfigError(f"`model.{name}` must be {'> 0' if name in ('rate', 'lr') else '>= 0'}, "
                                  f"got {getattr(m, name)}")
        e = self.eval
        bad = [x for x in e.metrics if x not in METRICS]
        if bad or not e.metrics:
            raise ConfigError(f"`eval.metrics` must be a non-empty tuple of {METRICS}, got {e.metrics}")
        for name in ("n_points", "n_train", "n_test", "vote_train", "vote_eval", "dci_estimators"):
            if getattr(e, name) < 2:
                raise ConfigError(f"`eval.{name}` must be >= 2, got {getattr(e, name)}")


def paper(config: SlowVAEConfig | None = None) -> SlowVAEConfig:
    """The paper's setting: 64 × 64 images, LAP and LOC pairs, 300k steps, 5 seeds,
    disentanglement_lib's evaluation sizes (a GPU job)."""
    config = config or SlowVAEConfig()
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, image_size=64, transitions=("lap", "loc")),
        eval=dataclasses.replace(config.eval, n_points=10_000, n_train=10_000, n_test=5_000, vote_train=10_000,
                                 vote_eval=5_000),
        train=dataclasses.replace(config.train, steps=300_000, seeds=5, log_every=1_000, checkpoint_every=10_000),
    )


def smoke(config: SlowVAEConfig | None = None) -> SlowVAEConfig:
    """A seconds-long version of ``config`` for tests: 2 seeds, 4 pairs, 6 steps, small eval samples."""
    config = config or SlowVAEConfig()
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, batch_pairs=4),
        eval=EvalConfig(n_points=200, n_train=100, n_test=100, vote_train=20, vote_eval=10, dci_estimators=3),
        train=dataclasses.replace(config.train, steps=6, seeds=2, log_every=3, checkpoint_every=3),
    )

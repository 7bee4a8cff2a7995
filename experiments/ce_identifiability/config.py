"""Configuration of the cross-entropy identifiability experiment (paper 2), with a CPU budget.

Command: ``jaxsparse run ce-identifiability``. The defaults follow the official code (klindtlab/csi,
``simulation/main_sup.py`` and ``main_diet.py``) except for the budget: latents on S^{d-1} from a
von Mises–Fisher mixture (100 centres, κ = 10), 10,240 instance labels with cluster ``i mod 100``,
a fresh batch of 1024 every step, a frozen 4-layer invertible leaky-ReLU mixing, the csi encoder
(``d, 10d, 4 × 50d, 10d, d`` with BatchNorm and LeakyReLU), Adam 1e-3. The paper trains 500k
steps; the CPU default trains :attr:`CEConfig.train` ``steps`` (see the package docstring for
the runtime and the numbers). :func:`paper` is the official grid and budget; tests use :func:`smoke`.
"""

from __future__ import annotations

import dataclasses

from jaxsparse.train import ConfigError, TrainConfig

METHODS = ("instance", "supervised", "infonce")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Latents, labels and mixing (:mod:`jaxsparse.data.hypersphere`).

    Attributes:
      dims: latent dimensions ``d`` (one task per ``d``, κ and method; paper 5, 10, 20).
      kappas: vMF concentrations of the clusters (paper 10; 50 in its harder setting).
      n_clusters: cluster centres, uniform on the sphere (paper 100).
      n_instances: instance labels; instance ``i`` belongs to cluster ``i mod n_clusters`` and its
        latent is drawn afresh from that cluster's vMF every time (paper 10,240, as the official code).
      mixing_layers: square bias-free layers of the invertible mixing (paper 4; LeakyReLU(0.2) between).
      mixing_candidates: each mixing layer is the best-conditioned of this many uniform draws
        (csi: 25,000, cl-ica's ``cond_thresh_ratio=0``; :func:`jaxsparse.data.hypersphere.mixing_init`).
      batch_size: samples per step (paper 1024).
    """

    dims: tuple[int, ...] = (5,)
    kappas: tuple[float, ...] = (10.0,)
    n_clusters: int = 100
    n_instances: int = 1_000
    mixing_layers: int = 4
    mixing_candidates: int = 25_000
    batch_size: int = 256


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Objectives and encoder.

    Attributes:
      methods: ``instance`` (parametric instance discrimination: a bias-free head with one row per
        instance label), ``supervised`` (the same head with one row per cluster),
        ``infonce`` (the contrastive reference: a positive ``z' ~ vMF(z, infonce_kappa)`` per
        sample, unit-norm features, temperature ``1 / infonce_kappa``, the optimal critic of that
        conditional; cl-ica's setting).
      wide, narrow, n_hidden: encoder widths ``d, narrow·d, n_hidden × wide·d, narrow·d, d``
        (paper 50, 10, 4).
      normalize_head: score cosines between features and head rows (the paper's normalised-W
        variant of instance discrimination; off in its supervised runs).
      temperature: softmax temperature of the head (the official code has none: 1).
      infonce_kappa: concentration of InfoNCE's positive pairs (its temperature is the inverse).
      lr: Adam learning rate (paper 1e-3).
    """

    methods: tuple[str, ...] = ("instance", "supervised")
    wide: int = 50
    narrow: int = 10
    n_hidden: int = 4
    normalize_head: bool = False
    temperature: float = 1.0
    infonce_kappa: float = 10.0
    lr: float = 1e-3


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Linear identifiability on fresh samples (:func:`jaxsparse.eval.linear_r2`).

    Attributes:
      n_samples: fresh latents per run, half to fit the linear map, half to score it (paper 8192).
        The encoder's BatchNorm normalises with the statistics of all of them (no running averages).
      seed: seed of the evaluation latents (the same labels and noise for every run).
    """

    n_samples: int = 8192
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class SpritesConfig:
    """The DisLib part: a conv classifier of the sprite's shape, then linear decoding of the other factors.

    Attributes:
      enabled: train the ``sprites-shape`` task.
      image_size: 64 (dSprites) or 32 (the CPU default; :mod:`jaxsparse.models.vae`'s encoder trunk).
      batch_size: images per step (fresh uniform factors every step).
      steps: training steps of the classifier.
      lr: Adam learning rate (paper 1e-3).
      n_decode: fresh samples for the linear readouts, half to fit, half to score (the raw-pixel
        readout has ``image_size²`` features: keep ``n_decode / 2`` well above that).
    """

    enabled: bool = True
    image_size: int = 32
    batch_size: int = 64
    steps: int = 1000
    lr: float = 1e-3
    n_decode: int = 8192


@dataclasses.dataclass(frozen=True)
class CEConfig:
    """Cross-entropy and instance discrimination identify the latents up to a linear map (paper 2)."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    eval: EvalConfig = EvalConfig()
    sprites: SpritesConfig = SpritesConfig()
    train: TrainConfig = TrainConfig(steps=4000, seeds=3, log_every=250, checkpoint_every=1000)

    def __post_init__(self):
        d, m, e, s = self.data, self.model, self.eval, self.sprites
        if not d.dims or any(not isinstance(x, int) or x < 2 for x in d.dims):
            raise ConfigError(f"`data.dims` must be a non-empty tuple of ints >= 2, got {d.dims}")
        if not d.kappas or any(not k > 0 for k in d.kappas):
            raise ConfigError(f"`data.kappas` must be a non-empty tuple of numbers > 0, got {d.kappas}")
        for name in ("n_clusters", "mixing_layers", "mixing_candidates"):
            if getattr(d, name) < 1:
                raise ConfigError(f"`data.{name}` must be >= 1, got {getattr(d, name)}")
        if d.n_instances < d.n_clusters:
            raise ConfigError(f"`data.n_instances` must be >= `data.n_clusters` ({d.n_clusters}), got {d.n_instances}")
        if d.batch_size < 2:
            raise ConfigError(f"`data.batch_size` must be >= 2 (BatchNorm needs a batch), got {d.batch_size}")
        bad = [x for x in m.methods if x not in METHODS]
        if bad or not m.methods or len(set(m.methods)) != len(m.methods):
            raise ConfigError(f"`model.methods` must be a non-empty tuple of distinct names from {METHODS}, "
                              f"got {m.methods}")
        for name in ("wide", "narrow"):
            if getattr(m, name) < 1:
                raise ConfigError(f"`model.{name}` must be >= 1, got {getattr(m, name)}")
        if m.n_hidden < 0:
            raise ConfigError(f"`model.n_hidden` must be >= 0, got {m.n_hidden}")
        for name in ("temperature", "infonce_kappa", "lr"):
            if not getattr(m, name) > 0:
                raise ConfigError(f"`model.{name}` must be > 0, got {getattr(m, name)}")
        if e.n_samples < 8:
            raise ConfigError(f"`eval.n_samples` must be >= 8, got {e.n_samples}")
        if s.image_size not in (32, 64):
            raise ConfigError(f"`sprites.image_size` must be 32 or 64, got {s.image_size}")
        for name in ("batch_size", "steps"):
            if getattr(s, name) < 2:
                raise ConfigError(f"`sprites.{name}` must be >= 2, got {getattr(s, name)}")
        if not s.lr > 0:
            raise ConfigError(f"`sprites.lr` must be > 0, got {s.lr}")
        if s.n_decode < 8:
            raise ConfigError(f"`sprites.n_decode` must be >= 8, got {s.n_decode}")


def paper(config: CEConfig | None = None) -> CEConfig:
    """The official grid and budget: d ∈ {5, 10, 20}, κ ∈ {10, 50}, every objective, 500k steps
    (50,000 epochs of 10 batches), 5 seeds, 64 × 64 sprites for 100 epochs of 80 % of the 737,280 dSprites images (14,400 steps of 4096)."""
    config = config or CEConfig()
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, dims=(5, 10, 20), kappas=(10.0, 50.0), n_instances=10_240, batch_size=1024),
        model=dataclasses.replace(config.model, methods=METHODS),
        sprites=dataclasses.replace(config.sprites, image_size=64, batch_size=4096, steps=14_400, n_decode=20_000),
        train=dataclasses.replace(config.train, steps=500_000, seeds=5, log_every=1000, checkpoint_every=10_000),
    )


def smoke(config: CEConfig | None = None) -> CEConfig:
    """A seconds-long version of ``config`` for tests: d = 3, small nets and batches, a few steps."""
    config = config or CEConfig()
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, dims=(3,), n_clusters=4, n_instances=16, mixing_candidates=100,
                                 batch_size=32),
        model=dataclasses.replace(config.model, wide=4, narrow=2, n_hidden=1),
        eval=EvalConfig(n_samples=64),
        sprites=dataclasses.replace(config.sprites, batch_size=8, steps=4, n_decode=64),
        train=dataclasses.replace(config.train, steps=6, seeds=2, log_every=3, checkpoint_every=3),
    )

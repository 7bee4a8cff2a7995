"""Configuration of the DIET-against-SSL experiment (paper 3), with a CPU budget.

Command: ``jaxsparse run ssl-occam``. Every method trains the same backbone (:mod:`jaxsparse.models.resnet`)
on the same augmentation pipeline (:func:`jaxsparse.data.augment.ssl_view`) for the same number of
steps, with the same number of augmented views through the backbone per step (``views_per_step``:
DIET sees that many images once, SimCLR and BYOL half as many images twice; BYOL also runs its
teacher forward on every view, about 1/3 more FLOPs per step). Each method trains once per point of
the learning-rate x weight-decay grid and seed, as one vmapped program (``Task.hparams`` with an
optimiser built from the grid point). The paper's recipe (ResNet-18, AdamW lr 1e-3, wd 0.05, long
training, CIFAR/TinyImageNet-scale data) is out of reach of 2 CPU cores; :func:`paper` is a longer,
wider setting to run where more compute is available.
"""

from __future__ import annotations

import dataclasses

from jaxsparse.data.augment import AugmentConfig
from jaxsparse.train import ConfigError, TrainConfig

METHODS = ("diet", "simclr", "byol")
DATASETS = ("digits", "sprites")
N_DIGITS = 1797


@dataclasses.dataclass(frozen=True)
class SSLConfig:
    """DIET, SimCLR and BYOL on one backbone, augmentation pipeline and budget, scored by linear probe.

    Attributes:
      datasets: ``digits`` (scikit-learn's 8 x 8 digits, label: the digit) and/or ``sprites`` (procedural
        dSprites, :mod:`jaxsparse.data.sprites`, label: the shape).
      methods: ``diet`` (datum index as class, linear head over the ``N`` pretraining images, label
        smoothing ``label_smoothing``; Ibrahim et al. 2024), ``simclr`` (projector + symmetric InfoNCE
        between two views, temperature ``temperature``), ``byol`` (projector + predictor regressed onto an
        EMA teacher's projection of the other view, ``ema``).
      widths, blocks, groups: the backbone's stage widths, blocks per stage and GroupNorm groups.
      projector: hidden and output width of the SimCLR/BYOL projector and the BYOL predictor
        (``Linear - BatchNorm - ReLU - Linear``).
      views_per_step: augmented views through the backbone per step (equal for every method).
      lrs, wds: the AdamW grid (learning rate x weight decay; decay on weight matrices and kernels only).
        The paper's default, lr 1e-3 and wd 0.05, should be a grid point.
      label_smoothing, temperature, ema: DIET's smoothing (paper 0.8), SimCLR's temperature and BYOL's
        teacher momentum.
      n_train_digits: pretraining digits (a fixed permutation's first ``n``; the rest are the probe's
        test set).
      sprites_train, sprites_test, sprites_size: procedural sprites (uniform over the dSprites grid,
        drawn once from NumPy seed 0, rendered at ``sprites_size`` pixels with 4 x 4 supersampling).
      augment: the view pipeline (:class:`jaxsparse.data.augment.AugmentConfig`; no blur on these small
        images, crops of at least 30 % of the area).
      probe_l2: the linear probe's L2 weight on standardised features (:func:`jaxsparse.eval.linear_probe`).
    """

    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    widths: tuple[int, ...] = (8, 16, 32)
    blocks: int = 1
    groups: int = 4
    projector: int = 64
    views_per_step: int = 128
    lrs: tuple[float, ...] = (1e-3, 3e-3)
    wds: tuple[float, ...] = (0.05, 0.5)
    label_smoothing: float = 0.8
    temperature: float = 0.2
    ema: float = 0.99
    n_train_digits: int = 1297
    sprites_train: int = 2048
    sprites_test: int = 1024
    sprites_size: int = 16
    augment: AugmentConfig = AugmentConfig(crop_scale=(0.3, 1.0), blur_p=0.0)
    probe_l2: float = 1e-3
    train: TrainConfig = TrainConfig(steps=500, seeds=3, log_every=100, checkpoint_every=100)

    def __post_init__(self):
        for name, allowed in (("datasets", DATASETS), ("methods", METHODS)):
            value = getattr(self, name)
            if not value or any(v not in allowed for v in value) or len(set(value)) != len(value):
                raise ConfigError(f"`{name}` must be a non-empty tuple of distinct names from {allowed}, got {value}")
        if not self.widths or any(w < 1 or w % self.groups for w in self.widths):
            raise ConfigError(f"`widths` must be positive multiples of `groups`={self.groups}, got {self.widths}")
        for name in ("blocks", "groups", "projector", "sprites_train", "sprites_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.views_per_step < 2 or self.views_per_step % 2:
            raise ConfigError(f"`views_per_step` must be an even number >= 2 (SimCLR and BYOL take two views of "
                              f"half as many images), got {self.views_per_step}")
        if not 10 <= self.n_train_digits <= N_DIGITS - 10:
            raise ConfigError(f"`n_train_digits` must leave at least 10 of the {N_DIGITS} digits on each side, "
                              f"got {self.n_train_digits}")
        if self.sprites_size < 8:
            raise ConfigError(f"`sprites_size` must be >= 8 pixels, got {self.sprites_size}")
        for name in ("lrs", "wds"):
            value = getattr(self, name)
            if not value or any(not v >= 0 for v in value) or (name == "lrs" and min(value) <= 0):
                raise ConfigError(f"`{name}` must be a non-empty tuple of {'positive' if name == 'lrs' else 'non-negative'} "
                                  f"values, got {value}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"`label_smoothing` must be in [0, 1), got {self.label_smoothing}")
        if not self.temperature > 0 or not 0 <= self.ema < 1 or not self.probe_l2 > 0:
            raise ConfigError(f"need temperature > 0, 0 <= ema < 1 and probe_l2 > 0, got {self.temperature}, "
                              f"{self.ema}, {self.probe_l2}")

    def grid(self) -> list[tuple[float, float]]:
        """The ``(lr, wd)`` grid points in the order of the runs' ``hparam`` index (lr-major)."""
        return [(lr, wd) for lr in self.lrs for wd in self.wds]


def smoke() -> SSLConfig:
    """A seconds-long run for tests: tiny backbone, two grid points, 2 seeds."""
    return SSLConfig(widths=(4, 8), projector=16, views_per_step=32, lrs=(1e-3,), wds=(0.05, 0.5), n_train_digits=200,
                     sprites_train=128, sprites_test=64, sprites_size=8,
                     train=TrainConfig(steps=20, seeds=2, log_every=10, checkpoint_every=10))


def paper() -> SSLConfig:
    """Closer to the paper: wider backbone (2 blocks per stage), 3 x 3 grid around lr 1e-3, wd 0.05,
    10x the steps, 5 seeds (a GPU job)."""
    return SSLConfig(widths=(32, 64, 128), blocks=2, projector=256, views_per_step=256, lrs=(3e-4, 1e-3, 3e-3),
                     wds=(0.005, 0.05, 0.5), sprites_size=32, sprites_train=8192,
                     train=TrainConfig(steps=10_000, seeds=5, log_every=500, checkpoint_every=2000))

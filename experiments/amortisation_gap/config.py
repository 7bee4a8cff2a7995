"""Configuration of the amortisation-gap experiment (paper 1), with the paper's defaults.

Command: ``jaxsparse run amortisation-gap`` (5 seeds, all regimes and methods; see
``experiments/amortisation_gap/__init__.py`` for the runtime and the measured numbers).
Scaling grid: ``--set data.n_latents=128 --set data.n_features=32 --set data.k=9``.
Tests use :func:`smoke` (tiny sizes and step counts).
"""

from __future__ import annotations

import dataclasses

from jaxsparse.experiments.common import SparseDataConfig
from jaxsparse.models.encoders import ENCODERS
from jaxsparse.train import ConfigError, TrainConfig

REGIMES = ("known_d", "known_z", "unknown")


DataConfig = SparseDataConfig  # full-batch training: no batch size


@dataclasses.dataclass(frozen=True)
class MethodsConfig:
    """Which methods run and their hyperparameters (paper 1's values unless noted).

    Attributes:
      regimes: any of ``known_d`` (true decoder frozen), ``known_z`` (encoder regressed on the true
        codes by the paper's negative column cosine), ``unknown`` (dictionary learning).
      encoders: encoder families trained in the unknown regime (``sae``, ``topk``, ``jumprelu``,
        ``mlp``, ``lista``); ``mlp`` runs once per width in ``mlp_hidden``.
      known_encoders: those trained in the known-D and known-Z regimes (the paper's SAE and MLP).
      known_mlp_hidden: the MLP widths of the known-D and known-Z regimes. The default trains only
        MLP-32 there, which keeps the default run near 3.5 minutes on 2 CPU cores; the paper's
        MLP-256 in those regimes (``--set methods.known_mlp_hidden=32,256``) adds about 4 minutes
        (measured: known-D 0.752 ± 0.069, known-Z 0.936 ± 0.006 latent MCC, 5 seeds, see the package
        docstring). The unknown regime trains every width of ``mlp_hidden``.
      lam: weight of ``mean |s|`` in ``mean (x - x_hat)^2 + lam mean |s|`` (paper 0.01).
      lr: Adam learning rate of all full-batch training (paper 1e-3).
      steps_known: training steps in the known-D and known-Z regimes (paper 20k); the unknown
        regime runs ``train.steps`` (paper 40k).
      code_steps, code_lr: Adam on exp-codes at test time (paper 10k, 3e-3).
      bias: biases in the encoders of the known-D / unknown regimes (paper: none); known-Z
        encoders always have biases, as in the paper's code.
      topk_k: TopK's k (default: the true K, 3).  lista_iters: LISTA's unrolled steps.
      fista_iters: FISTA budgets of the compute frontier.
      exact_solvers: also infer codes by OMP (k = K) and exact homotopy on every dictionary.
      dl_iters, dl_inner: our batch dictionary learning (FISTA codes + block-coordinate atom updates,
        :mod:`jaxsparse.models.dictionary_learning`): outer steps and warm-started FISTA iterations
        per step. ``dl_iters=0`` skips it. Peers (SPAMS, scikit-learn) at equal budgets:
        ``jaxsparse run dictionary-learning-peers``.
      dl_lam: its per-sample Lasso weight (``0.5 ||x - sD||^2 + dl_lam ||s||_1``), used both to learn
        the dictionary and to infer test codes on it (every dictionary's inference uses the weight
        it was trained with; see :func:`jaxsparse.losses.lasso_lam`).
    """

    regimes: tuple[str, ...] = REGIMES
    encoders: tuple[str, ...] = ("sae", "topk", "jumprelu", "mlp", "lista")
    known_encoders: tuple[str, ...] = ("sae", "mlp")
    mlp_hidden: tuple[int, ...] = (32, 256)
    known_mlp_hidden: tuple[int, ...] = (32,)
    lam: float = 0.01
    lr: float = 1e-3
    steps_known: int = 20_000
    code_steps: int = 10_000
    code_lr: float = 3e-3
    bias: bool = False
    topk_k: int = 3
    lista_iters: int = 3
    fista_iters: tuple[int, ...] = (1, 3, 10, 30, 100, 300)
    exact_solvers: bool = True
    dl_iters: int = 1000
    dl_inner: int = 20
    dl_lam: float = 0.005


@dataclasses.dataclass(frozen=True)
class AmortisationGapConfig:
    """Amortisation gap: SAEs, MLPs, LISTA vs sparse coding and solvers at equal compute (paper 1)."""

    data: DataConfig = DataConfig()
    methods: MethodsConfig = MethodsConfig()
    train: TrainConfig = TrainConfig(steps=40_000, seeds=5, log_every=1000, checkpoint_every=10_000)

    def __post_init__(self):
        bad = [r for r in self.methods.regimes if r not in REGIMES]
        if bad:
            raise ConfigError(f"`methods.regimes` must be among {REGIMES}, got {bad}")
        if self.data.k > self.data.n_latents:
            raise ConfigError(f"`data.k` ({self.data.k}) must be <= `data.n_latents` ({self.data.n_latents})")
        bad = [e for e in self.methods.encoders + self.methods.known_encoders if e not in ENCODERS]
        if bad:
            raise ConfigError(f"`methods.encoders`/`methods.known_encoders` must be among {ENCODERS}, got {bad}")


def smoke(config: AmortisationGapConfig | None = None) -> AmortisationGapConfig:
    """A seconds-long version of ``config`` for tests: 2 seeds, 128 samples, 200 steps."""
    config = config or AmortisationGapConfig()
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, n_train=128, n_test=128),
        methods=dataclasses.replace(config.methods, mlp_hidden=(8,), known_mlp_hidden=(8,), steps_known=200, code_steps=200,
                                    fista_iters=(3, 30), dl_iters=50),
        train=dataclasses.replace(config.train, steps=200, seeds=2, log_every=100, checkpoint_every=100),
    )

"""Paper 1: the amortisation gap, encoders vs sparse inference at equal compute.

O'Neill, Gumran & Klindt, "Compute optimal inference and provable amortisation gap in sparse
autoencoders" (ICML 2025; code charlieoneill11/sparse-inference). Methods, as in the paper's code:
per seed a Gaussian unit-norm dictionary ``D [N, M]`` and codes with exactly K half-normal nonzeros,
``x = s D`` (N=16, M=8, K=3; 1024 train / 1024 test). Three regimes:

- ``known_d``: the true ``D`` is the frozen decoder; encoders (SAE, TopK, JumpReLU, MLP-32/256,
  LISTA) learn ``mean (x - zD)^2 + 0.01 mean|z|``; solvers infer codes on ``D``: Adam on
  exp-codes (the paper's ITO), FISTA budgets, OMP (k = K), exact homotopy.
- ``known_z``: encoders regressed on the true codes (negative column cosine, the paper's loss): the
  amortisation gap in isolation (:mod:`jaxsparse.theory.amortisation`).
- ``unknown``: encoders with a learned unit-norm decoder; sparse coding (free exp-codes learned
  jointly with ``D``, test codes by 10k Adam steps); SAE+ITO (the SAE's decoder frozen, codes by
  Adam from scratch as in the paper, or FISTA warm-started at the SAE's codes); the compute
  frontier (FISTA/OMP/homotopy on the SC dictionary); peers (scikit-learn, SPAMS).

All training is full batch, Adam 1e-3, 40k steps (unknown) / 20k (known), vmapped over seeds.
Differences from the paper's code: each seed draws its own data and dictionary (the paper reuses
one data set for its 5 runs); known-Z MCC is the matched MCC (the paper's known-Z script reports
the unmatched mean correlation); ITO on the true D uses the same 10k steps at lr 3e-3 as the test
code fitting (the paper's known-D script: 20k at 1e-3).

Command: ``jaxsparse run amortisation-gap`` (writes results.json, results.md, figures/).
"""

from experiments.amortisation_gap.config import AmortisationGapConfig, smoke
from experiments.amortisation_gap.run import run
from jaxsparse.train import register

NAME = "amortisation-gap"


def build(config: AmortisationGapConfig):
    """The engine task of the main method (the SAE, unknown regime), for ``jaxsparse.train.fit`` users."""
    from experiments.amortisation_gap import methods

    label, _, encoder, _ = methods.encoder_specs(config, "unknown")[0]
    return methods.encoder_task(config, "unknown", encoder)


register(NAME, AmortisationGapConfig, build, run=run, module=__name__)

__all__ = ["AmortisationGapConfig", "NAME", "build", "run", "smoke"]

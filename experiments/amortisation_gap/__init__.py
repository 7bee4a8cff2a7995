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

Beyond the paper, a batch dictionary learner (:mod:`jaxsparse.models.dictionary_learning`: FISTA
codes + block-coordinate atom updates, 1000 steps, on the peers' objective) is scored the same way.

Command: ``jaxsparse run amortisation-gap`` (writes results.json, results.md, figures/). Measured
(5 seeds, defaults, 2 shared CPU cores, 7 min 9 s wall in all), mean ± std over seeds:

=====================  ==============  ==============  ==============  ===================
unknown D and Z        latent MCC      dict MCC        paper (lat/dict)  inference FLOPs
=====================  ==============  ==============  ==============  ===================
SAE                    0.590 ± 0.031   0.710 ± 0.012   0.566 / 0.745   528
SAE+ITO (Adam 10k)     0.604 ± 0.041   0.710 ± 0.012   0.583           7.0e6
MLP-256                0.657 ± 0.078   0.836 ± 0.033   0.643 / 0.851   1.3e4
SC (Adam 10k)          0.653 ± 0.054   0.812 ± 0.033   0.691 / 0.837   7.0e6
SC dict + FISTA-10     0.666 ± 0.040                                   7.6e3
DL + homotopy          0.971 ± 0.039   0.991 ± 0.017
SPAMS trainDL (1000)   0.887 ± 0.046   0.948 ± 0.026
sklearn MiniBatchDL    0.587 ± 0.054   0.792 ± 0.032
=====================  ==============  ==============  ==============  ===================

Known D: true D + Adam 10k 0.974 ± 0.004 (paper 0.967), + homotopy 0.988 ± 0.007, SAE 0.672 ±
0.066 (paper 0.61), MLP-32 0.843, MLP-256 0.751. Known Z: SAE 0.878, MLP-256 0.926. Frontier: on the
SC dictionary FISTA-10 matches Adam-10k's MCC with 927x fewer inference FLOPs; on the DL dictionary
FISTA-100 is within 0.01 at 99x fewer; on the true D FISTA needs 300 iterations (33x).
"""

from jaxsparse.experiments.amortisation_gap.analysis import analyze
from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig, smoke
from jaxsparse.experiments.amortisation_gap.tasks import build
from jaxsparse.train import register

NAME = "amortisation-gap"

register(NAME, AmortisationGapConfig, build, analyze=analyze, module=__name__)

__all__ = ["AmortisationGapConfig", "NAME", "analyze", "build", "smoke"]

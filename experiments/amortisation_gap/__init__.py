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
  frontier (FISTA/OMP/homotopy on the SC dictionary).

All training is full batch, Adam 1e-3, 40k steps (unknown) / 20k (known), vmapped over seeds, and
goes through the engine: every encoder, sparse coding and the dictionary learner is a
:class:`jaxsparse.train.Task` (:mod:`.tasks`) trained into ``methods/<regime>/<label>/`` with its
checkpoints, so ``jaxsparse resume`` continues a killed run (finished methods are kept), ``jaxsparse
eval`` re-scores any kept checkpoint and ``jaxsparse.train.restore(run, method="unknown/SAE")`` gives
the trained parameters. Inference-time methods and scores are computed from the trained models by
:func:`.analysis.analyze`. Differences from the paper's code: each seed draws its own data and
dictionary (the paper reuses one data set for its 5 runs); known-Z MCC is the matched MCC (the
paper's known-Z script reports the unmatched mean correlation); ITO on the true D uses the same 10k
steps at lr 3e-3 as the test code fitting (the paper's known-D script: 20k at 1e-3).

Beyond the paper, a batch dictionary learner (:mod:`jaxsparse.models.dictionary_learning`: FISTA
codes + block-coordinate atom updates, 1000 steps, per-sample Lasso weight ``methods.dl_lam`` both to
learn and to infer) is scored the same way. Its comparison with SPAMS and scikit-learn at equal
budgets is the experiment ``dictionary-learning-peers``.

Every inference on a dictionary uses the Lasso weight that dictionary was trained with
(:func:`jaxsparse.losses.lasso_lam`).

Command: ``jaxsparse run amortisation-gap`` (defaults; README command 1). Runtime on 2 CPU cores (the
AVX-512 Xeon VM, ``JAXSPARSE_COMPILE_CACHE=off /usr/bin/time jaxsparse run amortisation-gap``, five runs
alternating with the code of d5d9ccd): **2 min 44 s, 2 min 42 s, 2 min 38 s, 2 min 39 s and 2 min 44
s** (164.5, 162.1, 158.0, 159.4 and 164.2 s; the last three at this code, with ``fit_codes``
feature-major too) against 2 min 56 s, 2 min 58 s, 2 min 57 s, 2 min 56 s and 3 min 1 s (175.8, 177.8,
176.6, 175.7 and 181.4 s); 309-319 s of CPU time against 343-353 s. The VM's speed drifts by up to 1.7x between minutes, so compare each method's ``train_s``
in ``methods/*/*/results.json``. The run is bound by the work of both cores: the methods' summed
``train_s`` (wall seconds of their workers, partly shared with the analysis), compiling and
initialising each method (about 2 s), starting the three processes (6 s) and the analysis
(restoring, inference, scoring, figures; about 30 s of the main process, beside the training: each
method is analysed as soon as it is trained, :func:`jaxsparse.train.as_completed`, the true
dictionary's solvers once the first is, and a regime's figures once its last method is, so 4-7 s
are left after the last method). Where the training time goes: the methods train two at a time in
worker processes (``--jobs``, default 2 on a CPU), each pinned to one core, the costliest first
(``Task.cost``, the training FLOPs of :func:`tasks.training_flops`). MLP-256 (1.6e12 training FLOPs
per seed, more than all other methods together) runs one seed at a time inside its program
(``Task.seed_batch="auto"``) and each step in 4 slices of 256 samples (``Task.microbatches="auto"``,
gradient accumulation): about 112 s on its core. Every other encoder trains on transposed
(feature-major) activations, ``[16, 1024]`` rather than ``[1024, 16]``
(:func:`jaxsparse.models.matmul.matmul_t`, ``Encoder.apply_t``): XLA:CPU runs the products of such
narrow layers 2-3.6x faster with the long sample axis minor, and their steps 1.18-1.39x (``python
benchmarks/feature_major.py``). Issue 15's history: 9 min 57 s on the AMD EPYC VM before it (one
method at a time, all seeds in one vmap), 4 min 21-28 s there after the workers, the matmul gradient
and the seed loop; on the Xeon the LLVM options of :mod:`jaxsparse.cpu_codegen` (5 min 6 s -> 4 min
5 s), then TopK's rank layout (45 -> 24 s), lighter imports (3.5 -> 2.3 s per process), sources and
initial states compiled at -O1 (33 -> 12 s of compiling) and MLP-256's microbatches (134 -> 113 s):
3 min 35 s; then the analysis beside the last method, NumPy checkpoint fingerprints and the
homotopy seed by seed: 3 min 15-19 s; then LLVM's full unrolling capped at 15 (JumpReLU, LISTA-3 and
DL 1.09-1.27x per step), the analysis of each method as it finishes, one FISTA program for every
budget, DL trained before the known regimes' SAEs and no homotopy compaction of small batches: 2 min
56 s to 3 min 1 s; then the feature-major encoders: 2 min 38-44 s. The known regimes train MLP-32
only by default; their MLP-256 (``--set methods.known_mlp_hidden=32,256``) adds about 4 min
(measured before issue 15).

Numbers (mean ± std over 5 seeds, ddof=1; the same to the digits shown in the five runs above). Training the encoders
feature-major changed their float rounding, and over 40k steps with a learned decoder the unknown
regime's encoders reach other local optima: per seed their latent MCC moved by up to 0.06 and the
means by at most 0.01 (SAE 0.585 ± 0.036 / 0.695 ± 0.013 before, SAE+ITO 0.589); the known regimes'
by at most 0.003; the solvers' rows on fixed dictionaries (SC, DL, true D) and MLP-256 are unchanged
up to 9e-7 (the Adam code fits run feature-major too). On the AMD VM the rounding of its kernels gave
SAE 0.574 ± 0.053 and MLP-256 0.645 ± 0.065, within the spread:

=====================  ==============  ==============  ================  ===================
unknown D and Z        latent MCC      dict MCC        paper (lat/dict)  inference FLOPs
=====================  ==============  ==============  ================  ===================
SAE                    0.575 ± 0.047   0.711 ± 0.013   0.566 / 0.745     528
SAE+ITO (Adam 10k)     0.587 ± 0.041   0.711 ± 0.013   0.583             7.0e6
MLP-256                0.653 ± 0.079   0.832 ± 0.034   0.643 / 0.851     1.3e4
SC (Adam 10k)          0.653 ± 0.060   0.812 ± 0.037   0.691 / 0.837     7.0e6
SC dict + FISTA-10     0.666 ± 0.045                                     7.6e3
DL + homotopy          0.907 ± 0.082   0.959 ± 0.041                     1.2e4
=====================  ==============  ==============  ================  ===================

Known D: true D + Adam 10k 0.974 ± 0.004 (paper 0.967), + homotopy 0.988 ± 0.008, SAE 0.673 ±
0.072 (paper 0.61), MLP-32 0.844 (MLP-256, on request: 0.752, AMD VM). Known Z: SAE 0.878, MLP-32
0.912 (MLP-256: 0.936, AMD VM).
Frontier (``results.json["frontier"]``): on the SC dictionary FISTA-10 matches Adam-10k's MCC with
927x fewer inference FLOPs; on the DL dictionary and the true D exact homotopy beats it at 597x and
815x fewer; warm-started from the SAE's codes, one FISTA step matches SAE+ITO's Adam (4028x fewer).
SAE+ITO vs SAE (+0.012, std 0.04-0.05) is a tie at this spread.
"""

from jaxsparse.experiments.amortisation_gap.analysis import analyze
from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig, smoke
from jaxsparse.experiments.amortisation_gap.tasks import build
from jaxsparse.train import register

NAME = "amortisation-gap"

register(NAME, AmortisationGapConfig, build, analyze=analyze, module=__name__)

__all__ = ["AmortisationGapConfig", "NAME", "analyze", "build", "smoke"]

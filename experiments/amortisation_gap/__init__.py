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

Command: ``jaxsparse run amortisation-gap`` (defaults; README command 1). Runtime on 2 CPU cores:
4 min 21 s, 4 min 24 s and 4 min 28 s in three runs (``/usr/bin/time jaxsparse run amortisation-gap``,
issue 15): in the first, 208 s of training, then 46 s of inference, scoring and figures (compiling
the solvers is about 17 s of it, the four Adam code fits 11 s, matplotlib about 10 s). It was 9 min
57 s before issue 15 (one method at a time, all seeds in one vmap, JAX's own matmul gradient), 7 min
48 s with ``--jobs 1`` and 6 min 25 s with two unpinned workers. Where the time goes: the methods
train two at a time in worker processes (``--jobs``, default 2 on a CPU), each pinned to one core,
the costliest first (``Task.cost``, the training FLOPs of :func:`tasks.training_flops`). The MLP-256
encoder (1.6e12 training FLOPs per seed, more than all other methods together) runs one seed at a
time inside its program (``Task.seed_batch="auto"``) with :mod:`jaxsparse.models.matmul`'s weight
gradient, 3.6 s per 1000 steps for the 5 seeds on its core (144 s of steps, 156 s in all), while
the other worker trains the rest: the 11 other methods take 192 s of steps, 14 s of compiling them
and about 45 s of initialising, scoring and checkpointing. The small models are bound by XLA:CPU's
fixed cost per operation (a 5-seed SAE step takes 0.25-0.3 ms on one core or two). This layout's
floor is MLP-256 on its core: its 156 s, the 7 s start and the 46 s analysis already make 3.5
minutes, so 3 minutes needs a faster MLP-256 step (55 GFLOP/s, 70 % of one core's AVX2 FMA peak of
78 GFLOP/s at 2.45 GHz) or an analysis that overlaps training. The known regimes train MLP-32 only
by default; their MLP-256 (``--set methods.known_mlp_hidden=32,256``) adds about 4 min (measured
before issue 15). Numbers
(mean ± std over 5 seeds, ddof=1), identical in the three runs. Issue 15 changed the rounding of the
gradients twice: :mod:`jaxsparse.models.matmul` moved single seeds of the unknown regime by up to
0.07 and the means within their spread (before: SAE 0.571 ± 0.032 / 0.717 ± 0.020, MLP-256 0.656 /
0.832, SAE+ITO 0.575), and training MLP-256 on one thread (a pinned worker) moved it from 0.655 ±
0.083 / 0.834 ± 0.036 to the value below; every other entry is unchanged:

=====================  ==============  ==============  ================  ===================
unknown D and Z        latent MCC      dict MCC        paper (lat/dict)  inference FLOPs
=====================  ==============  ==============  ================  ===================
SAE                    0.574 ± 0.053   0.694 ± 0.028   0.566 / 0.745     528
SAE+ITO (Adam 10k)     0.587 ± 0.047   0.694 ± 0.028   0.583             7.0e6
MLP-256                0.645 ± 0.065   0.831 ± 0.031   0.643 / 0.851     1.3e4
SC (Adam 10k)          0.653 ± 0.060   0.812 ± 0.037   0.691 / 0.837     7.0e6
SC dict + FISTA-10     0.666 ± 0.045                                     7.6e3
DL + homotopy          0.907 ± 0.082   0.959 ± 0.041
=====================  ==============  ==============  ================  ===================

Known D: true D + Adam 10k 0.974 ± 0.004 (paper 0.967), + homotopy 0.988 ± 0.008, SAE 0.672 ±
0.074 (paper 0.61), MLP-32 0.846 (MLP-256, on request: 0.752). Known Z: SAE 0.878, MLP-32 0.908
(MLP-256: 0.936).
Frontier: on the SC dictionary FISTA-10 matches Adam-10k's MCC with 927x fewer inference FLOPs; on
the DL dictionary FISTA-100 is within 0.01 at 99x fewer; on the true D FISTA needs 300 iterations
(33x). SAE+ITO vs SAE (+0.013) is a tie at this spread.
"""

from jaxsparse.experiments.amortisation_gap.analysis import analyze
from jaxsparse.experiments.amortisation_gap.config import AmortisationGapConfig, smoke
from jaxsparse.experiments.amortisation_gap.tasks import build
from jaxsparse.train import register

NAME = "amortisation-gap"

register(NAME, AmortisationGapConfig, build, analyze=analyze, module=__name__)

__all__ = ["AmortisationGapConfig", "NAME", "analyze", "build", "smoke"]

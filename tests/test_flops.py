"""FLOPs formulas: hand counts and the ``eval.flops`` dispatcher.

Each solver's count is checked against XLA's cost analysis of the compiled solver in the shared
solver table (``tests/test_solvers.py::test_flops_agree_with_xla_cost_analysis``), each encoder's in
the shared encoder table (``tests/test_models_encoders.py::test_shared_table``).
"""

import pytest

from jaxsparse import solvers
from jaxsparse.models import dictionary_learning, encoders, sae, sparse_coding
from jaxsparse.eval import flops


def test_hand_counts():
    # N=16, M=8 (Gram form since N <= 2M). x D^T: 2*8*16 = 256.
    # FISTA iteration: y G - b: 2*16*16 + 16 = 528; step 2*16; soft threshold 3*16;
    # momentum 5*16 + 4; restart 2*16 -> 528 + 32 + 48 + 84 + 32 = 724.
    assert flops("fista", n_latents=16, n_features=8, n_iter=10) == 256 + 10 * 724
    assert flops("fista", n_latents=16, n_features=8, n_iter=10, restart=False) == 256 + 10 * 692
    assert flops("ista", n_latents=16, n_features=8, n_iter=10, nonneg=True) == 256 + 10 * (528 + 32 + 32)
    # N=64, M=8 (residual form): 4*8*64 + 8 = 2056 per gradient.
    assert flops("ista", n_latents=64, n_features=8, n_iter=1) == 2056 + 128 + 192
    # OMP k=1: D x 256; step: argmax 32, inverse update 5 + 2, coefficients 2 -> 41.
    assert flops("omp", n_latents=16, n_features=8, k=1) == 256 + 41
    # k=2: step 0 on 1 slot 32 + 7 + 2 = 41, its correlation update 2*1*8 + 256 = 272, the last
    # step on 2 slots 32 + 7*4 + 4 = 64.
    assert flops("omp", n_latents=16, n_features=8, k=2) == 256 + 41 + 272 + 64
    # k=5: slots 1, 2, 4, 4 and 5 for the last step.
    steps = sum(32 + 7 * s * s + 2 * s for s in (1, 2, 4, 4, 5))
    assert flops("omp", n_latents=16, n_features=8, k=5) == 256 + steps + sum(2 * s * 8 + 256 for s in (1, 2, 4, 4))
    # Matching pursuit: 256 + 32 + 16 + 1 per iteration.
    assert flops("matching_pursuit", n_latents=16, n_features=8, n_iter=3) == 3 * 305
    assert flops("matmul", n_latents=16, n_features=8) == 256


@pytest.mark.parametrize("n_latents,n_features", [(16, 8), (64, 8), (5, 3)])
def test_dispatcher_is_the_solvers_own_count(n_latents, n_features):
    """``eval.flops`` only dispatches: it equals the function beside each solver."""
    sizes = {"n_latents": n_latents, "n_features": n_features}
    for n_iter in (1, 7):
        for nonneg in (False, True):
            assert flops("ista", **sizes, n_iter=n_iter, nonneg=nonneg) == solvers.ista_flops(
                n_latents, n_features, n_iter=n_iter, nonneg=nonneg)
            for restart in (False, True):
                assert flops("fista", **sizes, n_iter=n_iter, nonneg=nonneg, restart=restart) == solvers.fista_flops(
                    n_latents, n_features, n_iter=n_iter, nonneg=nonneg, restart=restart)
        assert flops("matching_pursuit", **sizes, n_iter=n_iter) == solvers.matching_pursuit_flops(
            n_latents, n_features, n_iter=n_iter)
    for k in range(1, min(n_latents, n_features) + 1):
        assert flops("omp", **sizes, k=k) == solvers.omp_flops(n_latents, n_features, k=k)
    # a warm start: matching pursuit pays its residual once
    assert solvers.matching_pursuit_flops(16, 8, n_iter=3, warm_start=True) == 3 * 305 + 256 + 8


@pytest.mark.parametrize("n_latents,n_features", [(16, 8), (64, 8), (5, 3)])
def test_dispatcher_is_the_encoders_own_count(n_latents, n_features):
    """``eval.flops`` only dispatches: it equals the function beside each encoder and model."""
    n, m = n_latents, n_features
    sizes = {"n_latents": n, "n_features": m}
    assert flops("sae", **sizes) == sae.sae_flops(n, m) == encoders.encoder_flops("sae", n, m) == 4 * m * n + n
    for n_iter, hidden in ((1, 1), (3, 32)):
        for name in encoders.ENCODERS:
            kw = {"hidden": hidden, "n_iter": n_iter}
            assert flops(name, **sizes, **kw) == encoders.encoder_flops(name, n, m, **kw)
            for samples, steps, learn in ((1, 1, True), (7, 3, False)):
                run = {"n_samples": samples, "n_steps": steps, "learn_decoder": learn}
                assert flops(name, **sizes, **kw, phase="training", **run) == encoders.encoder_training_flops(
                    name, n, m, **kw, **run)
                assert flops("adam_codes", **sizes, phase="training", **run) == (
                    sparse_coding.sparse_coding_training_flops(n, m, **run))
        assert flops("adam_codes", **sizes, n_iter=n_iter) == sparse_coding.fit_codes_flops(n, m, n_steps=n_iter)
        assert flops("alternating", **sizes, n_iter=n_iter, phase="training", n_samples=10, n_steps=4) == (
            dictionary_learning.dictionary_learning_flops(n, m, n_samples=10, n_iter=4, inner_iter=n_iter))
    assert sae.sae_training_flops(n, m, n_samples=2, n_steps=3) == flops("sae", **sizes, phase="training",
                                                                          n_samples=2, n_steps=3)
    # hand counts of the generic training rule (N=16, M=8): topk forward 544, backward 2 * 544 + 2 * (128 + 16)
    assert encoders.encoder_training_flops("topk", 16, 8, n_samples=1, n_steps=1, learn_decoder=False) == (
        544 + 2 * 544 + 288)
    assert encoders.encoder_params("lista", 16, 8, n_iter=3) == 128 + 256 + 48
    assert dictionary_learning.dictionary_learning_flops(16, 8, n_samples=100, n_iter=10, inner_iter=20) == (
        10 * (100 * (solvers.fista_flops(16, 8, n_iter=20, nonneg=True) + 512 + 256) + 16 * (256 + 48)))


def test_bad_input():
    with pytest.raises(ValueError, match="`method`"):
        flops("lars", n_latents=4, n_features=2)
    with pytest.raises(ValueError, match="`n_iter`"):
        flops("fista", n_latents=4, n_features=2)
    with pytest.raises(ValueError, match="`k`"):
        flops("omp", n_latents=4, n_features=2, k=5)
    with pytest.raises(TypeError, match="`n_latents`"):
        flops("matmul", n_latents=4.0, n_features=2)
    with pytest.raises(ValueError, match="return_info"):
        flops("homotopy", n_latents=4, n_features=2)
    with pytest.raises(ValueError, match="`n_iter`"):
        solvers.fista_flops(4, 2, n_iter=0)
    with pytest.raises(TypeError, match="`n_features`"):
        solvers.omp_flops(4, None, k=1)
    with pytest.raises(ValueError, match="`name`"):
        encoders.encoder_flops("vae", 4, 2)
    with pytest.raises(ValueError, match="`n_iter`"):
        encoders.encoder_flops("lista", 4, 2)
    with pytest.raises(ValueError, match="`n_steps`"):
        sparse_coding.fit_codes_flops(4, 2, n_steps=0)
    with pytest.raises(ValueError, match="`n_samples`"):
        flops("alternating", n_latents=4, n_features=2, n_iter=3, phase="training", n_steps=2)
    with pytest.raises(ValueError, match="phase"):
        flops("alternating", n_latents=4, n_features=2, n_iter=3)

"""Classic dictionary learners on the same training data, scored like ours (the issue's peers).

- scikit-learn ``MiniBatchDictionaryLearning`` (coordinate descent, non-negative codes), test codes
  by its own ``transform`` (Lasso, same ``alpha``).
- SPAMS ``trainDL`` (Mairal et al. 2010, online dictionary learning, ``posAlpha``), test codes by
  ``spams.lasso`` (``pos=True``); skipped with a note when SPAMS is not installed (``bench`` extra).

Both minimise ``0.5 ||x - s D||^2 + lam ||s||_1`` per sample with ``lam = methods.peer_lam``; one
fit per seed in a Python loop (they are CPU libraries), wall time summed over seeds.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from experiments.amortisation_gap.config import AmortisationGapConfig
from experiments.amortisation_gap.methods import Method


def sklearn_dl(x: np.ndarray, x_test: np.ndarray, n_latents: int, lam: float, n_iter: int, seed: int):
    """``(dictionary [N, M], test codes [B, N])`` by scikit-learn's MiniBatchDictionaryLearning."""
    from sklearn.decomposition import MiniBatchDictionaryLearning

    model = MiniBatchDictionaryLearning(n_components=n_latents, alpha=lam, max_iter=n_iter, fit_algorithm="cd",
                                        transform_algorithm="lasso_cd", transform_alpha=lam, positive_code=True,
                                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x)
        return model.components_, model.transform(x_test)


def spams_dl(x: np.ndarray, x_test: np.ndarray, n_latents: int, lam: float, n_iter: int, seed: int):
    """``(dictionary [N, M], test codes [B, N])`` by SPAMS trainDL + lasso (non-negative codes)."""
    import spams

    np.random.seed(seed)
    xf = np.asfortranarray(x.T.astype(np.float64))
    d = spams.trainDL(xf, K=n_latents, lambda1=lam, iter=n_iter, posAlpha=True, mode=2, verbose=False, numThreads=1)
    z = spams.lasso(np.asfortranarray(x_test.T.astype(np.float64)), D=np.asfortranarray(d), lambda1=lam, mode=2,
                    pos=True)
    return np.asarray(d).T, np.asarray(z.toarray()).T


def run_peers(config: AmortisationGapConfig, host: dict[str, np.ndarray], *, progress: bool = True) -> list[dict[str, Any]]:
    """Results entries (same layout as ours) for each available peer."""
    from experiments.amortisation_gap.run import score, summarise

    m = config.methods
    peers = {"sklearn MiniBatchDL": (sklearn_dl, m.peer_iters), "SPAMS trainDL": (spams_dl, 5 * m.peer_iters)}
    try:
        import spams  # noqa: F401
    except ImportError:
        peers.pop("SPAMS trainDL")
        if progress:
            print("[amortisation-gap] SPAMS not installed (pip install -e '.[bench]'): its row is skipped")
    out = []
    for name, (fit, n_iter) in peers.items():
        t0 = time.perf_counter()
        dicts, codes = zip(*[fit(host["x"][s], host["x_test"][s], config.data.n_latents, m.peer_lam, n_iter, seed)
                             for s, seed in enumerate(config.train.seed_values)])
        wall = time.perf_counter() - t0
        method = Method("unknown", f"{name} ({n_iter} it)", "peer", np.stack(codes), np.stack(dicts), None, 0, wall, 0.0,
                        True)
        out.append(summarise(method, score(method, host), config.train.seed_values))
    return out

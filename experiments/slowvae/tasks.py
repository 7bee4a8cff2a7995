"""The SlowVAE experiment's tasks: pairs of sprites drawn inside the step, the loss, the scores.

One :class:`jaxsparse.train.Task` per transition (``lap``, ``loc``, ``natural``); the models are a
grid of loss weights inside it (``Task.hparams``: SlowVAE ``beta=1, gamma=10`` and β-VAE ``beta=8,
gamma=0``), so one compiled program trains every model × seed, and each seed's models start from the
same initial parameters and see the same batches: the SlowVAE − β-VAE comparison is paired. A step draws ``batch_pairs`` factor pairs from ``fold_in(key, step)`` (so a resumed run sees the
same batches), renders both frames, encodes them, samples the posterior once and decodes it, and
takes an Adam step on :func:`jaxsparse.losses.slowvae_loss` (the β-VAE: ``gamma = 0``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsparse.data import sprites
from jaxsparse.eval import disentanglement as dis
from jaxsparse.eval import mcc
from jaxsparse.experiments.slowvae.config import SlowVAEConfig
from jaxsparse.losses import slowvae_loss
from jaxsparse.models import vae
from jaxsparse.train import Task

ENCODE_BATCH = 1024  # images per call of the jitted encoder at evaluation


def pair_sampler(config: SlowVAEConfig, transition: str) -> Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]:
    """``sample(key, n) -> (factors_t0, factors_t1)`` of ``transition`` with the config's options."""
    d = config.data
    if transition == "lap":
        return partial(sprites.lap_pairs, rate=tuple(d.rate_range))
    if transition == "loc":
        return partial(sprites.loc_pairs, k=d.loc_k)
    return sprites.natural_pairs


def loss_weights(config: SlowVAEConfig) -> dict[str, jax.Array]:
    """The grid of models as loss weights: ``{"beta": [H], "gamma": [H]}`` in ``model.models`` order
    (the β-VAE is SlowVAE's loss with ``gamma = 0``)."""
    m = config.model
    table = {"slowvae": (m.beta, m.gamma), "betavae": (m.betavae_beta, 0.0)}
    beta, gamma = zip(*(table[name] for name in m.models))
    return {"beta": jnp.asarray(beta, jnp.float32), "gamma": jnp.asarray(gamma, jnp.float32)}


def make_source(key: jax.Array) -> dict[str, jax.Array]:
    """A run's source: only the key its batches are folded from (sprites are rendered per step)."""
    return {"key": jax.random.key_data(key)}


def batch(config: SlowVAEConfig, sample: Callable, source: dict[str, jax.Array], step: jax.Array) -> jax.Array:
    """``[batch_pairs, 2, S, S, 1]`` frames ``(x_{t-1}, x_t)`` of step ``step``."""
    key = jax.random.fold_in(jax.random.wrap_key_data(source["key"]), step)
    f0, f1 = sample(key, config.data.batch_pairs)
    return sprites.render(jnp.stack([f0, f1], axis=1), image_size=config.data.image_size)


def loss(rate: float, params: Any, x: jax.Array, key: jax.Array,
         weights: dict[str, jax.Array]) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The pair loss of one batch ``x [B, 2, S, S, 1]`` with one posterior sample per frame, for
    one grid point ``weights = {"beta", "gamma"}`` (scalars)."""
    mean, logvar = vae.encode(params, x)
    logits = vae.decode(params, vae.sample_posterior(key, mean, logvar))
    value, parts = slowvae_loss(logits, x, mean, logvar, beta=weights["beta"], gamma=weights["gamma"], rate=rate)
    return value, {k: parts[k] for k in ("recon", "kl", "transition")}


@partial(jax.jit, static_argnames="image_size")
def _encode_factors(params: Any, factors: jax.Array, *, image_size: int) -> jax.Array:
    return vae.encode(params, sprites.render(factors, image_size=image_size))[0]


def encoder(params: Any, image_size: int) -> Callable[[np.ndarray], np.ndarray]:
    """``encode(factors [n, 5]) -> posterior means [n, n_latents]`` (host arrays), rendering and
    encoding in jitted batches of at most :data:`ENCODE_BATCH` rows, padded to a power of two (so
    a few compiled programs serve every call)."""

    def encode(factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors, np.int32)
        n = len(factors)
        size = min(ENCODE_BATCH, 1 << max(n - 1, 0).bit_length())  # a power of two: few programs
        out = []
        for i in range(0, n, size):
            chunk = factors[i:i + size]
            padded = np.concatenate([chunk, np.zeros((size - len(chunk), chunk.shape[1]), np.int32)])
            out.append(np.asarray(_encode_factors(params, padded, image_size=image_size))[:len(chunk)])
        return np.concatenate(out).astype(np.float64)

    return encode


def _uniform_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` factor vectors uniform over the sprites grid (host)."""
    return np.stack([rng.integers(0, size, n) for size in sprites.FACTOR_SIZES], axis=1).astype(np.int32)


def scores(config: SlowVAEConfig, params: Any, source: Any = None) -> dict[str, float]:
    """The configured disentanglement scores (``eval.metrics``) of one trained model (host; the same
    samples for every run).

    MCC is Spearman + Hungarian over all 5 factors (shape included, as the factors' indices); MIG and
    modularity on ``eval.n_points`` samples; DCI, SAP, explicitness on ``eval.n_train``/``eval.n_test``;
    BetaVAE/FactorVAE on ``eval.vote_train``/``vote_eval`` points of 64 pairs.
    """
    e = config.eval
    rng = np.random.default_rng(e.seed)
    encode_factors = encoder(params, config.data.image_size)
    factors = _uniform_factors(rng, e.n_points)
    f_train, f_test = _uniform_factors(rng, e.n_train), _uniform_factors(rng, e.n_test)
    want = set(e.metrics)
    codes = encode_factors(factors) if want & {"mcc", "mig", "modularity"} else None
    split = (encode_factors(f_train), f_train, encode_factors(f_test), f_test) if want & {"dci", "sap", "explicitness"} else None
    votes = dict(batch_size=64, num_train=e.vote_train, num_eval=e.vote_eval)
    out: dict[str, float] = {}
    if "mcc" in want:
        out["mcc"] = mcc(factors, codes, method="spearman")["mcc"]
    if "mig" in want:
        out["mig"] = dis.mig(codes, factors)
    if "modularity" in want:
        out["modularity"] = dis.modularity(codes, factors)
    if "dci" in want:
        d = dis.dci(*split, random_state=e.seed, n_estimators=e.dci_estimators)
        out.update(dci_disentanglement=d["disentanglement"], dci_completeness=d["completeness"],
                   dci_informativeness=d["informativeness_test"])
    if "sap" in want:
        out["sap"] = dis.sap(*split)
    if "explicitness" in want:
        out["explicitness"] = dis.explicitness(*split)
    # BetaVAE/FactorVAE: ``encode_factors`` renders, so ``render`` passes the factors through
    if "beta_vae" in want:
        out["beta_vae"] = dis.beta_vae_score(encode_factors, _uniform_factors, lambda f: f, e.seed, **votes)["eval_accuracy"]
    if "factor_vae" in want:
        out["factor_vae"] = dis.factor_vae_score(encode_factors, _uniform_factors, lambda f: f, e.seed, **votes,
                                                 num_variance_estimate=e.n_points)["eval_accuracy"]
    return out


def build(config: SlowVAEConfig) -> dict[str, Task]:
    """``{transition: Task}``, each training every model of ``model.models`` (a loss-weight grid)."""
    d, m = config.data, config.model
    return {
        transition: Task(
            init=lambda key, source: vae.init(key, n_latents=m.n_latents, image_size=d.image_size),
            loss_fn=partial(loss, m.rate),
            optimizer=optax.adam(m.lr),
            data_fn=partial(batch, config, pair_sampler(config, transition)),
            make_source=make_source,
            evaluate=partial(scores, config),
            hparams=loss_weights(config),
        )
        for transition in d.transitions
    }

"""The configuration of ``llm-saes`` (see the package docstring)."""

from __future__ import annotations

import dataclasses

from jaxsparse.train import ConfigError, TrainConfig

ENCODERS = ("sae", "topk", "jumprelu", "mlp")


@dataclasses.dataclass(frozen=True)
class LLMSAEConfig:
    """SAE encoders on a sentence transformer's residual stream, at equal training budget.

    Attributes:
      packages: installed packages whose docstrings are the corpus (:func:`jaxsparse.data.text.docstring_corpus`).
      text_files: the user's own UTF-8 text files instead (one document per paragraph); overrides ``packages``.
      max_docs: documents kept (``None``: all; the default is a CPU-sized corpus).
      max_length: tokens per document (truncated; [CLS] and [SEP] are not stored).
      layer: residual stream after block ``layer`` of MiniLM's 6 (0: the embeddings).
      store: activation store directory; ``""`` uses ``$JAXSPARSE_CACHE`` (default
        ``~/.cache/jaxsparse``)``/activations/<model>-layer<L>-len<T>-<corpus hash>-<dtype>``, extracted once
        and reused (resumable).
      store_dtype: ``float32`` or ``float16`` on disk.
      eval_fraction: the last fraction of the documents, held out for every score.
      expansion: latents per activation dimension (``N = expansion * 384``).
      encoders: trained encoder families (:mod:`jaxsparse.models.encoders`).
      lam: L1 weight of :func:`jaxsparse.losses.reconstruction_l1` (``mean (x - x_hat)^2 + lam mean |z|``
        on activations scaled to mean squared norm ``d``), the same for every encoder, as the main job.
        Chosen for a sparse SAE: lam 0.05 gave the SAE an L0 of 938 of 1,536 latents (FVU 0.006; 2,000
        steps, 3 seeds); at 1,000 steps and one seed lam 0.5 / 2 / 5 gave L0 505 / 153 / 46 (FVU 0.037 /
        0.091 / 0.152) (``--set lam=... --set encoders=sae --set train.seeds=1 --set train.steps=1000``).
      topk_k: TopK's ``k``.  mlp_hidden: the MLP encoder's hidden width.
      lr, batch_size: Adam learning rate and tokens per step.
      ito_iters: FISTA iterations of SAE+ITO (warm-started at the SAE's codes, on its learned decoder).
      n_eval: held-out tokens scored (evenly spaced over the held-out documents).
      n_stimuli: held-out tokens whose snippets are embedded for the 2AFC index (a subset of ``n_eval``).
      n_scored: live latents per method scored by the index (a fixed random subset).
      window: snippet = the token and ``window`` tokens each side.
      n_trials, n_refs: the 2AFC index's trials and references per side.
    """

    packages: tuple[str, ...] = ("numpy",)
    text_files: tuple[str, ...] = ()
    max_docs: int | None = 1000
    max_length: int = 64
    layer: int = 3
    store: str = ""
    store_dtype: str = "float32"
    eval_fraction: float = 0.1
    expansion: int = 4
    encoders: tuple[str, ...] = ENCODERS
    lam: float = 5.0
    topk_k: int = 32
    mlp_hidden: int = 768
    lr: float = 1e-3
    batch_size: int = 256
    ito_iters: int = 100
    n_eval: int = 4096
    n_stimuli: int = 1000
    n_scored: int = 64
    window: int = 6
    n_trials: int = 20
    n_refs: int = 9
    train: TrainConfig = TrainConfig(steps=2000, seeds=3, log_every=100, checkpoint_every=500)

    def __post_init__(self):
        if not self.packages and not self.text_files:
            raise ConfigError("`packages` or `text_files` must name the corpus")
        if self.max_docs is not None and self.max_docs < 2:
            raise ConfigError(f"`max_docs` must be None or >= 2, got {self.max_docs}")
        if not 3 <= self.max_length <= 512:
            raise ConfigError(f"`max_length` must be in 3..512 (MiniLM's positions), got {self.max_length}")
        if not 0 <= self.layer <= 6:
            raise ConfigError(f"`layer` must be in 0..6 (MiniLM has 6 blocks; 0 is the embeddings), got {self.layer}")
        if self.store_dtype not in ("float32", "float16"):
            raise ConfigError(f"`store_dtype` must be 'float32' or 'float16', got {self.store_dtype!r}")
        if not 0 < self.eval_fraction < 1:
            raise ConfigError(f"`eval_fraction` must be in (0, 1), got {self.eval_fraction}")
        if not self.encoders or any(e not in ENCODERS for e in self.encoders):
            raise ConfigError(f"`encoders` must be a non-empty subset of {ENCODERS}, got {self.encoders}")
        for name in ("expansion", "topk_k", "mlp_hidden", "batch_size", "ito_iters", "n_eval", "n_scored",
                     "n_trials", "n_refs", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"`{name}` must be >= 1, got {getattr(self, name)}")
        if self.topk_k > 384 * self.expansion:
            raise ConfigError(f"`topk_k` must be <= the {384 * self.expansion} latents, got {self.topk_k}")
        if not self.lam >= 0 or not self.lr > 0:
            raise ConfigError(f"need lam >= 0 and lr > 0, got lam={self.lam}, lr={self.lr}")
        need = 2 * self.n_trials * (self.n_refs + 1)
        if not need <= self.n_stimuli <= self.n_eval:
            raise ConfigError(f"`n_stimuli` must be in [2 n_trials (n_refs + 1) = {need}, n_eval = {self.n_eval}], "
                              f"got {self.n_stimuli}")


def smoke() -> LLMSAEConfig:
    """A seconds-long run for tests: 24 documents of the ``json`` package, 2 encoders, 30 steps."""
    return LLMSAEConfig(packages=("json",), max_docs=24, max_length=24, layer=2, expansion=1, encoders=("sae", "topk"),
                        lam=0.5, topk_k=8, batch_size=64, ito_iters=5, n_eval=96, n_stimuli=48, n_scored=4, n_trials=2,
                        n_refs=3, eval_fraction=0.25,
                        train=TrainConfig(steps=30, seeds=2, log_every=10, checkpoint_every=30))

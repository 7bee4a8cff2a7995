"""Paper 3: DIET (datum-index classification) against SSL's extra designs at an equal budget.

Ibrahim, Klindt & Balestriero, "Occam's razor for self supervised learning: what is sufficient to
learn good representations?" (2024). DIET, a SimCLR-style and a BYOL-style objective train one
backbone on one augmentation pipeline for the same steps and views per step, each over a learning
rate x weight decay grid and seeds in one vmapped program, on data that ships offline
(scikit-learn's digits, procedural sprites); each run is scored by a linear probe
(:mod:`.tasks`, :mod:`.config`, :mod:`.analysis`).

Command: ``jaxsparse run ssl-occam`` (numbers in the README's section "Paper 3").
"""

from jaxsparse.experiments.ssl_occam.analysis import analyze
from jaxsparse.experiments.ssl_occam.config import SSLConfig, paper, smoke
from jaxsparse.experiments.ssl_occam.tasks import build
from jaxsparse.train import register

NAME = "ssl-occam"

register(NAME, SSLConfig, build, analyze=analyze, module=__name__)

__all__ = ["NAME", "SSLConfig", "analyze", "build", "paper", "smoke"]

"""Metrics shared by every experiment: arrays in, floats or small dicts out."""

from jaxsparse.eval.compute import flops
from jaxsparse.eval.identifiability import linear_r2
from jaxsparse.eval.matching import dictionary_mcc, mcc
from jaxsparse.eval.sparsity import dead_fraction, fvu, l0, support_f1

__all__ = ["dead_fraction", "dictionary_mcc", "flops", "fvu", "l0", "linear_r2", "mcc", "support_f1"]

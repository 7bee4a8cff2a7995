"""LLVM options that let XLA:CPU vectorise elementwise loops over narrow arrays; ``jaxsparse``'s commands set them.

XLA:CPU (jaxlib 0.10) emits an elementwise fusion as a scalar loop nest over its output shape and leaves
the SIMD code to LLVM's loop vectoriser (its SLP vectoriser is off). LLVM fully unrolls an inner loop
of up to about 40 iterations before the vectoriser runs, and the unrolled rows then form an
interleaved access group wider than the vectoriser's default limit of 8. So a fusion whose output's
last dimension is 12 to 40 runs as scalar code, 5 to 7 times slower than with a last dimension of 8
or of 48 and more (below). Small models meet this everywhere: paper 1's SAE has 16 latents, so its
activations, their gradients and the loss terms are ``[B, 16]`` arrays.

:data:`LLVM_OPTIONS` caps LLVM's full unrolling at 15 iterations and allows interleave groups of 16.
The cap was 16 at first; a width-16 loop was then still unrolled, and a fusion adding a constant to a
``[..., 16]`` array (as the gradients of paper 1's 16-latent models do) stayed scalar. Measured with
``python benchmarks/cpu_codegen.py --compare 16`` (one core, caps 16 and 15 in alternating processes,
best of 2 rounds): ``x + c`` at width 16 33.4 -> 7.2 us per pass (widths 12 to 15 take 33 us
either way, the others 7-8 us), ``max(x, 0) - 0.5`` at width 16 8.0 -> 10.5 us (others unchanged);
one training step of 5 seeds: JumpReLU 571 -> 449 us, LISTA-3 1075 -> 990 us, dictionary learning
8.9 -> 7.4 ms, SAE, sparse coding and known-Z SAE 5-6 % and MLP-32 and MLP-256 2 % faster. TopK-3
took 596 us (580 us at the cap of 16 with its ranks laid out for that cap, 1530 us without:
:func:`jaxsparse.models.encoders.keep_top_k`).
Measured with the first cap of 16 (``python benchmarks/cpu_codegen.py``: one core of an AVX-512 Xeon, jaxlib 0.10.2, each side
in its own process): ``max(x, 0) - 0.5`` on 81 920 float32 in a ``fori_loop`` took 54.5-54.8 us per
pass at widths 12 to 32 without the options and 8.1-10.0 us with them (8.2-10.2 us at 4, 8, 48, 64
and 256 either way); one training step of 5 seeds of paper 1's models: SAE 476 -> 344 us, TopK-3
1.29x, LISTA-3 1.35x, MLP-32 1.51x, sparse coding 1.74x, MLP-256 1.08x faster.

The options reach LLVM through ``XLA_FLAGS`` (``--xla_backend_extra_options``: XLA hands options
that do not start with ``xla_`` to LLVM). XLA reads ``XLA_FLAGS`` once, when JAX starts its backend,
so :func:`set_cpu_codegen_flags` must run before the first computation. They change which loops are
vectorised, not the operations; vector code may contract a multiply and an add into one FMA where the
scalar code did not, so a result can differ in its last bit. Measured: ``JAXSPARSE_COMPILE_CACHE=off
jaxsparse run amortisation-gap`` gave the same 975 per-seed scores bit for bit with and without the
options, in 247.0 s and 243.5 s against 305.8 s and 308.2 s (2 cores, interleaved). The solvers on
``data.sparse_coding_data(key(0), 4096, 256, 64, 8, noise=0.01)`` at ``lam=0.05``, run once in a
process with and once without the options: OMP (k = 8) and FISTA (80 iterations) codes identical,
303 of the 1 048 576 homotopy (``max_active=32``) codes different, by at most 1.2e-7.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import MutableMapping

LLVM_OPTIONS = ("-max-interleave-group-factor=16", "-unroll-full-max-count=15")
"""LLVM options :func:`set_cpu_codegen_flags` adds (see the module docstring)."""

_FLAG = "--xla_backend_extra_options"
OPT_OUT_ENV = "JAXSPARSE_CPU_CODEGEN"
"""Set to ``off`` to keep :func:`set_cpu_codegen_flags` from adding the options (e.g. to time without them)."""


def set_cpu_codegen_flags(environ: MutableMapping[str, str] | None = None) -> bool:
    """Add :data:`LLVM_OPTIONS` to ``XLA_FLAGS`` in ``environ`` (default ``os.environ``) when JAX will run on CPU.

    Left alone: an ``XLA_FLAGS`` that already sets ``--xla_backend_extra_options`` (the user's choice
    wins), ``JAXSPARSE_CPU_CODEGEN=off`` (:data:`OPT_OUT_ENV`), and processes whose JAX may run on an
    accelerator (``JAX_PLATFORMS`` naming another platform first, or, without ``JAX_PLATFORMS``, a
    GPU or TPU plugin installed), because the same options would reach LLVM's GPU code generation too.
    Call it before JAX's first computation; worker processes started afterwards inherit the variable.

    Returns:
      whether the options were added.
    """
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if _FLAG in flags or env.get(OPT_OUT_ENV, "").strip().lower() == "off" or not _cpu_only(env):
        return False
    env["XLA_FLAGS"] = f"{flags} {_FLAG}={','.join(LLVM_OPTIONS)}".strip()
    return True


def _cpu_only(env: MutableMapping[str, str]) -> bool:
    """Whether JAX in this process will use its CPU backend as the default."""
    platforms = env.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip().lower() == "cpu"
    if importlib.util.find_spec("libtpu") is not None or importlib.metadata.entry_points(group="jax_plugins"):
        return False
    try:
        import jax_plugins  # namespace package of the older CUDA/ROCm plugins
    except ImportError:
        return True
    return not list(getattr(jax_plugins, "__path__", []))


__all__ = ["LLVM_OPTIONS", "OPT_OUT_ENV", "set_cpu_codegen_flags"]

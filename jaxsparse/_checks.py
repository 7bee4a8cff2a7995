"""Input validation shared by public functions: errors name the argument and what was expected.

Checks that need values (finiteness, signs) run only on concrete arrays; under ``jit``/``vmap``
the inputs are tracers and only the static checks (shapes, dtypes) apply.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when ``x`` holds values (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def as_float_array(name: str, x: Any, *, min_ndim: int = 1) -> jax.Array:
    """Convert ``x`` to a floating JAX array, rejecting integer/bool dtypes, empty and non-finite input."""
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"`{name}` must have a floating dtype (float32/float64), got {x.dtype}")
    if x.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s), got shape {tuple(x.shape)}")
    if x.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(x.shape)}")
    if is_concrete(x):
        with jax.ensure_compile_time_eval():  # concrete input inside an outer jit: check now, do not stage
            finite = bool(jnp.all(jnp.isfinite(x)))
        if not finite:
            raise ValueError(f"`{name}` contains NaN or infinite values")
    return jnp.asarray(x)


def check_key(name: str, key: Any) -> None:
    """Require a single PRNG key: a typed key of shape ``()`` or raw ``uint32 [2]`` key data."""
    if not isinstance(key, jax.Array):
        raise TypeError(f"`{name}` must be a JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}")
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    if (typed and key.ndim != 0) or (not typed and (key.dtype != jnp.uint32 or key.shape != (2,))):
        raise ValueError(f"`{name}` must be a single PRNG key, got dtype {key.dtype} and shape {tuple(key.shape)}")


def positive_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Validate a static integer hyperparameter in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an int, got {type(value).__name__}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"`{name}` must be >= {minimum}{upper}, got {value}")
    return value


def nonneg_scalar(name: str, value: Any) -> Any:
    """Validate a (possibly traced) non-negative scalar such as ``lam``."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number, got bool")
    if is_concrete(value):
        arr = np.asarray(value)
        if arr.ndim != 0 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise TypeError(f"`{name}` must be a real scalar, got {value!r}")
        if not np.isfinite(arr) or arr < 0:
            raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
    return value


def check_dictionary_and_signal(dictionary: Any, x: Any) -> tuple[jax.Array, jax.Array]:
    """Validate a ``[n_latents, n_features]`` dictionary and signals ``x: [..., n_features]``."""
    dictionary = as_float_array("dictionary", dictionary, min_ndim=2)
    if dictionary.ndim != 2:
        raise ValueError(
            f"`dictionary` must have shape [n_latents, n_features], got {tuple(dictionary.shape)}"
            " (vmap over a leading axis for several dictionaries)"
        )
    x = as_float_array("x", x, min_ndim=1)
    if x.shape[-1] != dictionary.shape[1]:
        raise ValueError(
            f"`x` must have shape [..., n_features={dictionary.shape[1]}] to match `dictionary` "
            f"{tuple(dictionary.shape)}, got {tuple(x.shape)}"
        )
    return dictionary, x


def check_init(init: Any, x: jax.Array, n_latents: int) -> jax.Array | None:
    """Validate a warm start ``init: [..., n_latents]`` matching the batch shape of ``x``."""
    if init is None:
        return None
    init = as_float_array("init", init, min_ndim=1)
    expected = x.shape[:-1] + (n_latents,)
    if init.shape != expected:
        raise ValueError(f"`init` must have shape {expected} (x's batch shape + n_latents), got {tuple(init.shape)}")
    return init

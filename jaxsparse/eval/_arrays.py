"""Validation of the array arguments of host-side metrics: errors name the argument.

The metrics of ``jaxsparse.eval`` run on host in float64 NumPy (Hungarian matching and least
squares are scipy/NumPy calls), so unlike ``jaxsparse._checks.as_float_array`` this returns a NumPy
array and refuses tracers instead of skipping the value checks under ``jit``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxsparse._checks import is_concrete, nonneg_scalar


def host_array(name: str, x: Any, *, ndim: int | None = None, min_ndim: int = 1, allow_int: bool = False) -> np.ndarray:
    """Validate ``x`` and return it as a float64 NumPy array.

    Args:
      name: the argument's name, quoted in error messages.
      x: a NumPy or JAX array (or nested list).
      ndim: the exact number of dimensions required, or ``None`` for ``>= min_ndim``.
      min_ndim: the least number of dimensions when ``ndim`` is ``None``.
      allow_int: accept integer and bool dtypes (codes, discrete factors) and cast them to float64.
    Returns:
      ``np.ndarray`` of dtype float64 with the shape of ``x``.
    """
    if not is_concrete(x):
        raise TypeError(f"`{name}` must be a concrete array: metrics in jaxsparse.eval run on host, not under jit/vmap")
    if isinstance(x, (list, tuple)):
        x = np.asarray(x)
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"`{name}` must be an array, got {type(x).__name__}")
    x = np.asarray(x)
    allowed = (np.floating, np.integer, np.bool_) if allow_int else (np.floating,)
    if not any(np.issubdtype(x.dtype, kind) for kind in allowed):
        expected = "a real (float, int or bool)" if allow_int else "a floating"
        raise TypeError(f"`{name}` must have {expected} dtype, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s), got shape {x.shape}")
    if x.ndim < min_ndim:
        raise ValueError(f"`{name}` must have at least {min_ndim} dimension(s), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"`{name}` must not be empty, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"`{name}` contains NaN or infinite values")
    return x


def same_n_samples(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Require ``a`` and ``b`` to have the same number of samples (rows)."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"`{name_b}` must have the same number of samples (rows) as `{name_a}`: "
            f"got shapes {a.shape} and {b.shape}"
        )


def same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Require ``a`` and ``b`` to have the same shape."""
    if a.shape != b.shape:
        raise ValueError(f"`{name_b}` must have the same shape as `{name_a}` {a.shape}, got {b.shape}")


def threshold_value(threshold: Any) -> float:
    """Validate an activity threshold (a finite real number >= 0) and return it as a float."""
    return float(nonneg_scalar("threshold", threshold))

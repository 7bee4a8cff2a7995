"""Input validation helpers: concrete inputs are checked even while an outer jit traces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse._checks import as_float_array


@pytest.mark.parametrize("make", [np.asarray, jnp.asarray])
def test_as_float_array_checks_concrete_input_inside_an_outer_jit(make):
    bad = make(np.array([1.0, np.nan], np.float32))
    good = make(np.array([1.0, 2.0], np.float32))
    with pytest.raises(ValueError, match="`x` contains NaN"):
        jax.jit(lambda: as_float_array("x", bad))()
    np.testing.assert_array_equal(jax.jit(lambda: as_float_array("x", good))(), good)
    # traced input: only the static checks apply
    assert jax.jit(lambda v: as_float_array("x", v))(good).shape == (2,)

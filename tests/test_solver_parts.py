"""Building blocks of the active-set solvers: inverse-Gram updates and index reductions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsparse.solvers.gram_inverse import add_factors, rank_one, remove_factors
from jaxsparse.solvers.reductions import argmax_last, argmin_last, max_abs_and_argmax, min_and_argmin


def inverse_add(h, v, g_jj, slot):
    q, coef, schur = add_factors(h, v, g_jj, slot)
    return rank_one(h, q, coef), schur


def inverse_remove(h, slot):
    return rank_one(h, *remove_factors(h, slot))


def _embedded_inverse(gram, atoms, slots, n_slots):
    h = np.zeros((n_slots, n_slots))
    sub = np.linalg.inv(gram[np.ix_(atoms, atoms)])
    h[np.ix_(slots, slots)] = sub
    return h


def test_inverse_add_and_remove_match_numpy():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(12, 8))
    gram = d @ d.T
    n_slots = 6
    with jax.enable_x64(True):
        h = jnp.zeros((n_slots, n_slots))
        slot_atoms = {}
        for slot, atom in [(0, 3), (1, 7), (2, 1), (3, 10)]:
            v = np.zeros(n_slots)
            for s, a in slot_atoms.items():
                v[s] = gram[a, atom]
            h, schur = inverse_add(h, jnp.asarray(v), gram[atom, atom], slot)
            slot_atoms[slot] = atom
            slots = sorted(slot_atoms)
            np.testing.assert_allclose(h, _embedded_inverse(gram, [slot_atoms[s] for s in slots], slots, n_slots),
                                       rtol=1e-9, atol=1e-12)
            assert float(schur) > 0
        h = inverse_remove(h, 1)
        del slot_atoms[1]
        slots = sorted(slot_atoms)
        np.testing.assert_allclose(h, _embedded_inverse(gram, [slot_atoms[s] for s in slots], slots, n_slots),
                                   rtol=1e-9, atol=1e-12)
        # re-use the freed slot
        v = np.zeros(n_slots)
        for s, a in slot_atoms.items():
            v[s] = gram[a, 5]
        h, _ = inverse_add(h, jnp.asarray(v), gram[5, 5], 1)
        slot_atoms[1] = 5
        slots = sorted(slot_atoms)
        np.testing.assert_allclose(h, _embedded_inverse(gram, [slot_atoms[s] for s in slots], slots, n_slots),
                                   rtol=1e-9, atol=1e-12)


def test_schur_complement_zero_for_dependent_atom():
    d = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gram = d @ d.T
    h = jnp.zeros((3, 3))
    h, _ = inverse_add(h, jnp.zeros(3), gram[0, 0], 0)
    h, _ = inverse_add(h, jnp.array([gram[0, 1], 0.0, 0.0]), gram[1, 1], 1)
    _, schur = inverse_add(h, jnp.array([gram[0, 2], gram[1, 2], 0.0]), gram[2, 2], 2)
    assert abs(float(schur)) < 1e-6


def test_index_reductions_match_numpy():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 37)).astype(np.float32)
    v[3, [4, 9]] = 10.0  # ties go to the first index
    v[5, [2, 30]] = -10.0
    np.testing.assert_array_equal(argmax_last(jnp.asarray(v)), np.argmax(v, -1))
    np.testing.assert_array_equal(argmin_last(jnp.asarray(v)), np.argmin(v, -1))
    assert argmin_last(jnp.array([True, False, False])) == 1
    assert argmax_last(jnp.array([1.0, jnp.inf, 2.0])) == 1
    value, index = min_and_argmin(jnp.asarray(v.T), axis=0)  # down the columns, as OMP calls it
    np.testing.assert_array_equal(index, np.argmin(v, -1))
    np.testing.assert_array_equal(value, v.min(-1))


@pytest.mark.parametrize("n", [32, 40, 256])
def test_min_and_argmin_down_columns_in_blocks(n):
    """The two-level path (``n`` a multiple of 8): first index on ties within and across blocks of 8,
    infinities, and ``n - 1`` for an all-NaN column, as the one-level path (``n = 37``) and numpy."""
    rng = np.random.default_rng(n)
    v = rng.integers(-3, 3, size=(n, 64)).astype(np.float32)  # many ties
    v[:, 0] = 5.0
    v[[1, 2, 9, n - 1], 0] = -7.0  # ties inside the first block and across blocks
    v[:, 1] = np.inf
    v[[7, 8], 2] = -9.0  # a tie straddling a block boundary
    v[:, 3] = np.nan
    value, index = jax.jit(lambda a: min_and_argmin(a, axis=0))(jnp.asarray(v))
    np.testing.assert_array_equal(index[4:], np.argmin(v[:, 4:], axis=0))
    np.testing.assert_array_equal(value[4:], v[:, 4:].min(0))
    assert index.tolist()[:4] == [1, 0, 7, n - 1]
    assert value[1] == np.inf


@pytest.mark.parametrize("n", [32, 37, 256])
def test_max_abs_and_argmax_down_columns(n):
    """OMP's selection: the largest magnitude and its first index, ties of either sign included."""
    rng = np.random.default_rng(n)
    v = rng.integers(-3, 4, size=(n, 64)).astype(np.float32)
    v[:, 0] = 1.0
    v[[3, 9, 20], 0] = [-7.0, 7.0, -7.0]  # a tie between signs, across blocks
    v[:, 1] = np.nan
    value, index = jax.jit(max_abs_and_argmax)(jnp.asarray(v))
    np.testing.assert_array_equal(index[2:], np.argmax(np.abs(v[:, 2:]), axis=0))
    np.testing.assert_array_equal(value[2:], np.abs(v[:, 2:]).max(0))
    assert index.tolist()[:2] == [3, n - 1] and value[0] == 7.0

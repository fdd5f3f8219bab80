"""cell_sums and joined_sums (model/coupling.py) against numpy's own broadcast sums of the same counts."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from aftermath.model.coupling import cell_sums, joined_sums

DIMS = ["origin", "age"]
BLOCKS = [(0, (2, 3)), (6, (1, 3))]  # a compartment by origin and age, then one by age only (origin extent 1)
COUNTS = np.random.default_rng(1).random(9)


def _sums(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return np.array([COUNTS[indices[start:stop]].sum() for start, stop in pairwise(indptr)])


def test_sums_by_a_dimension_count_a_block_without_it_in_every_row():
    by_origin = COUNTS[:6].reshape(2, 3).sum(axis=1) + COUNTS[6:].sum()  # the broadcast sum over age
    indptr, indices = cell_sums(BLOCKS, DIMS, "origin", 2)
    assert indptr[0] == 0 and indptr.dtype == indices.dtype == np.int64
    np.testing.assert_allclose(_sums(indptr, indices), by_origin)
    by_age = COUNTS[:6].reshape(2, 3).sum(axis=0) + COUNTS[6:]
    np.testing.assert_allclose(_sums(*cell_sums(BLOCKS, DIMS, "age", 3)), by_age)


def test_one_row_sums_every_cell_and_no_block_sums_nothing():
    indptr, indices = cell_sums(BLOCKS, DIMS, None)
    assert list(indptr) == [0, 9] and _sums(indptr, indices) == COUNTS.sum()
    indptr, indices = cell_sums([], DIMS, None)
    assert list(indptr) == [0, 0] and len(indices) == 0


def test_joined_row_sets_keep_their_order():
    first, second = cell_sums(BLOCKS, DIMS, "origin", 2), cell_sums(BLOCKS, DIMS, None)
    indptr, indices = joined_sums([first, second])
    assert list(indptr) == [0, 6, 12, 21]
    np.testing.assert_allclose(_sums(indptr, indices), [*_sums(*first), COUNTS.sum()])

"""The plain-Python checks on small arrays agree with numpy's, on both sides of the size limit."""

from __future__ import annotations

import numpy as np
import pytest

from gymserve.policies.small_arrays import SMALL_SIZE, all_finite, within_bounds

SPECIAL = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("shape", [(28,), (1, 28), (3, 2, 4), (SMALL_SIZE,), (SMALL_SIZE + 1,), (64, 28)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_finite_agrees_with_numpy_wherever_a_special_value_sits(shape, dtype):
    array = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    assert all_finite(array)
    for value in SPECIAL:
        for index in (0, array.size // 2, array.size - 1):
            spoiled = array.copy()
            spoiled.flat[index] = value
            assert all_finite(spoiled) is False
    huge = np.full(shape, np.finfo(dtype).max, dtype)
    assert all_finite(huge) == bool(np.isfinite(huge).all()) is True


def test_all_finite_holds_for_integers_at_their_limits_and_not_for_both_infinities():
    for dtype in (np.int64, np.uint64, np.int8, np.bool_):
        assert all_finite(np.full(SMALL_SIZE, np.iinfo(dtype).max if dtype != np.bool_ else True, dtype))
    both = np.array([np.inf, -np.inf, 1.0], np.float32)
    assert all_finite(both) is False


@pytest.mark.parametrize("batch", [1, 4])  # one row is checked against the bounds without repeating them
def test_within_bounds_matches_clipping_leaving_the_values_unchanged(batch):
    rng = np.random.default_rng(1)
    low, high = np.array([-1.0, 0.0, -np.inf], np.float32), np.array([1.0, 0.0, 2.0], np.float32)
    bounds = (low.tolist(), high.tolist())
    for _ in range(300):
        rows = rng.choice([-2.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, np.nan, -np.inf], (batch, 3))
        rows = rows.astype(np.float32)
        clipped = np.minimum(np.maximum(rows, low), high)
        unchanged = bool(np.array_equal(clipped, rows))  # False when a NaN is present
        assert within_bounds(rows, *bounds) == unchanged


def test_within_bounds_leaves_large_arrays_to_numpy():
    rows = np.zeros((SMALL_SIZE + 1, 1), np.float32)
    assert within_bounds(rows[:SMALL_SIZE], [0.0], [0.0]) is True
    assert within_bounds(rows, [0.0], [0.0]) is False

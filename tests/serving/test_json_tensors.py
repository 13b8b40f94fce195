"""Arrays from JSON numbers: plain lists of floats take a shorter road to the same array."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest

from gymserve.serving.apis import json_tensors
from gymserve.serving.apis.json_tensors import numbers

FLOAT32 = np.dtype(np.float32)
# floats that round to float32 in every way: to nearest, to a subnormal, to zero, past its range
ROUNDED = [0.1, -0.0, 1 / 3, 1e-45, 7e-46, 3.4028235e38, 3.4028236e38, 1e39, -1e39, 2.0**-149 * 1.5]


def through_own_type(value: object) -> np.ndarray:
    """The array the general road builds: numpy's own type first, then the wanted dtype."""
    return np.array(value).astype(FLOAT32)


@pytest.mark.parametrize(
    "value",
    [ROUNDED, [ROUNDED[:5], ROUNDED[5:]], [], [[]], [[0.5]], [1.5, 2, 3.25], [[1.5, 2], [3, 4.5]]],
    ids=["flat", "rows", "empty", "empty row", "one", "with ints", "rows with ints"],
)
def test_numbers_builds_what_the_general_road_builds(value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # float32 overflow, on both roads alike
        expected = through_own_type(value)
        array = numbers(value, FLOAT32, "observations")
    assert array.dtype == FLOAT32 and array.shape == expected.shape
    assert np.array_equal(array, expected, equal_nan=True)
    assert np.array_equal(np.signbit(array), np.signbit(expected))


@pytest.mark.parametrize(
    "value",
    [
        [1.5, "2.5"],  # a string numpy would parse
        [1.5, None],
        [True, False],
        [1.5, 2**70],  # an integer beyond int64
        [[1.5, 2.5], [3.5]],  # ragged rows
        [[1.5, 2.5], 3.5],
        [{"x": 1.5}],
    ],
)
def test_anything_but_numbers_in_regular_lists_is_refused(value):
    with pytest.raises(ValueError, match="observations must be numbers in nested lists"):
        numbers(value, FLOAT32, "observations")


def test_integer_dtypes_refuse_floats_on_any_road():
    with pytest.raises(ValueError, match="must be integers"):
        numbers([1.5, 2.5], np.dtype(np.int64), "seed")
    assert numbers([1, 2], np.dtype(np.int64), "seed").tolist() == [1, 2]


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ([0.5, 1.5], True),
        ([[0.5], [1.5]], True),
        ([], True),
        ([0.5, 1], False),  # an int: its own road, where one beyond int64 is refused
        ([0.5, True], False),
        ([[0.5], [1.5, 2.5]], False),
        ([[0.5], 1.5], False),
        ([[[0.5]]], False),
        (0.5, False),
        ("0.5", False),
    ],
)
def test_only_lists_and_rows_of_floats_take_the_short_road(value, plain, monkeypatch):
    assert json_tensors._plain_floats(value) is plain
    taken = []
    monkeypatch.setattr(json_tensors, "implied_shape", lambda *args: taken.append(args) or (0,))
    with contextlib.suppress(ValueError):  # what is refused is refused on the general road
        numbers(value, FLOAT32, "observations")
    assert (not taken) is plain


def test_a_float64_target_keeps_every_digit():
    value = [0.1, 1 / 3, 1e300]
    assert numbers(value, np.dtype(np.float64), "x").tolist() == value

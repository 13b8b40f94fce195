"""Value checks on small arrays in plain Python, numpy's ufuncs kept for large ones.

A policy checks every observation for NaN and infinities and clips every action to its
bounds. On a single observation numpy's ufunc machinery costs more than the check itself,
and leaves the model run that follows it several microseconds slower (measured with
onnxruntime: about 8 us more per run after `np.isfinite(x).all()` on 28 floats, 1 us after a
Python loop over the same values). Below `SMALL_SIZE` values these checks therefore run as
Python loops; the results are the same either way.
"""

from __future__ import annotations

import math
import operator
from itertools import cycle

import numpy as np

SMALL_SIZE = 256  # values; a Python loop over more costs more than the ufunc


def all_finite(array: np.ndarray) -> bool:
    """Whether `array` (of numbers) holds no NaN and no infinity."""
    if array.size > SMALL_SIZE:
        return bool(np.isfinite(array).all())
    return all(map(math.isfinite, array.ravel().tolist()))


def within_bounds(rows: np.ndarray, low: list[float], high: list[float]) -> bool:
    """Whether every row of `rows` lies within [`low`, `high`] (a row's values, flattened); False for NaN.

    Only small arrays are checked (False above `SMALL_SIZE` values): the caller then clips, which
    leaves values within the bounds unchanged.
    """
    if rows.size > SMALL_SIZE:
        return False
    values = rows.ravel().tolist()  # row after row, each as long as the bounds
    return all(map(operator.le, cycle(low), values)) and all(map(operator.le, values, cycle(high)))

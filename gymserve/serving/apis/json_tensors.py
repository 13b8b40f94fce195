"""Arrays from JSON numbers, checked against the request's budget before they are built.

A JSON list of lists implies its shape: the first element at each level gives it, so the
shape is read, and its bytes taken from the `RequestBudget`, before numpy builds anything; a
ragged list, strings, booleans or nulls are refused with the shape that was expected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gymserve.serving.server.request_limits import MAX_RANK

if TYPE_CHECKING:
    from gymserve.serving.apis.http_protocol import Json
    from gymserve.serving.server.request_limits import RequestBudget

_KINDS = {"f": "iuf", "i": "iu", "u": "iu"}  # numpy kinds accepted for each wanted kind


def implied_shape(value: Json, what: str, max_rank: int = MAX_RANK) -> tuple[int, ...]:
    """The shape a nested list declares by its first elements, read at most `max_rank` levels deep."""
    shape: list[int] = []
    while isinstance(value, list):
        if len(shape) == max_rank:
            raise ValueError(f"{what} nest more than {max_rank} lists deep")
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def json_array(
    value: Json, dtype: np.dtype, what: str, budget: RequestBudget, max_rank: int = MAX_RANK
) -> np.ndarray:
    """`value` (a number or nested lists of numbers) as an array of `dtype`, once its shape fits `budget`."""
    dtype = np.dtype(dtype)
    shape = implied_shape(value, what, max_rank)
    budget.take(len(shape), shape, dtype.itemsize, what, max_rank)
    return numbers(value, dtype, shape, what)


def numbers(value: Json, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    """`value` as an array of `dtype` and `shape`; ValueError when it is anything but such numbers."""
    dtype = np.dtype(dtype)
    try:
        array = np.array(value)
    except ValueError:  # ragged lists
        array = None
    if array is None or array.dtype.kind not in _KINDS[dtype.kind] or array.shape != shape:
        kind = "numbers" if dtype.kind == "f" else "integers"
        raise ValueError(f"{what} must be {kind} in nested lists of shape {list(shape)}")
    return array.astype(dtype)

"""Arrays from JSON numbers, checked against the request's budget before they are built.

A JSON list of lists implies its shape: the first element at each level gives it, so the
shape is read, and its bytes taken from the `RequestBudget`, before numpy builds anything; a
ragged list, strings, booleans or nulls are refused with the shape that was expected.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from gymserve.serving.server.request_limits import MAX_RANK

if TYPE_CHECKING:
    from gymserve.serving.apis.http_protocol import Json
    from gymserve.serving.server.request_limits import RequestBudget

_KINDS = {"f": "iuf", "i": "iu", "u": "iu"}  # numpy kinds accepted for each wanted kind
_FLOAT, _LIST = {float}, {list}  # the types a plain list of floats or of rows of floats holds


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
    return numbers(value, dtype, what, max_rank)


def numbers(value: Json, dtype: np.dtype, what: str, max_rank: int = MAX_RANK) -> np.ndarray:
    """`value` as an array of `dtype`, of the shape its lists imply (at most `max_rank` deep);
    ValueError when it is anything but such numbers."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and _plain_floats(value):  # the usual body: nothing to refuse, one conversion
        return np.array(value, dtype)
    shape = implied_shape(value, what, max_rank)
    try:
        array = np.array(value)
    except ValueError:  # ragged lists
        array = None
    if array is None or array.dtype.kind not in _KINDS[dtype.kind] or array.shape != shape:
        kind = "numbers" if dtype.kind == "f" else "integers"
        raise ValueError(f"{what} must be {kind} in nested lists of shape {list(shape)}")
    return array.astype(dtype)


def _plain_floats(value: Json) -> bool:
    """Whether `value` is a list of floats or a list of equally long lists of floats, told by C loops.

    numpy then builds the array in the wanted dtype at once, where anything else (ints, which may
    exceed int64, booleans, strings) goes through an array of its own type first, so that its kind
    can be refused; served, that costs a small policy call about a tenth more."""
    if type(value) is not list:
        return False
    types = {*map(type, value)}
    if types <= _FLOAT:
        return True
    return (
        types == _LIST
        and len({*map(len, value)}) == 1
        and {*map(type, itertools.chain.from_iterable(value))} <= _FLOAT
    )

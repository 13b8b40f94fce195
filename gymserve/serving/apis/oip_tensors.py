"""Open Inference Protocol tensors to and from numpy: data type names, typed contents and raw bytes.

An input declares its data type and shape beside its values, which come either in the typed
field of `InferTensorContents` its data type uses or as raw little-endian bytes. The declared
shape is taken from the request's `RequestBudget` before any array is built, and the count of
values (or bytes) must match it exactly, so an array is never larger than the message.
BYTES tensors are not served: no policy input or output is a string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gymserve.serving.server.echo import echo
from gymserve.serving.server.request_limits import MAX_RANK, RequestBudget

# data type name    numpy dtype (little-endian)    InferTensorContents field (None: raw bytes only)
DATATYPES: dict[str, tuple[np.dtype, str | None]] = {
    "BOOL": (np.dtype("bool"), "bool_contents"),
    "INT8": (np.dtype("i1"), "int_contents"),
    "INT16": (np.dtype("<i2"), "int_contents"),
    "INT32": (np.dtype("<i4"), "int_contents"),
    "INT64": (np.dtype("<i8"), "int64_contents"),
    "UINT8": (np.dtype("u1"), "uint_contents"),
    "UINT16": (np.dtype("<u2"), "uint_contents"),
    "UINT32": (np.dtype("<u4"), "uint_contents"),
    "UINT64": (np.dtype("<u8"), "uint64_contents"),
    "FP16": (np.dtype("<f2"), None),
    "FP32": (np.dtype("<f4"), "fp32_contents"),
    "FP64": (np.dtype("<f8"), "fp64_contents"),
}
DATATYPE_OF: dict[np.dtype, str] = {dtype: name for name, (dtype, _) in DATATYPES.items()}


def numpy_dtype(datatype: str, what: str) -> np.dtype:
    """The dtype of data type name `datatype`; ValueError naming `what` and the served ones otherwise."""
    entry = DATATYPES.get(datatype)
    if entry is None:
        raise ValueError(f"{what} has datatype {echo(datatype)}; expected one of {', '.join(DATATYPES)}")
    return entry[0]


def datatype_of(array: np.ndarray) -> str:
    """The data type name of `array`'s dtype (taken as little-endian)."""
    dtype = array.dtype if array.dtype.itemsize == 1 else array.dtype.newbyteorder("<")
    name = DATATYPE_OF.get(dtype)
    if name is None:
        raise ValueError(f"arrays of dtype {array.dtype} have no Open Inference Protocol data type")
    return name


def declared_shape(
    datatype: str, shape: Sequence[int], what: str, budget: RequestBudget, max_rank: int = MAX_RANK
) -> tuple[np.dtype, tuple[int, ...]]:
    """The dtype and shape an input declares, once they fit the request's budget."""
    dtype = numpy_dtype(datatype, what)
    return dtype, budget.take(len(shape), shape, dtype.itemsize, what, max_rank)


def from_raw(raw: bytes, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A read-only array viewing `raw`, which must hold exactly `shape`'s elements."""
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"raw contents of {what} have {len(raw)} bytes; {datatype_of(np.empty(0, dtype))} "
            f"of shape {list(shape)} takes {expected}"
        )
    return np.frombuffer(raw, dtype).reshape(shape)


def from_contents(contents: Any, dtype: np.dtype, shape: tuple[int, ...], what: str) -> np.ndarray:
    """The array of typed `contents` (an `InferTensorContents`), which must hold `shape`'s elements."""
    datatype = datatype_of(np.empty(0, dtype))
    field = DATATYPES[datatype][1]
    if field is None:
        raise ValueError(f"{what} is {datatype}, which is sent as raw contents only")
    values = getattr(contents, field)
    count = math.prod(shape)
    if len(values) != count:
        raise ValueError(f"{what} has {len(values)} values in {field}; shape {list(shape)} takes {count}")
    return np.asarray(values, dtype).reshape(shape)


def fill_contents(contents: Any, array: np.ndarray) -> str:
    """Write `array`'s values into the typed field of `contents` its data type uses; that data type."""
    datatype = datatype_of(array)
    field = DATATYPES[datatype][1]
    if field is None:
        raise ValueError(f"{datatype} outputs are sent as raw contents only")
    getattr(contents, field).extend(array.ravel().tolist())
    return datatype


def to_raw(array: np.ndarray) -> tuple[str, bytes]:
    """`array`'s data type name and its elements' little-endian bytes, row-major."""
    datatype = datatype_of(array)
    return datatype, np.ascontiguousarray(array, DATATYPES[datatype][0]).tobytes()

"""Open Inference Protocol tensors to and from numpy: typed `InferTensorContents` and raw bytes.

An input declares its data type and shape beside its values, which come either in the typed
field of `InferTensorContents` its data type uses or as raw little-endian bytes. The declared
shape is taken from the request's `RequestBudget` before any array is built
(`core.declared_shape`), and the count of values (or bytes) must match it
exactly, so an array is never larger than the message.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gymserve.serving.apis.open_inference.core import DATATYPES, datatype_of

# data type name -> InferTensorContents field (FP16 has none: raw bytes only)
CONTENTS_FIELDS: dict[str, str | None] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP16": None,
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


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
    field = CONTENTS_FIELDS[datatype]
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
    field = CONTENTS_FIELDS[datatype]
    if field is None:
        raise ValueError(f"{datatype} outputs are sent as raw contents only")
    getattr(contents, field).extend(array.ravel().tolist())
    return datatype


def to_raw(array: np.ndarray) -> tuple[str, bytes]:
    """`array`'s data type name and its elements' little-endian bytes, row-major."""
    datatype = datatype_of(array)
    return datatype, np.ascontiguousarray(array, DATATYPES[datatype]).tobytes()

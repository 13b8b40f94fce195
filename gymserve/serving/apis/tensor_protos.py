"""numpy arrays to and from TensorFlow's `TensorProto`, as the TensorFlow Serving API carries them.

A client fills either `tensor_content` (raw little-endian bytes, what `tf.make_tensor_proto`
writes for arrays) or the typed value list (`float_val`, `int64_val`, ...; one value stands
for every element, as TensorFlow reads it). Answers always use `tensor_content`.
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

DTYPES: dict[int, np.dtype] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_INT32: np.dtype("<i4"),
    types_pb2.DT_INT64: np.dtype("<i8"),
}
DATA_TYPES: dict[np.dtype, int] = {dtype: data_type for data_type, dtype in DTYPES.items()}
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
}


def data_type_name(data_type: int) -> str:
    try:
        return types_pb2.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def from_tensor_proto(tensor: tensor_pb2.TensorProto, what: str) -> np.ndarray:
    """The array `tensor` holds; ValueError names `what` when its dtype, shape or values disagree."""
    dtype = DTYPES.get(tensor.dtype)
    if dtype is None:
        known = ", ".join(data_type_name(data_type) for data_type in DTYPES)
        raise ValueError(f"{what} has dtype {data_type_name(tensor.dtype)}; expected one of {known}")
    if tensor.tensor_shape.unknown_rank:
        raise ValueError(f"{what} has an unknown rank; give its shape")
    shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
    if shape and min(shape) < 0:
        raise ValueError(f"{what} has shape {list(shape)}; dimensions must not be negative")
    size = math.prod(shape)
    if tensor.tensor_content:
        if len(tensor.tensor_content) != size * dtype.itemsize:
            raise ValueError(
                f"{what} holds {len(tensor.tensor_content)} bytes; shape {list(shape)} of "
                f"{data_type_name(tensor.dtype)} needs {size * dtype.itemsize}"
            )
        return np.frombuffer(tensor.tensor_content, dtype).reshape(shape)
    values = np.asarray(getattr(tensor, _VALUE_FIELDS[tensor.dtype]), dtype)
    if len(values) == 1 and size > 1:
        return np.full(shape, values[0], dtype)
    if len(values) != size:
        raise ValueError(f"{what} holds {len(values)} values; shape {list(shape)} needs {size}")
    return values.reshape(shape)


def to_tensor_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """`array` as a TensorProto with `tensor_content` (integers as int64)."""
    array = np.asarray(array)
    if array.dtype.kind in "iub":
        array = array.astype("<i8")
    data_type = DATA_TYPES.get(array.dtype.newbyteorder("<"))
    if data_type is None:
        raise ValueError(f"cannot send arrays of dtype {array.dtype}; expected float32, float64 or integers")
    tensor = tensor_pb2.TensorProto(dtype=data_type, tensor_content=array.astype(DTYPES[data_type]).tobytes())
    for size in array.shape:
        tensor.tensor_shape.dim.add(size=size)
    return tensor

"""numpy arrays to and from TensorFlow's `TensorProto`, as the TensorFlow Serving API carries them.

A client fills either `tensor_content` (raw little-endian bytes, what `tf.make_tensor_proto`
writes for arrays) or the typed value list (`float_val`, `int64_val`, ...; one value stands
for every element, as TensorFlow reads it). Answers always use `tensor_content`. A tensor is
read in two steps: `declared_tensor` checks the shape it declares against the request's budget
(see `request_limits`), so one value declaring a huge shape is refused before anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2

from gymserve.serving.server.request_limits import MAX_RANK, RequestBudget

DTYPES: dict[int, np.dtype] = {
    types_pb2.DT_FLOAT: np.dtype("<f4"),
    types_pb2.DT_DOUBLE: np.dtype("<f8"),
    types_pb2.DT_INT32: np.dtype("<i4"),
    types_pb2.DT_INT64: np.dtype("<i8"),
    types_pb2.DT_UINT8: np.dtype("u1"),
}
DATA_TYPES: dict[np.dtype, int] = {dtype: data_type for data_type, dtype in DTYPES.items()}
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT8: "int_val",  # TensorFlow keeps uint8 values in int_val
}


def data_type_name(data_type: int) -> str:
    try:
        return types_pb2.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


@dataclass(frozen=True)
class DeclaredTensor:
    """The dtype and shape a TensorProto declares, within its request's budget; `array()` reads it."""

    proto: tensor_pb2.TensorProto
    what: str
    dtype: np.dtype
    shape: tuple[int, ...]

    def array(self) -> np.ndarray:
        """The array: `tensor_content` viewed, or the typed values (one value fills the whole shape)."""
        size = math.prod(self.shape)
        content = self.proto.tensor_content
        if content:
            if len(content) != size * self.dtype.itemsize:
                raise ValueError(
                    f"{self.what} holds {len(content)} bytes; shape {list(self.shape)} of "
                    f"{data_type_name(self.proto.dtype)} needs {size * self.dtype.itemsize}"
                )
            return np.frombuffer(content, self.dtype).reshape(self.shape)
        values = getattr(self.proto, _VALUE_FIELDS[self.proto.dtype])
        if len(values) == 1 and size > 1:
            return np.full(self.shape, values[0], self.dtype)  # the budget admitted this many bytes
        if len(values) != size:
            raise ValueError(f"{self.what} holds {len(values)} values; shape {list(self.shape)} needs {size}")
        return np.asarray(values, self.dtype).reshape(self.shape)


def declared_tensor(
    tensor: tensor_pb2.TensorProto, what: str, budget: RequestBudget, max_rank: int = MAX_RANK
) -> DeclaredTensor:
    """What `tensor` declares, charged to `budget`; ValueError names `what` when it cannot be read."""
    dtype = DTYPES.get(tensor.dtype)
    if dtype is None:
        known = ", ".join(data_type_name(data_type) for data_type in DTYPES)
        raise ValueError(f"{what} has dtype {data_type_name(tensor.dtype)}; expected one of {known}")
    if tensor.tensor_shape.unknown_rank:
        raise ValueError(f"{what} has an unknown rank; give its shape")
    dims = tensor.tensor_shape.dim
    shape = budget.take(len(dims), (dim.size for dim in dims), dtype.itemsize, what, max_rank)
    return DeclaredTensor(tensor, what, dtype, shape)


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

"""numpy arrays to and from the wire `Tensor`: raw little-endian bytes plus dtype and shape.

Decoding views the bytes read from the message (read-only) without copying them again, so an
observation batch costs one copy on each side of the wire.
"""

from __future__ import annotations

import math

import numpy as np

from gymserve.serving.client.protos import policy_service_pb2 as pb

DTYPES: dict[int, np.dtype] = {
    pb.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    pb.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    pb.DATA_TYPE_INT64: np.dtype("<i8"),
    pb.DATA_TYPE_UINT8: np.dtype("u1"),
}
DATA_TYPES: dict[np.dtype, int] = {dtype: data_type for data_type, dtype in DTYPES.items()}


def fill_tensor(tensor: pb.Tensor, array: np.ndarray) -> pb.Tensor:
    """Write `array` into `tensor` (a message field or a new message); ints become int64."""
    array = np.asarray(array)
    data_type = DATA_TYPES.get(array.dtype)
    if data_type is None:
        array = _as_wire_dtype(array)
        data_type = DATA_TYPES[array.dtype]
    tensor.dtype = data_type
    tensor.shape[:] = array.shape
    tensor.content = array.tobytes()
    return tensor


def _as_wire_dtype(array: np.ndarray) -> np.ndarray:
    """`array` as int64 (integers other than uint8, booleans) or as a little-endian float of its own width."""
    if array.dtype.kind in "iub":
        return array.astype("<i8")
    little_endian = array.dtype.newbyteorder("<")
    if little_endian not in DATA_TYPES:
        raise ValueError(
            f"cannot send arrays of dtype {array.dtype}; expected float32, float64, uint8 or integers"
        )
    return array.astype(little_endian)


def to_tensor(array: np.ndarray) -> pb.Tensor:
    return fill_tensor(pb.Tensor(), array)


def from_tensor(tensor: pb.Tensor, what: str = "tensor") -> np.ndarray:
    """A read-only array viewing `tensor`'s bytes; ValueError names `what` when they disagree."""
    dtype = DTYPES.get(tensor.dtype)
    if dtype is None:
        known = ", ".join(pb.DataType.Name(data_type) for data_type in DTYPES)
        raise ValueError(f"{what} has data type {data_type_name(tensor.dtype)}; expected one of {known}")
    shape = tuple(tensor.shape)
    if shape and min(shape) < 0:
        raise ValueError(f"{what} has shape {shape}; dimensions must not be negative")
    content = tensor.content  # each read of the field is a new copy of its bytes
    expected_bytes = math.prod(shape) * dtype.itemsize
    if len(content) != expected_bytes:
        raise ValueError(
            f"{what} holds {len(content)} bytes; shape {shape} of {dtype.name} needs {expected_bytes}"
        )
    return np.ndarray(shape, dtype, content)  # one call: frombuffer + reshape cost twice as much


def data_type_name(data_type: int) -> str:
    """The enum name of a wire data type, or its number when it has none."""
    try:
        return pb.DataType.Name(data_type)
    except ValueError:
        return str(data_type)

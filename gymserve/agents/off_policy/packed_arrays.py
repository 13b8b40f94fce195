"""Named arrays carried into a TensorFlow call as one tensor per dtype, and split again inside it.

Every input of a compiled call costs a conversion to a tensor and a check against the traced
signature, tens of microseconds each on these CPUs; an off-policy update takes seven to nine
minibatch arrays. Concatenating those of one dtype along a flat last axis costs a few
microseconds, and the split inside the traced function is free of Python.

The packed arrays are handed to TensorFlow without a copy: `tf.constant` copies an array twice,
0.6 ms of CPU for a minibatch of 32 Pong frame stacks, a tenth of a DQN step on Atari.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import tensorflow as tf

ALIGNMENT = 64  # bytes: TensorFlow's CPU kernels require tensor data aligned to this


@dataclass(frozen=True)
class PackedLayout:
    """Where each named array lies in its dtype's packed array: arrays share `leading` dimensions."""

    leading: tuple[int, ...]
    dtypes: tuple[np.dtype, ...]  # one packed array each, in this order
    fields: tuple[tuple[str, int, tuple[int, ...]], ...]  # (name, index into dtypes, trailing shape)

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray], leading_dims: int) -> PackedLayout:
        """The layout of `arrays`, whose first `leading_dims` dimensions are the same in all."""
        first = next(iter(arrays.values()))
        leading = first.shape[:leading_dims]
        dtypes: list[np.dtype] = []
        fields = []
        for name, array in arrays.items():
            if array.shape[:leading_dims] != leading:
                raise ValueError(
                    f"array {name!r} has shape {array.shape}; expected leading dimensions {leading}"
                )
            if array.dtype not in dtypes:
                dtypes.append(array.dtype)
            fields.append((name, dtypes.index(array.dtype), array.shape[leading_dims:]))
        return cls(tuple(leading), tuple(dtypes), tuple(fields))

    def specs(self) -> list[tf.TensorSpec]:
        """The signature of `pack`'s tensors."""
        pairs = zip(self.dtypes, self._widths, strict=True)
        return [tf.TensorSpec((*self.leading, width), dtype) for dtype, width in pairs]

    def pack(self, arrays: dict[str, np.ndarray]) -> list[tf.Tensor]:
        """One tensor per dtype: the named arrays flattened past `leading` and concatenated into an
        aligned buffer that the tensor then shares."""
        groups: list[list[np.ndarray]] = [[] for _ in self.dtypes]
        for name, group, _ in self.fields:
            groups[group].append(arrays[name].reshape(*self.leading, -1))
        packed = []
        for dtype, width, parts in zip(self.dtypes, self._widths, groups, strict=True):
            buffer = aligned_empty((*self.leading, width), dtype)
            np.concatenate(parts, axis=-1, out=buffer, casting="no")  # no silent narrowing
            packed.append(shared_tensor(buffer))
        return packed

    def unpack(self, packed: list[tf.Tensor]) -> dict[str, tf.Tensor]:
        """The named tensors again, inside a traced function."""
        offsets = [0] * len(self.dtypes)
        arrays = {}
        for name, group, shape in self.fields:
            width = int(np.prod(shape, dtype=np.int64))
            start = offsets[group]
            offsets[group] += width
            arrays[name] = tf.reshape(packed[group][..., start : start + width], (*self.leading, *shape))
        return arrays

    @cached_property
    def _widths(self) -> list[int]:
        """The packed last dimension of each dtype, worked out once: `pack` runs at every update."""
        widths = [0] * len(self.dtypes)
        for _, group, shape in self.fields:
            widths[group] += int(np.prod(shape, dtype=np.int64))
        return widths


def aligned_empty(shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
    """An uninitialized C-ordered array whose data, if it has any, starts on an `ALIGNMENT` boundary."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)


def shared_tensor(array: np.ndarray) -> tf.Tensor:
    """A tensor over `array`'s memory (DLPack) where TensorFlow can read it in place: a contiguous,
    writable, aligned array of a dtype DLPack carries; a copy otherwise. Unaligned data would stop
    the process at TensorFlow's alignment check, not raise. Tensors are immutable to TensorFlow:
    the caller must not write to `array` while the tensor lives."""
    if array.flags.c_contiguous and array.flags.writeable and array.ctypes.data % ALIGNMENT == 0:
        try:
            return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
        except BufferError:  # a dtype DLPack does not carry, such as bfloat16
            pass
    return tf.constant(array)

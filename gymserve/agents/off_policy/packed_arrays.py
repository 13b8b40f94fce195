"""Named arrays carried into a TensorFlow call as one tensor per dtype, and split again inside it.

Every input of a compiled call costs a conversion to a tensor and a check against the traced
signature, tens of microseconds each on these CPUs; an off-policy update takes seven to nine
minibatch arrays. Concatenating those of one dtype along a flat last axis costs a few
microseconds, and the split inside the traced function is free of Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf


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
        """The signature of `pack`'s arrays."""
        widths = [0] * len(self.dtypes)
        for _, group, shape in self.fields:
            widths[group] += int(np.prod(shape, dtype=np.int64))
        pairs = zip(self.dtypes, widths, strict=True)
        return [tf.TensorSpec((*self.leading, width), dtype) for dtype, width in pairs]

    def pack(self, arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One array per dtype: the named arrays flattened past `leading` and concatenated."""
        groups: list[list[np.ndarray]] = [[] for _ in self.dtypes]
        for name, group, _ in self.fields:
            groups[group].append(arrays[name].reshape(*self.leading, -1))
        return [np.concatenate(parts, axis=-1) for parts in groups]

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

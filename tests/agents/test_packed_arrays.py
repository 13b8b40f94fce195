"""PackedLayout: named arrays of several dtypes survive packing into one tensor per dtype, and
the packed tensors share their buffers with numpy where TensorFlow can read them in place."""

import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.off_policy import packed_arrays
from gymserve.agents.off_policy.packed_arrays import ALIGNMENT, PackedLayout, aligned_empty, shared_tensor


def test_arrays_of_two_dtypes_come_back_exactly_from_a_traced_function():
    rng = np.random.default_rng(0)
    arrays = {
        "observations": rng.normal(size=(2, 5, 3, 4)).astype(np.float32),
        "actions": rng.integers(0, 10**12, size=(2, 5)),
        "returns": rng.normal(size=(2, 5)).astype(np.float32),
        "next_actions": rng.integers(0, 7, size=(2, 5, 2)),
    }
    layout = PackedLayout.of(arrays, leading_dims=2)
    packed = layout.pack(arrays)
    # 12 + 1 float32, 1 + 2 int64
    assert [tuple(tensor.shape) for tensor in packed] == [(2, 5, 13), (2, 5, 3)]
    assert [spec.shape for spec in layout.specs()] == [tensor.shape for tensor in packed]
    assert [tensor.dtype for tensor in packed] == [tf.float32, tf.int64]

    unpack = tf.function(layout.unpack, autograph=False).get_concrete_function(layout.specs())
    unpacked = unpack(packed)
    assert list(unpacked) == list(arrays)
    for name, array in arrays.items():
        assert unpacked[name].dtype == tf.as_dtype(array.dtype)
        np.testing.assert_array_equal(unpacked[name].numpy(), array)


class _Exported:
    """A TensorFlow DLPack capsule in the form numpy's from_dlpack takes."""

    def __init__(self, tensor: tf.Tensor):
        self._capsule = tf.experimental.dlpack.to_dlpack(tensor)

    def __dlpack__(self, **_: object) -> object:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU


def _data_pointer(tensor: tf.Tensor) -> int:
    """Where the tensor's data lies, without a copy."""
    return np.from_dlpack(_Exported(tensor)).ctypes.data


def test_packing_copies_nothing_into_tensorflow_and_refuses_other_dtypes(monkeypatch):
    arrays = {"frames": np.ones((1, 32, 4, 84, 84), np.uint8), "rewards": np.ones((1, 32), np.float32)}
    layout = PackedLayout.of(arrays, leading_dims=2)

    def copy(*_: object, **__: object) -> None:
        raise AssertionError("tf.constant copied a packed array")

    monkeypatch.setattr(packed_arrays.tf, "constant", copy)
    frames, rewards = layout.pack(arrays)
    assert frames.dtype == tf.uint8 and frames.shape == (1, 32, 4 * 84 * 84)
    assert int(tf.reduce_sum(tf.cast(frames, tf.int32))) == 32 * 4 * 84 * 84
    assert rewards.dtype == tf.float32 and rewards.shape == (1, 32, 1)
    with pytest.raises(TypeError, match="according to the rule 'no'"):
        layout.pack(arrays | {"rewards": np.ones((1, 32), np.float64)})


def test_arrays_with_other_leading_dimensions_are_refused():
    arrays = {"a": np.zeros((2, 5, 3), np.float32), "b": np.zeros((2, 4), np.float32)}
    expected = r"array 'b' has shape \(2, 4\); expected leading dimensions \(2, 5\)"
    with pytest.raises(ValueError, match=expected):
        PackedLayout.of(arrays, leading_dims=2)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int64, np.bool_])
def test_an_aligned_array_is_shared_not_copied(dtype):
    array = aligned_empty((4, 7), dtype)
    assert array.ctypes.data % ALIGNMENT == 0 and array.flags.c_contiguous
    array[...] = np.arange(28).reshape(4, 7).astype(dtype)
    tensor = shared_tensor(array)
    assert _data_pointer(tensor) == array.ctypes.data  # one buffer, no copy
    np.testing.assert_array_equal(tensor.numpy(), array)
    assert tensor.dtype == tf.as_dtype(np.dtype(dtype))


def _misaligned(dtype: type, count: int) -> np.ndarray:
    raw = aligned_empty((count + 1,), dtype)
    return raw[1:]  # one element past an aligned start


@pytest.mark.parametrize(
    "array",
    [
        _misaligned(np.float32, 1000),  # TensorFlow's kernels would abort the process on it
        np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],  # not contiguous
        np.arange(8, dtype=np.float32).astype(tf.bfloat16.as_numpy_dtype),  # not carried by DLPack
    ],
    ids=["misaligned", "strided", "bfloat16"],
)
def test_arrays_tensorflow_cannot_read_in_place_are_copied(array):
    array[...] = np.arange(array.size).reshape(array.shape).astype(array.dtype)
    expected = array.astype(np.float32)
    tensor = shared_tensor(array)
    array[...] = 0  # the copy keeps the values it was made with
    np.testing.assert_array_equal(tf.cast(tensor, tf.float32).numpy(), expected)

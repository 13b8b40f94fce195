"""PackedLayout: named arrays of several dtypes survive packing into one tensor per dtype."""

import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.off_policy.packed_arrays import PackedLayout


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
    assert [array.shape for array in packed] == [(2, 5, 13), (2, 5, 3)]  # 12 + 1 float32, 1 + 2 int64
    assert [spec.shape for spec in layout.specs()] == [array.shape for array in packed]

    unpack = tf.function(layout.unpack, autograph=False).get_concrete_function(layout.specs())
    unpacked = unpack([tf.constant(array) for array in packed])
    assert list(unpacked) == list(arrays)
    for name, array in arrays.items():
        assert unpacked[name].dtype == tf.as_dtype(array.dtype)
        np.testing.assert_array_equal(unpacked[name].numpy(), array)


def test_arrays_with_other_leading_dimensions_are_refused():
    arrays = {"a": np.zeros((2, 5, 3), np.float32), "b": np.zeros((2, 4), np.float32)}
    expected = r"array 'b' has shape \(2, 4\); expected leading dimensions \(2, 5\)"
    with pytest.raises(ValueError, match=expected):
        PackedLayout.of(arrays, leading_dims=2)

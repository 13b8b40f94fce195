"""The replay buffer with TF-Agents' arguments: nested specs, batch_size/max_length, get_next, BufferInfo."""

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.off_policy.replay_buffer import ReplayBuffer

NESTED_SPEC = (
    tf.TensorSpec([3], tf.float32, "action"),
    (tf.TensorSpec([5], tf.float32, "lidar"), tf.TensorSpec([3, 2], tf.float32, "camera")),
)


def nested_batch(value, rows):
    """A batch for NESTED_SPEC whose every number is `value`."""
    return (
        np.full((rows, 3), value, np.float32),
        (np.full((rows, 5), value, np.float32), np.full((rows, 3, 2), value, np.float32)),
    )


def counting_buffer(rows, steps, **kwargs):
    """A buffer with spec {"t": int64}, row r holding 100 * r + t for t in 0..steps-1."""
    buffer = ReplayBuffer({"t": ((), np.int64)}, batch_size=rows, **kwargs)
    for t in range(steps):
        buffer.add_batch({"t": 100 * np.arange(rows) + t})
    return buffer


def test_batch_size_and_max_length_size_the_buffer_per_row():
    buffer = ReplayBuffer(NESTED_SPEC, batch_size=32, max_length=1000)
    assert buffer.capacity == 32_000 and buffer.num_envs == 32 and buffer.num_frames == 0
    with pytest.raises(ValueError, match="has 4 rows; expected 32"):
        buffer.add_batch(nested_batch(1.0, 4))
    buffer = counting_buffer(rows=2, steps=7, max_length=5)
    np.testing.assert_array_equal(buffer.gather_all()["t"], [[2, 3, 4, 5, 6], [102, 103, 104, 105, 106]])
    buffer.clear()
    assert buffer.num_envs == 2 and buffer.num_frames == 0


def test_nested_specs_come_back_in_their_structure_with_batch_and_time_dimensions():
    buffer = ReplayBuffer(NESTED_SPEC, batch_size=32, max_length=1000)
    for value in range(6):
        buffer.add_batch(nested_batch(float(value), 32))
    sample, info = buffer.get_next(sample_batch_size=10, num_steps=1)
    assert [leaf.shape for leaf in tf.nest.flatten(sample)] == [(10, 1, 3), (10, 1, 5), (10, 1, 3, 2)]
    assert info.ids.shape == (10,) and info.probabilities.shape == (10,)
    gathered = buffer.gather_all()
    assert [leaf.shape for leaf in tf.nest.flatten(gathered)] == [(32, 6, 3), (32, 6, 5), (32, 6, 3, 2)]
    np.testing.assert_array_equal(gathered[1][1][0, :, 0, 0], [0, 1, 2, 3, 4, 5])
    item, _ = buffer.get_next()
    assert isinstance(item, tuple) and item[1][1].shape == (3, 2)
    assert item[0][0] == item[1][0][0] == item[1][1][2, 1]  # one stored item, not a mix


def test_gymnasium_spaces_nest_as_tuples_and_dicts():
    spec = {
        "observation": gym.spaces.Dict({"pose": gym.spaces.Box(-1, 1, (2,)), "mode": gym.spaces.Discrete(3)}),
        "action": gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (4,)))),
    }
    buffer = ReplayBuffer(spec, capacity=10)
    buffer.add_batch(
        {
            "observation": {"pose": np.zeros((1, 2), np.float32), "mode": np.array([2])},
            "action": (np.array([1]), np.ones((1, 4), np.float32)),
        }
    )
    gathered = buffer.gather_all()
    assert gathered["observation"]["mode"].tolist() == [[2]]
    assert gathered["action"][1].shape == (1, 1, 4) and gathered["action"][1].dtype == np.float32


def test_without_done_windows_are_any_adjacent_items_of_one_row():
    buffer = counting_buffer(rows=3, steps=6, max_length=10)
    windows, info = buffer.get_next(sample_batch_size=3_000, num_steps=2)
    np.testing.assert_array_equal(windows["t"][:, 1] - windows["t"][:, 0], 1)
    assert set(windows["t"][:, 0]) == {100 * row + t for row in range(3) for t in range(5)}
    np.testing.assert_array_equal(info.ids, (windows["t"][:, 0] % 100) * 3 + windows["t"][:, 0] // 100)
    np.testing.assert_allclose(info.probabilities, 1 / 15)


def test_time_stacked_false_gives_a_tuple_of_one_item_per_step_equal_to_the_stacked_window():
    stacked, stacked_info = counting_buffer(rows=3, steps=6, max_length=10, seed=4).get_next(
        sample_batch_size=50, num_steps=3
    )
    steps, info = counting_buffer(rows=3, steps=6, max_length=10, seed=4).get_next(
        sample_batch_size=50, num_steps=3, time_stacked=False
    )
    assert isinstance(steps, tuple) and len(steps) == 3
    for index, step in enumerate(steps):
        np.testing.assert_array_equal(step["t"], stacked["t"][:, index])
    np.testing.assert_array_equal(steps[2]["t"] - steps[0]["t"], 2)
    np.testing.assert_array_equal(info.ids, stacked_info.ids)
    nested = ReplayBuffer(NESTED_SPEC, batch_size=2, max_length=5)
    for value in range(4):
        nested.add_batch(nested_batch(float(value), 2))
    unbatched, _ = nested.get_next(num_steps=2, time_stacked=False)
    assert [leaf.shape for leaf in tf.nest.flatten(unbatched)] == [(3,), (5,), (3, 2)] * 2
    assert unbatched[1][0][0] == unbatched[0][0][0] + 1
    single, _ = nested.get_next(sample_batch_size=4, time_stacked=False)  # no windows: no tuple
    assert single[1][1].shape == (4, 3, 2)


def test_probabilities_count_only_windows_within_one_episode():
    buffer = ReplayBuffer({"t": ((), np.int64), "done": ((), bool)}, capacity=10)
    for t in range(10):
        buffer.add_batch({"t": [t], "done": [t % 4 == 3]})  # episodes 0-3, 4-7, 8-9
    windows, info = buffer.get_next(sample_batch_size=2_000, num_steps=3)
    assert set(windows["t"][:, 0]) == {0, 1, 4, 5}
    np.testing.assert_allclose(info.probabilities, 1 / 4)


def test_ids_keep_counting_once_the_oldest_items_are_overwritten():
    buffer = counting_buffer(rows=2, steps=9, max_length=4)  # keeps t = 5..8
    windows, info = buffer.get_next(sample_batch_size=500)
    np.testing.assert_array_equal(info.ids, (windows["t"] % 100) * 2 + windows["t"] // 100)
    assert info.ids.min() == 10 and info.ids.max() == 17


def test_as_dataset_elements_unpack_into_items_and_buffer_info_and_do_not_depend_on_parallel_calls():
    buffer = counting_buffer(rows=2, steps=8, max_length=8, seed=3)
    serial = [(t["t"].numpy(), info.ids.numpy()) for t, info in buffer.as_dataset(4, num_steps=2).take(5)]
    parallel = buffer.as_dataset(4, num_steps=2, num_parallel_calls=tf.data.AUTOTUNE).take(5)
    for (steps, ids), (items, info) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(items["t"].numpy(), steps)
        np.testing.assert_array_equal(info.ids.numpy(), ids)
    first_ids = [ids for _, ids in serial]
    assert len({ids.tobytes() for ids in first_ids}) > 1  # endless draws, not one batch repeated


def test_a_single_deterministic_pass_reads_every_window_once_time_major():
    buffer = counting_buffer(rows=2, steps=7, max_length=10)
    dataset = buffer.as_dataset(sample_batch_size=4, num_steps=3, single_deterministic_pass=True)
    batches = [(items["t"].numpy().tolist(), info.ids.numpy().tolist()) for items, info in dataset]
    assert batches == [
        ([[0, 1, 2], [100, 101, 102], [3, 4, 5], [103, 104, 105]], [0, 1, 6, 7]),
    ]
    singles = list(buffer.as_dataset(single_deterministic_pass=True))
    assert [int(items["t"]) for items, _ in singles] == [
        0,
        100,
        1,
        101,
        2,
        102,
        3,
        103,
        4,
        104,
        5,
        105,
        6,
        106,
    ]
    np.testing.assert_allclose([float(info.probabilities) for _, info in singles], 1 / 14)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ((np.zeros((2, 3), np.float32),), "expected a sequence of 2 items, got 1"),
        ((np.zeros((2, 3), np.float32), {"lidar": 0}), "expected a sequence of 2 items at '1', got dict"),
        (
            (np.zeros((2, 3), np.float32), (np.zeros((2, 5), np.float32), np.zeros((2, 2, 3), np.float32))),
            r"field '1/1' has shape \(2, 2, 3\)",
        ),
    ],
)
def test_batches_that_do_not_match_a_nested_spec_are_rejected_naming_the_place(batch, message):
    buffer = ReplayBuffer(NESTED_SPEC, capacity=10)
    with pytest.raises(ValueError, match=message):
        buffer.add_batch(batch)
    assert buffer.num_frames == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give capacity .* or max_length"),
        ({"capacity": 10, "max_length": 5}, "not both"),
        ({"batch_size": 0, "max_length": 5}, "batch_size must be a positive integer or None, got 0"),
        ({"batch_size": 4, "capacity": 2}, "does not fit a capacity of 2"),
    ],
)
def test_bad_sizes_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(NESTED_SPEC, **kwargs)


def test_bad_dataset_arguments_are_rejected():
    buffer = counting_buffer(rows=1, steps=3, max_length=3)
    with pytest.raises(ValueError, match=r"num_parallel_calls must be a positive integer or tf\.data"):
        buffer.as_dataset(num_parallel_calls=0)
    with pytest.raises(ValueError, match=r"sample_batch_size must be a positive integer or None, got 2\.5"):
        buffer.as_dataset(sample_batch_size=2.5)

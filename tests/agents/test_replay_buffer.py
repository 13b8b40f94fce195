import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.off_policy.replay_buffer import BufferInfo, ReplayBuffer

SPEC = {"step": ((), np.int64), "observation": ((2,), np.float32), "done": ((), np.bool_)}


def items(steps, dones=None):
    """One batch: env row i holds step `steps[i]` (observation = [step, -step])."""
    steps = np.asarray(steps, np.int64)
    dones = np.zeros(len(steps), bool) if dones is None else np.asarray(dones, bool)
    return {"step": steps, "observation": np.stack([steps, -steps], axis=1).astype(np.float32), "done": dones}


def filled(capacity, num_steps, num_envs=1, episode_length=None):
    """A buffer fed steps 0..num_steps-1 in every env row (row r holds 1000 * r + step)."""
    buffer = ReplayBuffer(SPEC, capacity)
    for step in range(num_steps):
        done = episode_length is not None and step % episode_length == episode_length - 1
        buffer.add_batch(items([1000 * row + step for row in range(num_envs)], [done] * num_envs))
    return buffer


def test_gather_all_returns_each_env_row_in_time_order():
    buffer = filled(capacity=100, num_steps=5, num_envs=2)
    everything = buffer.gather_all()
    assert buffer.num_frames == 10
    np.testing.assert_array_equal(everything["step"], [[0, 1, 2, 3, 4], [1000, 1001, 1002, 1003, 1004]])
    assert everything["observation"].shape == (2, 5, 2)
    assert everything["observation"].dtype == np.float32


def test_fifo_keeps_the_newest_items_once_full():
    buffer = filled(capacity=8, num_steps=11, num_envs=2)  # 4 time slots per row
    assert buffer.num_frames == 8
    np.testing.assert_array_equal(buffer.gather_all()["step"][0], [7, 8, 9, 10])


def test_samples_are_stored_items_drawn_uniformly():
    buffer = filled(capacity=10, num_steps=15)  # holds steps 5..14
    batch = buffer.sample(20_000, np.random.default_rng(0))
    counts = np.bincount(batch["step"], minlength=15)
    assert counts[:5].sum() == 0
    assert np.all(np.abs(counts[5:] - 2000) < 200)  # about 6 standard deviations
    np.testing.assert_array_equal(batch["observation"][:, 0], batch["step"])


def test_windows_stay_within_one_episode_and_never_straddle_the_write_position():
    buffer = filled(capacity=23, num_steps=40, episode_length=5)  # FIFO has wrapped
    windows = buffer.sample(5_000, np.random.default_rng(1), num_steps=3)
    steps = windows["step"]
    assert steps.shape == (5_000, 3)
    np.testing.assert_array_equal(np.diff(steps, axis=1), 1)  # consecutive, oldest first
    assert not windows["done"][:, :-1].any()  # only the last item may end the episode
    assert steps.min() >= 17 and steps.max() <= 39
    # every start allowed by the rules is drawn: 2 of 3 windows per 5-step episode plus the tail
    assert set(steps[:, 0]) == {s for s in range(17, 38) if s % 5 in (0, 1, 2)}


def test_windows_of_parallel_envs_stay_in_their_row():
    buffer = filled(capacity=40, num_steps=10, num_envs=4)
    windows = buffer.sample(1_000, np.random.default_rng(2), num_steps=4)
    np.testing.assert_array_equal(np.diff(windows["step"], axis=1), 1)
    assert set(windows["step"][:, 0] // 1000) == {0, 1, 2, 3}


def test_episode_windows_start_anywhere_and_mask_what_lies_beyond_the_episode_or_the_newest_item():
    buffer = ReplayBuffer(SPEC, 10)
    for step, done in enumerate([False, True, False, False]):
        buffer.add_batch(items([step], [done]))
    windows, mask = buffer.sample_episode_windows(2_000, np.random.default_rng(3), num_steps=3)
    expected_masks = {0: [1, 1, 0], 1: [1, 0, 0], 2: [1, 1, 0], 3: [1, 0, 0]}
    starts = windows["step"][:, 0]
    assert set(starts) == {0, 1, 2, 3}
    for start, row_mask in zip(starts, mask, strict=True):
        np.testing.assert_array_equal(row_mask, expected_masks[start])


def test_as_dataset_yields_batches_of_windows_with_the_spec_dtypes():
    buffer = filled(capacity=50, num_steps=30, episode_length=10)
    dataset = buffer.as_dataset(sample_batch_size=8, num_steps=2)
    items_spec, info_spec = dataset.element_spec
    assert items_spec["observation"] == tf.TensorSpec([8, 2, 2], tf.float32, name="observation")
    assert info_spec == BufferInfo(tf.TensorSpec([8], tf.int64), tf.TensorSpec([8], tf.float32))
    for element, info in dataset.take(3):
        steps = element["step"].numpy()
        np.testing.assert_array_equal(steps[:, 1] - steps[:, 0], 1)
        assert not element["done"].numpy()[:, 0].any()
        np.testing.assert_array_equal(info.ids.numpy(), steps[:, 0])  # one row, nothing dropped: id = step
    single, info = next(iter(buffer.as_dataset()))
    assert single["step"].shape == () and single["observation"].shape == (2,) and info.ids.shape == ()


def test_tensor_specs_describe_fields_too():
    buffer = ReplayBuffer({"x": tf.TensorSpec([3], tf.float32), "done": tf.TensorSpec([], tf.bool)}, 4)
    buffer.add_batch({"x": np.ones((2, 3)), "done": np.zeros(2, bool)})
    assert buffer.gather_all()["x"].dtype == np.float32


def test_load_restores_what_gather_all_returned():
    buffer = filled(capacity=12, num_steps=20, num_envs=3)
    copy = ReplayBuffer(SPEC, 12)
    copy.load(buffer.gather_all())
    for name, array in buffer.gather_all().items():
        np.testing.assert_array_equal(copy.gather_all()[name], array)
    copy.add_batch(items([1, 2, 3]))
    np.testing.assert_array_equal(copy.gather_all()["step"][:, -1], [1, 2, 3])


def test_clear_empties_the_buffer_and_frees_the_row_count():
    buffer = filled(capacity=10, num_steps=3, num_envs=2)
    buffer.clear()
    assert buffer.num_frames == 0 and buffer.gather_all()["step"].shape == (0, 0)
    buffer.add_batch(items([0, 1, 2]))
    assert buffer.num_envs == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"done": ((), np.float32)}, "field 'done' has spec"),
        ({"x": "float32", "done": ((), bool)}, "spec of field 'x'"),
        ({"x": ((-1,), np.float32), "done": ((), bool)}, "non-negative sizes"),
        ({"x": ((2,), "no-such-dtype"), "done": ((), bool)}, "spec of field 'x'"),
        ({}, "non-empty nest"),
    ],
)
def test_bad_specs_are_rejected_naming_the_field(spec, message):
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(spec, 10)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"step": np.zeros(2, np.int64), "done": np.zeros(2, bool)}, r"missing \['observation'\]"),
        ({**items([0, 1]), "extra": np.zeros(2)}, r"unexpected \['extra'\]"),
        ({**items([0, 1]), "observation": np.zeros((2, 3), np.float32)}, r"'observation' has shape \(2, 3\)"),
        ({**items([0, 1]), "observation": np.zeros(2, np.float32)}, r"'observation' has shape \(2,\)"),
        ({**items([0, 1]), "step": np.zeros(2, np.float64)}, "'step' has dtype float64; expected int64"),
        ({**items([0, 1]), "done": np.zeros(3, bool)}, "'done' has 3 rows; expected 2"),
    ],
)
def test_bad_batches_are_rejected_naming_the_field(batch, message):
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(SPEC, 10).add_batch(batch)


def test_the_row_count_is_fixed_by_the_first_batch():
    buffer = filled(capacity=10, num_steps=1, num_envs=2)
    with pytest.raises(ValueError, match="has 3 rows; expected 2"):
        buffer.add_batch(items([0, 1, 2]))


def test_more_rows_than_capacity_is_an_error():
    with pytest.raises(ValueError, match="does not fit a capacity of 2"):
        ReplayBuffer(SPEC, 2).add_batch(items([0, 1, 2]))


def test_sampling_more_than_is_stored_is_an_error():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="holds 0"):
        ReplayBuffer(SPEC, 10).sample(4, rng)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(SPEC, 10).sample_episode_windows(4, rng, 2)
    with pytest.raises(ValueError, match="windows of 3 items"):
        filled(capacity=10, num_steps=2).sample(4, rng, num_steps=3)
    with pytest.raises(ValueError, match="no window of 3"):
        filled(capacity=10, num_steps=6, episode_length=2).sample(4, rng, num_steps=3)

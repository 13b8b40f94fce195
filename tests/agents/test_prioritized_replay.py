import numpy as np
import pytest

from gymserve.agents.off_policy.prioritized_replay import PrioritizedReplayBuffer
from gymserve.agents.off_policy.sum_tree import SumTree

SPEC = {"step": ((), np.int64), "done": ((), np.bool_)}


def filled(capacity=8, steps=8, num_envs=1, exponent=1.0):
    buffer = PrioritizedReplayBuffer(SPEC, capacity, priority_exponent=exponent, priority_epsilon=1e-6)
    for step in range(steps):
        buffer.add_batch({"step": np.arange(num_envs) * 100 + step, "done": np.zeros(num_envs, bool)})
    return buffer


def test_sum_tree_draws_each_index_in_proportion_to_its_value():
    tree = SumTree(6)
    values = np.array([1.0, 0.0, 3.0, 0.5, 0.0, 5.5])
    tree.set(np.arange(6), values)
    assert tree.total == pytest.approx(10.0)
    draws = tree.find(np.random.default_rng(0).random(200_000) * tree.total)
    frequencies = np.bincount(draws, minlength=6) / len(draws)
    np.testing.assert_allclose(frequencies, values / 10.0, atol=0.005)
    # Boundaries: [0, 1) -> 0, [1, 4) -> 2 (index 1 is empty), the total itself never reaches an empty leaf.
    np.testing.assert_array_equal(
        tree.find(np.array([0.0, 0.999, 1.0, 3.999, 4.0, 10.0])), [0, 0, 2, 2, 3, 5]
    )


def test_sum_tree_rejects_negative_values_and_out_of_range_indices():
    tree = SumTree(3)
    with pytest.raises(ValueError, match="non-negative"):
        tree.set(np.array([0]), np.array([-1.0]))
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        tree.set(np.array([3]), np.array([1.0]))
    with pytest.raises(ValueError, match="all 0"):
        tree.find(np.array([0.0]))


def test_new_items_get_the_largest_priority_and_updates_shift_the_draws():
    buffer = filled(capacity=4, steps=4)
    windows, _, positions, weights = buffer.sample_prioritized_windows(4000, np.random.default_rng(1), 1, 1.0)
    counts = np.bincount(windows["step"][:, 0], minlength=4)
    assert np.all(np.abs(counts - 1000) < 150)  # all priorities equal: uniform
    np.testing.assert_array_equal(weights, 1.0)

    buffer.update_priorities(np.array([0, 1, 2, 3]), np.array([1.0, 1.0, 1.0, 7.0]))  # item 3: 70%
    windows, _, positions, weights = buffer.sample_prioritized_windows(
        20_000, np.random.default_rng(2), 1, 1.0
    )
    frequencies = np.bincount(windows["step"][:, 0], minlength=4) / 20_000
    np.testing.assert_allclose(frequencies, [0.1, 0.1, 0.1, 0.7], atol=0.01)
    np.testing.assert_array_equal(windows["step"][:, 0], positions)  # one env row: position = time slot


def test_importance_weights_are_n_p_to_the_minus_beta_over_the_batch_maximum():
    buffer = filled(capacity=4, steps=4, exponent=0.5)
    buffer.update_priorities(np.arange(4), np.array([1.0, 4.0, 9.0, 16.0]) - 1e-6)  # p^0.5 = 1, 2, 3, 4
    windows, _, _, weights = buffer.sample_prioritized_windows(2000, np.random.default_rng(3), 1, 0.6)
    probabilities = np.array([1.0, 2.0, 3.0, 4.0]) / 10.0
    raw = (4 * probabilities) ** -0.6
    steps = windows["step"][:, 0]
    np.testing.assert_allclose(weights, raw[steps] / raw[steps].max(), rtol=1e-5)
    assert weights.max() == 1.0 and set(steps) == {0, 1, 2, 3}


def test_overwritten_items_take_the_new_items_priority_and_checkpoints_keep_priorities():
    buffer = filled(capacity=4, steps=4, num_envs=2)  # 2 time slots per env row
    buffer.update_priorities(np.arange(4), np.array([0.0, 0.0, 0.0, 3.0]))
    buffer.add_batch({"step": np.array([50, 150]), "done": np.zeros(2, bool)})  # overwrites slot 0
    saved = buffer.gather_all()
    # Env rows oldest first: slot 1 (step 3, priorities 0 and 3), then the new slot 0 (the maximum, 3).
    np.testing.assert_allclose(saved["priority"], [[1e-6, 3.0 + 1e-6], [3.0 + 1e-6, 3.0 + 1e-6]])
    restored = filled(capacity=4, steps=0, num_envs=2)
    restored.load(saved)
    rng = np.random.default_rng(4)
    original = buffer.sample_prioritized_windows(500, rng, 1, 0.5)
    copy = restored.sample_prioritized_windows(500, np.random.default_rng(4), 1, 0.5)
    np.testing.assert_array_equal(original[0]["step"], copy[0]["step"])
    np.testing.assert_array_equal(original[3], copy[3])

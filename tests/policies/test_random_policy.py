"""The random baseline: uniform over every kind of action space it accepts."""

import gymnasium as gym
import numpy as np

from gymserve.policies import RandomPolicy

DRAWS = 20_000
# Chi-square critical value for 20 degrees of freedom at p = 0.001 (published tables: 45.315).
CHI_SQUARE_20_DOF_P001 = 45.315


def test_integer_box_actions_are_uniform_over_the_inclusive_range():
    observations = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    actions = gym.spaces.Box(-10, 10, (1,), np.int32)
    policy = RandomPolicy(observations, actions, seed=0)
    drawn = policy.action(np.zeros((DRAWS, 2), np.float32), mode="stochastic").action
    assert drawn.dtype == np.int32 and drawn.shape == (DRAWS, 1)
    counts = np.bincount(drawn[:, 0] + 10, minlength=21)
    assert len(counts) == 21, "no action outside [-10, 10]"
    assert counts[0] > 0 and counts[-1] > 0, "both bounds are drawn"
    expected = DRAWS / 21
    chi_square = float(np.sum((counts - expected) ** 2 / expected))
    assert chi_square < CHI_SQUARE_20_DOF_P001, counts


def test_float_box_actions_stay_inside_the_bounds_and_fill_them():
    observations = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    actions = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 5.0], np.float32))
    drawn = RandomPolicy(observations, actions, seed=0).action(np.zeros((DRAWS, 2), np.float32)).action
    assert drawn.dtype == np.float32
    assert np.all(drawn >= actions.low) and np.all(drawn <= actions.high)
    np.testing.assert_allclose(drawn.mean(axis=0), [0.0, 2.5], atol=0.05)


def test_an_action_space_alone_makes_a_seeded_reproducible_policy_for_any_observation():
    from gymserve.policies import time_step as ts
    from gymserve.policies.base import uniform_actions

    actions = gym.spaces.Box(-2.0, 2.0, (3,), np.float32)
    first = RandomPolicy(action_space=actions, seed=4)
    second = RandomPolicy(None, actions, seed=4)
    assert first.observation_space is None and first.time_step_spec.observation is None
    drawn = [first.action(np.zeros((7, 7))).action for _ in range(3)]  # any observation counts as one
    assert [list(action.shape) for action in drawn] == [[3]] * 3
    np.testing.assert_array_equal(drawn, [second.action(None).action for _ in range(3)])
    np.testing.assert_array_equal(drawn, uniform_actions(actions, 3, np.random.default_rng(4)))
    batch = first.action(ts.restart(np.zeros((5, 9)), batch_size=5), seed=1).action
    assert batch.shape == (5, 3)  # a TimeStep's step_type gives the batch
    np.testing.assert_array_equal(batch, uniform_actions(actions, 5, np.random.default_rng(1)))
    discrete = RandomPolicy(action_space=gym.spaces.Discrete(3, start=1), seed=0)
    assert set(discrete.action(ts.restart(None, batch_size=300)).action.tolist()) == {1, 2, 3}


def test_a_random_policy_without_an_action_space_is_refused():
    import pytest

    with pytest.raises(
        TypeError, match=r"RandomPolicy needs an action_space: RandomPolicy\(action_space=...\)"
    ):
        RandomPolicy(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))

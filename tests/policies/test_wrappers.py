"""ScriptedPolicy and the fixed-mode wrappers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, assert_frequencies_match, observations_for

from gymserve.policies import EpsilonGreedyPolicy, GreedyPolicy, ScriptedPolicy, StochasticPolicy

OBSERVATION = np.zeros(4, np.float32)


def scripted(script, action_space=None, on_exhausted="repeat_last") -> ScriptedPolicy:
    return ScriptedPolicy(
        CARTPOLE_OBSERVATIONS, action_space or gym.spaces.Discrete(3), script, on_exhausted=on_exhausted
    )


def test_script_replays_in_order_skips_zero_repeats_and_then_repeats_the_last_action():
    policy = scripted([(2, 1), (0, 2), (3, 0), (1, 2)])
    assert policy.script_length == 6
    played = [int(policy.action(OBSERVATION).action) for _ in range(8)]
    assert played == [1, 1, 0, 0, 0, 2, 2, 2]


def test_reset_restarts_the_script():
    policy = scripted([(1, 1), (1, 2)])
    policy.action(OBSERVATION)
    policy.reset()
    assert [int(policy.action(OBSERVATION).action) for _ in range(2)] == [1, 2]


def test_state_carries_progress_per_batch_row():
    policy = scripted([(1, 0), (2, 1), (1, 2)])
    state = (np.array([0, 2, 3]),)
    played = []
    for _ in range(3):
        step = policy.action(np.zeros((3, 4)), state)
        played.append(step.action.tolist())
        state = step.state
    assert played == [[0, 1, 2], [1, 2, 2], [1, 2, 2]]
    np.testing.assert_array_equal(state[0], [3, 5, 6])
    # Through the state API the policy's own counter does not move.
    assert policy.action(OBSERVATION).action == 0


def test_initial_state_starts_every_row_at_the_beginning():
    policy = scripted([(1, 2), (1, 0)])
    step = policy.action(np.zeros((2, 4)), policy.get_initial_state(2))
    np.testing.assert_array_equal(step.action, [2, 2])
    single = policy.action(OBSERVATION, policy.get_initial_state())
    assert single.action == 2 and single.state[0].tolist() == [1]


def test_box_script_acts_the_same_in_every_mode():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    policy = scripted([(1, [0.5, -0.5]), (1, [1.0, 1.0])], box)
    state = policy.get_initial_state(1)
    for mode, expected in (("stochastic", [0.5, -0.5]), ("greedy", [1.0, 1.0])):
        step = policy.action(OBSERVATION, state, mode)
        np.testing.assert_array_equal(step.action, expected)
        state = step.state


def test_scripted_distribution_is_a_point_mass_on_the_scripted_action():
    policy = scripted([(1, 1), (1, 2)])
    probabilities = policy.distribution(np.zeros((2, 4)), (np.array([0, 1]),)).probabilities()
    np.testing.assert_array_equal(probabilities, [[0, 1, 0], [0, 0, 1]])


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ([], "plays no action"),
        ([(0, 1)], "plays no action"),
        ([(-1, 1)], r"repeats -1 times; expected an integer >= 0"),
        ([(1.5, 1)], r"repeats 1.5 times"),
        ([(1, 3)], r"scripted action 3 is not in Discrete\(3\)"),
        ([(1,)], "expected a \\(repeats, action\\) pair"),
    ],
)
def test_invalid_scripts_are_refused(script, message):
    with pytest.raises(ValueError, match=message):
        scripted(script)


def test_out_of_bounds_box_action_is_refused():
    with pytest.raises(ValueError, match=r"not in Box.*within bounds"):
        scripted([(1, [2.0, 0.0])], gym.spaces.Box(-1.0, 1.0, (2,), np.float32))


def test_state_of_the_wrong_batch_size_is_refused():
    with pytest.raises(ValueError, match=r"state has shape \(1,\); expected \(2,\)"):
        scripted([(1, 0)]).action(np.zeros((2, 4)), (np.zeros(1),))


def test_greedy_wrapper_ignores_the_requested_mode(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2000)
    greedy = discrete_policy.action(observations).action
    np.testing.assert_array_equal(
        GreedyPolicy(discrete_policy).action(observations, mode="stochastic").action, greedy
    )


def test_stochastic_wrapper_samples_reproducibly_from_its_seed(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2000)
    first = StochasticPolicy(discrete_policy, seed=5).action(observations).action
    np.testing.assert_array_equal(
        first, StochasticPolicy(discrete_policy, seed=5).action(observations).action
    )
    np.testing.assert_array_equal(
        first, discrete_policy.action(observations, mode="stochastic", seed=5).action
    )
    assert np.any(first != discrete_policy.action(observations).action)


def test_epsilon_zero_is_greedy(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2000)
    actions = EpsilonGreedyPolicy(discrete_policy, 0.0, seed=1).action(observations).action
    np.testing.assert_array_equal(actions, discrete_policy.action(observations).action)


def test_epsilon_one_is_uniform_whatever_the_greedy_action():
    always_zero = scripted([(1, 0)])
    actions = EpsilonGreedyPolicy(always_zero, 1.0, seed=2).action(np.zeros((30_000, 4))).action
    assert_frequencies_match(actions, np.full(3, 1 / 3))


def test_partial_epsilon_mixes_greedy_and_uniform():
    always_zero = scripted([(1, 0)])
    actions = EpsilonGreedyPolicy(always_zero, 0.3, seed=3).action(np.zeros((30_000, 4))).action
    assert_frequencies_match(actions, np.array([0.7 + 0.1, 0.1, 0.1]))


def test_epsilon_schedule_follows_the_call_count_or_the_step_argument():
    always_zero = scripted([(1, 0)])
    policy = EpsilonGreedyPolicy(always_zero, lambda step: 1.0 if step < 2 else 0.0, seed=4)
    batch = np.zeros((1000, 4))
    explored = [bool(np.any(policy.action(batch).action != 0)) for _ in range(4)]
    assert explored == [True, True, False, False]
    policy.reset()  # a schedule spans episodes
    assert not np.any(policy.action(batch).action != 0)
    assert np.any(policy.action(batch, step=0).action != 0)
    assert policy.epsilon_at(1) == 1.0 and policy.epsilon_at(7) == 0.0


@pytest.mark.parametrize("epsilon", [1.5, -0.1, float("nan"), lambda step: 2.0])
def test_epsilon_outside_zero_one_is_refused(epsilon):
    with pytest.raises(ValueError, match=r"epsilon at step 0 is .*; expected a number in \[0, 1\]"):
        EpsilonGreedyPolicy(scripted([(1, 0)]), epsilon)

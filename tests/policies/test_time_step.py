"""TF-Agents' TimeStep: built by restart/transition/termination/truncation, taken by every policy
in place of an observation, a FIRST step restarting the policy state, its spec a data spec."""

from __future__ import annotations

import collections

import gymnasium as gym
import keras
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, mlp, observations_for

from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.policies import (
    ActorPolicy,
    EpsilonGreedyPolicy,
    GreedyPolicy,
    RandomPolicy,
    ScriptedPolicy,
    StepType,
    TimeStep,
)
from gymserve.policies import time_step as ts


def test_the_constructors_fill_step_type_reward_and_discount_as_tf_agents_does():
    observation = np.arange(4, dtype=np.float32)
    assert ts.restart(observation) == (StepType.FIRST, 0.0, 1.0, observation)
    first = ts.restart(np.zeros((3, 4)), batch_size=3)
    assert first.step_type.tolist() == [0, 0, 0] and first.step_type.dtype == np.int32
    assert first.reward.tolist() == [0, 0, 0] and first.discount.tolist() == [1, 1, 1]
    mid = ts.transition(np.zeros((2, 4)), reward=np.array([1.0, 2.0]), discount=0.5)
    assert mid.step_type.tolist() == [1, 1] and mid.discount.tolist() == [0.5, 0.5]
    assert mid.reward.dtype == np.float32 and mid.reward.tolist() == [1.0, 2.0]
    last = ts.termination(observation, reward=3.0)
    assert (int(last.step_type), float(last.reward), float(last.discount)) == (2, 3.0, 0.0)
    cut = ts.truncation(observation, reward=3.0)
    assert (int(cut.step_type), float(cut.discount)) == (2, 1.0)
    assert last.is_last() and not last.is_first() and mid.is_mid().all()
    assert StepType.FIRST == 0 and StepType.MID == 1 and StepType.LAST == 2


def test_every_policy_acts_on_a_time_steps_observation():
    actor = ActorPolicy(mlp(4, 3, seed=0, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3))
    observations = observations_for(CARTPOLE_OBSERVATIONS, 32)
    expected = actor.action(observations, mode="stochastic", seed=4).action
    for step in (
        ts.restart(observations, batch_size=32),
        ts.transition(observations, reward=np.ones(32)),
        ts.termination(observations, reward=np.zeros(32)),
    ):
        np.testing.assert_array_equal(actor.action(step, mode="stochastic", seed=4).action, expected)
    single = actor.action(ts.transition(observations[0], reward=1.0)).action
    assert single.shape == () and single == actor.action(observations[0]).action
    np.testing.assert_array_equal(
        GreedyPolicy(actor).action(ts.restart(observations, 32)).action, actor.action(observations).action
    )
    np.testing.assert_array_equal(
        EpsilonGreedyPolicy(actor, epsilon=0.0).action(ts.restart(observations, 32)).action,
        actor.action(observations).action,
    )
    np.testing.assert_array_equal(
        actor.distribution(ts.restart(observations, 32)).logits, actor.network_outputs(observations)
    )


def test_a_named_tuple_shaped_like_a_time_step_is_taken_too():
    ForeignTimeStep = collections.namedtuple("TimeStep", ["step_type", "reward", "discount", "observation"])
    actor = ActorPolicy(mlp(4, 2, seed=1, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    observations = observations_for(CARTPOLE_OBSERVATIONS, 8)
    foreign = ForeignTimeStep(np.ones(8, np.int32), np.zeros(8), np.ones(8), observations)
    np.testing.assert_array_equal(actor.action(foreign).action, actor.action(observations).action)


def test_a_first_step_restarts_the_policy_state_of_its_rows():
    script = ScriptedPolicy(None, gym.spaces.Discrete(5), [(1, 0), (1, 1), (1, 2), (1, 3)])
    state = script.get_initial_state(2)
    for _ in range(2):
        _, state, _ = script.action(ts.transition(np.zeros((2, 1)), reward=np.zeros(2)), state)
    assert state[0].tolist() == [2, 2]
    step = TimeStep(np.array([StepType.FIRST, StepType.MID], np.int32), np.zeros(2), np.ones(2), None)
    action, state, _ = script.action(step, state)
    assert action.tolist() == [0, 2] and state[0].tolist() == [1, 3]


def test_a_first_step_restarts_a_recurrent_actors_state():
    observations_in = keras.Input((4,))
    state_in = keras.Input((3,))
    next_state = keras.layers.Add()([state_in, keras.layers.Dense(3)(observations_in)])
    logits = keras.layers.Dense(2)(next_state)
    recurrent = ActorPolicy(
        keras.Model([observations_in, state_in], [logits, next_state]),
        CARTPOLE_OBSERVATIONS,
        gym.spaces.Discrete(2),
    )
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2, seed=3)
    advanced = recurrent.action(observations, recurrent.get_initial_state(2)).state
    assert np.abs(advanced[0]).min() > 0
    restarted = recurrent.action(ts.restart(observations, 2), advanced).state
    np.testing.assert_allclose(restarted[0], advanced[0], rtol=1e-6)  # as if from the zero state
    continued = recurrent.action(ts.transition(observations, np.zeros(2)), advanced).state
    np.testing.assert_allclose(continued[0], 2 * advanced[0], rtol=1e-5)


def test_time_step_spec_describes_the_steps_and_is_a_replay_buffer_data_spec():
    policy = RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    spec = policy.time_step_spec
    assert spec.observation is CARTPOLE_OBSERVATIONS and spec == ts.time_step_spec(CARTPOLE_OBSERVATIONS)
    assert spec.step_type == ((), np.int32) and spec.reward == ((), np.float32)
    buffer = ReplayBuffer(spec, batch_size=3, max_length=4)
    buffer.add_batch(ts.restart(observations_for(CARTPOLE_OBSERVATIONS, 3), batch_size=3))
    items = buffer.gather_all()
    assert isinstance(items, TimeStep) and items.observation.shape == (3, 1, 4)
    assert items.step_type.tolist() == [[0], [0], [0]] and items.discount.tolist() == [[1], [1], [1]]
    assert ts.time_step_spec().observation is None


def test_a_time_step_with_a_batch_that_is_not_the_observations_is_refused():
    actor = ActorPolicy(mlp(4, 2, seed=1, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    script = ScriptedPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2), [(5, 1)])
    wrong = TimeStep(
        np.zeros(3, np.int32), np.zeros(3), np.ones(3), observations_for(CARTPOLE_OBSERVATIONS, 2)
    )
    for policy in (script, actor):
        with pytest.raises(ValueError, match=r"step_type has shape \(3,\); expected \(\) or \(2,\)"):
            policy.action(wrong, policy.get_initial_state(2))

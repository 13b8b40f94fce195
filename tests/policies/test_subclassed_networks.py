"""A subclassed Keras model acts, and exports, exactly as the functional model with its weights."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest
from policy_support import (
    CARTPOLE_OBSERVATIONS,
    MINITAUR_ACTIONS,
    MINITAUR_OBSERVATIONS,
    mlp,
    observations_for,
)

from gymserve.policies import ActorPolicy, export_policy, load


class TwoLayerNetwork(keras.Model):
    """The layers of `policy_support.mlp`, in a subclassed model."""

    def __init__(self, outputs: int, hidden: int = 64):
        super().__init__()
        self.first = keras.layers.Dense(hidden, activation="tanh")
        self.second = keras.layers.Dense(hidden, activation="tanh")
        self.last = keras.layers.Dense(outputs)

    def call(self, observations):
        return self.last(self.second(self.first(observations)))


def subclassed_copy(functional: keras.Model, inputs: int, outputs: int) -> TwoLayerNetwork:
    network = TwoLayerNetwork(outputs)
    network(np.zeros((1, inputs), np.float32))
    network.set_weights(functional.get_weights())
    return network


@pytest.mark.parametrize(
    ("observation_space", "action_space", "outputs"),
    [(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2), 2), (MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS, 16)],
)
def test_a_subclassed_network_acts_like_the_functional_one_with_the_same_weights(
    observation_space, action_space, outputs
):
    inputs = observation_space.shape[0]
    functional = mlp(inputs, outputs, seed=3)
    subclassed = subclassed_copy(functional, inputs, outputs)
    observations = observations_for(observation_space, 500, seed=4)
    expected_policy = ActorPolicy(functional, observation_space, action_space)
    policy = ActorPolicy(subclassed, observation_space, action_space)
    assert policy.policy_state_spec == ()
    for mode in ("greedy", "stochastic"):
        np.testing.assert_array_equal(
            policy.action(observations, mode=mode, seed=5).action,
            expected_policy.action(observations, mode=mode, seed=5).action,
        )


def test_an_unbuilt_subclassed_or_sequential_network_is_built_by_the_policy():
    for network in (TwoLayerNetwork(2), keras.Sequential([keras.layers.Dense(2)])):
        policy = ActorPolicy(network, CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
        assert policy.action(np.zeros(4, np.float32)).action in (0, 1)


def test_a_subclassed_network_exports_with_the_functional_ones_parity(tmp_path):
    functional = mlp(4, 2, seed=6)
    policy = ActorPolicy(subclassed_copy(functional, 4, 2), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    export_policy(policy, tmp_path / "subclassed")
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2000, seed=7)
    expected = ActorPolicy(functional, CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2)).action(observations)
    assert 0.2 < expected.action.mean() < 0.8  # both actions occur
    for backend in ("onnx", "tensorflow"):
        np.testing.assert_array_equal(
            load(tmp_path / "subclassed", backend).action(observations).action, expected.action
        )

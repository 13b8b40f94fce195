"""ActorPolicy: actions follow the network's outputs per the distributions contract."""

from __future__ import annotations

import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from policy_support import (
    CARTPOLE_OBSERVATIONS,
    MINITAUR_ACTIONS,
    MINITAUR_OBSERVATIONS,
    assert_frequencies_match,
    mlp,
    observations_for,
)

from gymserve.policies import ActorPolicy, Categorical


def test_importing_policies_loads_neither_tensorflow_nor_onnxruntime():
    code = (
        "import sys, gymserve.policies as p; assert callable(p.load); "
        "print(sorted(m for m in ('tensorflow', 'onnxruntime', 'keras') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_greedy_discrete_action_is_the_argmax_of_the_network(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 500)
    logits = discrete_policy.network(observations).numpy()
    np.testing.assert_array_equal(discrete_policy.action(observations).action, logits.argmax(axis=1))
    assert discrete_policy.action(observations[0]).action == logits[0].argmax()


def test_greedy_continuous_action_is_the_squashed_mean(continuous_policy):
    observations = observations_for(MINITAUR_OBSERVATIONS, 500)
    mean = continuous_policy.network(observations).numpy()[:, :8]
    low, high = MINITAUR_ACTIONS.low, MINITAUR_ACTIONS.high
    expected = low + (np.tanh(mean) + 1) / 2 * (high - low)
    actions = continuous_policy.action(observations).action
    np.testing.assert_allclose(actions, expected, atol=1e-6)
    assert actions.dtype == np.float32 and actions.shape == (500, 8)


def test_weight_updates_reach_the_next_action():
    network = mlp(4, 3, seed=5, hidden=8)
    policy = ActorPolicy(network, CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3))
    last = network.layers[-1]
    last.kernel.assign(np.zeros_like(last.kernel.numpy()))
    for best in (2, 0):
        last.bias.assign(np.eye(3, dtype=np.float32)[best])
        assert policy.action(np.zeros(4)).action == best


def test_discrete_samples_follow_the_softmax(discrete_policy):
    observation = np.array([0.1, -1.0, 0.05, 0.5], np.float32)
    probabilities = discrete_policy.distribution(observation).probabilities()[0]
    assert probabilities.min() > 0.05  # both actions are likely enough for the test to have power
    samples = discrete_policy.action(
        np.repeat(observation[None], 20_000, 0), mode="stochastic", seed=3
    ).action
    assert_frequencies_match(samples, probabilities)


def test_continuous_samples_follow_the_squashed_gaussian(continuous_policy):
    observation = observations_for(MINITAUR_OBSERVATIONS, 1)
    distribution = continuous_policy.distribution(observation)
    samples = continuous_policy.action(np.repeat(observation, 20_000, 0), mode="stochastic", seed=4).action
    assert np.all((samples >= MINITAUR_ACTIONS.low) & (samples <= MINITAUR_ACTIONS.high))
    # Undo the squash and the Gaussian: the probability integral transform must be uniform.
    low, high = MINITAUR_ACTIONS.low, MINITAUR_ACTIONS.high
    unit = np.clip(2 * (samples.astype(np.float64) - low) / (high - low) - 1, -1 + 1e-7, 1 - 1e-7)
    z = (np.arctanh(unit) - distribution.mean) / np.exp(distribution.log_std)
    uniform = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    for motor in range(8):
        bins = np.minimum((uniform[:, motor] * 10).astype(np.int64), 9)
        assert_frequencies_match(bins, np.full(10, 0.1))


def test_a_seed_makes_sampling_reproducible(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 1000)
    first = discrete_policy.action(observations, mode="stochastic", seed=11).action
    np.testing.assert_array_equal(
        first, discrete_policy.action(observations, mode="stochastic", seed=11).action
    )
    assert np.any(first != discrete_policy.action(observations, mode="stochastic", seed=12).action)


def test_distribution_is_categorical_over_the_logits(discrete_policy):
    observations = observations_for(CARTPOLE_OBSERVATIONS, 3)
    distribution = discrete_policy.distribution(observations)
    assert isinstance(distribution, Categorical)
    np.testing.assert_allclose(distribution.logits, discrete_policy.network(observations).numpy(), atol=1e-6)


def test_a_numpy_forward_function_replaces_the_network_call(continuous_policy):
    observations = observations_for(MINITAUR_OBSERVATIONS, 100)
    network = continuous_policy.network
    calls = []

    def forward(batch):
        calls.append(len(batch))
        return network(batch).numpy()

    policy = ActorPolicy(network, MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS, forward=forward)
    # The eager call and the policy's compiled one may round the last bit differently (oneDNN
    # picks kernels by CPU), so equal up to float32 rounding, not bit for bit.
    np.testing.assert_allclose(
        policy.action(observations).action, continuous_policy.action(observations).action, rtol=0, atol=1e-6
    )
    assert calls == [1, 100]  # the output width check, then the actions

    with pytest.raises(ValueError, match=r"the network outputs shape \(1, 3\)"):
        ActorPolicy(network, MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS, forward=lambda batch: np.zeros((1, 3)))


def test_network_with_the_wrong_output_width_is_refused():
    with pytest.raises(ValueError, match=r"outputs shape \(None, 2\); expected \(batch, 3\) logits"):
        ActorPolicy(mlp(4, 2, seed=0, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match=r"expected \(batch, 16\) mean and log_std"):
        ActorPolicy(mlp(28, 8, seed=0, hidden=8), MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS)


def test_squashed_actions_in_an_unbounded_box_are_refused():
    unbounded = gym.spaces.Box(-np.inf, np.inf, (8,), np.float32)
    with pytest.raises(
        ValueError, match=r"'squashed_gaussian' does not fit Box.* \(unbounded\); expected one of"
    ):
        ActorPolicy(mlp(28, 16, seed=0, hidden=8), MINITAUR_OBSERVATIONS, unbounded)


def test_network_that_cannot_take_the_observations_is_refused():
    with pytest.raises(
        ValueError, match=r"cannot take a float32 observation batch of shape \(None, \*\(4,\)\)"
    ):
        ActorPolicy(mlp(28, 2, seed=0, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        (np.zeros(5), r"shape \(5,\); expected \(4,\) or a batch"),
        (np.zeros((2, 3)), r"shape \(2, 3\); expected \(4,\)"),
        (np.array([0.0, np.nan, 0.0, 0.0]), "NaN or infinite"),
        (np.array(["a", "b", "c", "d"]), "dtype <U1"),
        (np.zeros((0, 4)), "batch is empty"),
    ],
)
def test_bad_observations_raise_a_clear_error(discrete_policy, observation, message):
    with pytest.raises(ValueError, match=message):
        discrete_policy.action(observation)

"""PolicyStep.info, when asked for: the log-probability of the action drawn and the parameters of
the distribution it was drawn from, checked against formulas computed here in numpy."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, mlp, observations_for

from gymserve.policies import (
    ActorPolicy,
    GaussianPolicy,
    GreedyPolicy,
    RandomPolicy,
    ScriptedPolicy,
    StochasticPolicy,
)

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTIONS = gym.spaces.Box(-1.0, 3.0, (2,), np.float32)


def gaussian_network() -> keras.Model:
    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])


def normal_log_density(actions: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.sum(-0.5 * ((actions - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi), axis=-1)


def test_a_categorical_actors_log_probability_is_the_log_softmax_of_the_chosen_logit():
    network = mlp(4, 3, seed=0, hidden=8)
    policy = ActorPolicy(network, CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3), emit_log_probability=True)
    observations = observations_for(CARTPOLE_OBSERVATIONS, 64)
    action, _, info = policy.action(observations, mode="stochastic", seed=2)
    logits = network(observations).numpy().astype(np.float64)
    log_softmax = logits - logits.max(axis=1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(info["log_probability"], log_softmax[np.arange(64), action], rtol=1e-5)
    assert set(info) == {"log_probability"} and set(policy.info_spec) == {"log_probability"}
    assert len(set(action.tolist())) == 3  # every action drawn, so the check covers them all


def test_a_gaussian_actors_log_probability_and_parameters_are_those_of_the_unclipped_draw():
    network = gaussian_network()
    policy = ActorPolicy(
        network,
        OBSERVATIONS,
        ACTIONS,
        distribution="gaussian",
        emit_log_probability=True,
        emit_distribution_parameters=True,
    )
    observations = np.random.default_rng(1).normal(0, 1, (200, 4)).astype(np.float32)
    action, _, info = policy.action(observations, mode="stochastic", seed=3)
    outputs = network(observations).numpy().astype(np.float64)
    mean, std = outputs[:, :2], np.exp(np.clip(outputs[:, 2:], -20, 2))
    np.testing.assert_allclose(info["dist_params"]["loc"], mean, rtol=1e-5)
    np.testing.assert_allclose(info["dist_params"]["scale"], std, rtol=1e-5)
    unclipped = mean + std * np.random.default_rng(3).standard_normal((200, 2))
    np.testing.assert_allclose(action, np.clip(unclipped, -1, 3), rtol=1e-5, atol=1e-5)
    assert (unclipped != np.clip(unclipped, -1, 3)).any()  # some actions were clipped
    np.testing.assert_allclose(info["log_probability"], normal_log_density(unclipped, mean, std), rtol=1e-4)


def test_a_single_observation_gets_unbatched_info():
    policy = ActorPolicy(
        gaussian_network(), OBSERVATIONS, ACTIONS, distribution="gaussian", emit_distribution_parameters=True
    )
    observations = np.ones((3, 4), np.float32)
    batched = policy.action(observations).info
    single = policy.action(observations[0]).info
    assert single["dist_params"]["loc"].shape == (2,)
    spec = {"loc": ((2,), np.dtype(np.float32)), "scale": ((2,), np.dtype(np.float32))}
    assert dict(policy.info_spec) == {"dist_params": spec}
    np.testing.assert_array_equal(single["dist_params"]["loc"], batched["dist_params"]["loc"][0])


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: RandomPolicy(None, gym.spaces.Discrete(4), emit_log_probability=True), np.log(0.25)),
        (lambda: RandomPolicy(None, ACTIONS, emit_log_probability=True), -2 * np.log(4.0)),
        (lambda: ScriptedPolicy(None, gym.spaces.Discrete(4), [(3, 2)], emit_log_probability=True), 0.0),
        (
            lambda: GreedyPolicy(
                ActorPolicy(gaussian_network(), OBSERVATIONS, ACTIONS, distribution="gaussian"),
                emit_log_probability=True,
            ),
            0.0,
        ),
    ],
)
def test_log_probabilities_of_random_scripted_and_greedy_actions(make, expected):
    policy = make()
    info = policy.action(np.zeros(4, np.float32)).info
    assert float(info["log_probability"]) == pytest.approx(expected, rel=1e-6)


def test_a_noisy_policys_log_probability_is_that_of_its_normal_around_the_greedy_action():
    keras.utils.set_random_seed(6)
    network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    actor = ActorPolicy(network, OBSERVATIONS, ACTIONS, distribution="deterministic")
    noisy = GaussianPolicy(actor, scale=0.5, seed=0)
    noisy.emit_log_probability = True
    observations = np.random.default_rng(2).normal(0, 1, (100, 4)).astype(np.float32)
    action, _, info = noisy.action(observations, seed=8)
    greedy = network(observations).numpy().astype(np.float64)  # before clipping
    unclipped = greedy + 0.5 * np.random.default_rng(8).standard_normal((100, 2))
    np.testing.assert_allclose(action, np.clip(unclipped, -1, 3), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        info["log_probability"], normal_log_density(unclipped, greedy, np.full(2, 0.5)), rtol=1e-4
    )


def test_a_kind_without_log_prob_says_so_when_asked_for_it():
    policy = ActorPolicy(
        mlp(4, 4, seed=0),
        OBSERVATIONS,
        ACTIONS,
        distribution="noisy_deterministic",
        emit_log_probability=True,
    )
    with pytest.raises(ValueError, match="emit_log_probability: NoisyDeterministic has no log_prob"):
        policy.action(np.zeros(4, np.float32))
    stochastic = StochasticPolicy(ActorPolicy(mlp(4, 4, seed=0), OBSERVATIONS, ACTIONS))
    assert dict(stochastic.action(np.zeros(4, np.float32)).info) == {}  # nothing unless asked

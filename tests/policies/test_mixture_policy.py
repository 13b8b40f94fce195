"""MixturePolicy: each observation gets the action of a policy drawn with the mixture's probabilities."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, assert_frequencies_match, observations_for

from gymserve.policies import Categorical, MixturePolicy, Policy, RandomPolicy, ScriptedPolicy

ACTIONS = gym.spaces.Discrete(3)


class Constant(Policy):
    """A stateless policy that always plays one action."""

    def __init__(self, action: int):
        super().__init__(CARTPOLE_OBSERVATIONS, ACTIONS)
        self.logits = np.where(np.arange(ACTIONS.n) == action, 0.0, -np.inf).astype(np.float32)

    def _distribution(self, observations: np.ndarray, state: tuple) -> Categorical:
        return Categorical(np.tile(self.logits, (len(observations), 1)))


def constant(action: int) -> Constant:
    return Constant(action)


def test_each_policy_acts_as_often_as_its_mixture_probability():
    probabilities = np.array([0.2, 0.5, 0.3])
    mixture = MixturePolicy(probabilities, [constant(0), constant(1), constant(2)], seed=0)
    draws = 20_000
    action, _, info = mixture.action(observations_for(CARTPOLE_OBSERVATIONS, draws))
    np.testing.assert_array_equal(action, info["mixture_agent_id"])  # policy k plays k
    for index, probability in enumerate(probabilities):
        frequency = np.mean(action == index)
        binomial_std = np.sqrt(probability * (1 - probability) / draws)
        assert abs(frequency - probability) < 4 * binomial_std, (index, frequency)
    assert_frequencies_match(action, probabilities)


def test_a_categorical_mixture_distribution_is_read_as_tf_agents_does():
    logits = np.log(np.array([[0.9, 0.1]]))
    mixture = MixturePolicy(Categorical(logits), [constant(2), constant(0)], seed=1)
    action = mixture.action(observations_for(CARTPOLE_OBSERVATIONS, 10_000)).action
    frequency, binomial_std = np.mean(action == 2), np.sqrt(0.9 * 0.1 / 10_000)
    assert abs(frequency - 0.9) < 4 * binomial_std


def test_a_seeded_mixture_is_reproducible_and_its_policies_act_in_the_mode_asked_for():
    random_policy = RandomPolicy(CARTPOLE_OBSERVATIONS, ACTIONS)
    observations = observations_for(CARTPOLE_OBSERVATIONS, 500)
    first = MixturePolicy([0.5, 0.5], [random_policy, constant(1)])
    second = MixturePolicy([0.5, 0.5], [random_policy, constant(1)])
    for mode in ("greedy", "stochastic"):
        np.testing.assert_array_equal(
            first.action(observations, mode=mode, seed=3).action,
            second.action(observations, mode=mode, seed=3).action,
        )
    step = first.action(observations, seed=3)
    from_random = step.action[step.info["mixture_agent_id"] == 0]
    assert set(from_random.tolist()) == {0, 1, 2}  # the random policy's actions, not a constant
    single = first.action(observations[0], seed=3)
    assert single.action.shape == () and single.info["mixture_agent_id"].shape == ()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MixturePolicy([0.5, 0.6], [constant(0), constant(1)]), "summing to 1, one per policy"),
        (lambda: MixturePolicy([1.0], [constant(0), constant(1)]), "must be 2 non-negative numbers"),
        (
            lambda: MixturePolicy([0.5, 0.5], [constant(0), RandomPolicy(None, gym.spaces.Discrete(2))]),
            "policy 1 acts on None -> Discrete",
        ),
        (
            lambda: MixturePolicy(
                [0.5, 0.5], [constant(0), ScriptedPolicy(CARTPOLE_OBSERVATIONS, ACTIONS, [(1, 0)])]
            ),
            "a MixturePolicy mixes stateless policies only",
        ),
        (lambda: MixturePolicy([], []), "needs at least one policy"),
    ],
)
def test_bad_mixtures_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_mixture_has_no_single_distribution():
    mixture = MixturePolicy([1.0], [constant(0)])
    with pytest.raises(ValueError, match="a MixturePolicy has no single action distribution"):
        mixture.distribution(np.zeros(4, np.float32))

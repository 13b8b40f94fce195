"""A policy that ignores its observations and acts uniformly at random.

RandomPolicy(env.observation_space, env.action_space, seed=0)
RandomPolicy(action_space=gym.spaces.Discrete(3), seed=0)   # any observation, as TF-Agents'
                                                             # RandomPyPolicy(None, action_spec)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep, uniform_actions
from gymserve.policies.distributions import Categorical, Distribution, Uniform
from gymserve.policies.time_step import TimeStep


class RandomPolicy(Policy):
    """Uniform random actions in every mode: the baseline every learned policy must beat."""

    def __init__(
        self,
        observation_space: gym.spaces.Space | TimeStep | None = None,
        action_space: gym.spaces.Space | None = None,
        seed: int | None = None,
        *,
        emit_log_probability: bool = False,
        emit_distribution_parameters: bool = False,
    ):
        """Without `observation_space` any observation is taken (see `Policy`)."""
        if action_space is None:
            raise TypeError("RandomPolicy needs an action_space: RandomPolicy(action_space=...)")
        super().__init__(
            observation_space,
            action_space,
            seed,
            emit_log_probability=emit_log_probability,
            emit_distribution_parameters=emit_distribution_parameters,
        )

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return Categorical(np.zeros((len(observations), int(space.n)), np.float32), int(space.start))
        return Uniform(space.low, space.high, len(observations))

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        return PolicyStep(uniform_actions(self.action_space, len(observations), rng), state)

"""A policy that ignores its observations and acts uniformly at random."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep, uniform_actions
from gymserve.policies.distributions import Categorical, Distribution, Uniform


class RandomPolicy(Policy):
    """Uniform random actions in every mode: the baseline every learned policy must beat."""

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        space = self.action_space
        if isinstance(space, gym.spaces.Discrete):
            return Categorical(np.zeros((len(observations), int(space.n)), np.float32), int(space.start))
        return Uniform(space.low, space.high, len(observations))

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        return PolicyStep(uniform_actions(self.action_space, len(observations), rng), state)

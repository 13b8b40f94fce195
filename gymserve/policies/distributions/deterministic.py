"""A point mass: what a greedy policy does, or a network that outputs the action itself (batch, d).

Networks written for TF-Agents' `ActorPolicy` output actions this way ("deterministic"); they
fit unbounded Box spaces too. The exported graphs clip the action to the bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import (
    Distribution,
    DistributionGraph,
    all_event,
    clip_tensor,
    split_outputs,
)

if TYPE_CHECKING:
    import tensorflow as tf


class Deterministic(Distribution):
    """A point mass on `loc`, one action per row: what a greedy policy or a deterministic actor does."""

    kind = "deterministic"
    parameter_names = ("loc",)
    outputs_meaning = "actions"

    def __init__(self, loc: np.ndarray):
        self.loc = np.asarray(loc)

    def mode(self) -> np.ndarray:
        return self.loc

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.loc

    def parameters(self) -> dict[str, np.ndarray]:
        return {"loc": self.loc}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        return np.where(all_event(np.asarray(actions) == self.loc), 0.0, -np.inf)

    def entropy(self) -> np.ndarray:
        return np.zeros(len(self.loc))

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Box) -> Deterministic:
        (actions,) = split_outputs(outputs, action_space)
        return cls(actions)

    class Graph(DistributionGraph):
        """The outputs, shaped like actions, are the action."""

        action_space: gym.spaces.Box

        def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
            import tensorflow as tf

            return {"loc": tf.reshape(outputs, [-1, *self.action_space.shape])}

        def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
            return clip_tensor(parameters["loc"], self.action_space)

        def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
            return self.greedy_action(parameters)

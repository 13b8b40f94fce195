"""A deterministic action plus clipped Gaussian exploration noise, from outputs
`[pre-squash action | noise_std]` (batch, 2 * d).

Deterministic actors (TD3, DDPG) output it: the greedy action is the squashed action (the
distribution's `mean`); a sample adds Gaussian noise of `noise_std` (in action units) and is
clipped to the bounds, as the actor explored while training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import (
    Distribution,
    DistributionGraph,
    split_outputs,
    squash,
    squash_tensor,
)

if TYPE_CHECKING:
    import tensorflow as tf


class NoisyDeterministic(Distribution):
    """A deterministic action plus Gaussian exploration noise, clipped to the bounds [low, high]."""

    kind = "noisy_deterministic"
    space_type = gym.spaces.Box
    parameter_names = ("mean", "noise_std")
    outputs_meaning = "action and noise_std"

    def __init__(self, mean: np.ndarray, noise_std: np.ndarray, low: np.ndarray, high: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.noise_std = np.asarray(noise_std, dtype=np.float32)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def mode(self) -> np.ndarray:
        return self.mean

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.mean.shape).astype(np.float32)
        return np.clip(self.mean + self.noise_std * noise, self.low, self.high)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "noise_std": self.noise_std}

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Box) -> NoisyDeterministic:
        pre_squash, noise_std = split_outputs(outputs, action_space)
        low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        return cls(squash(pre_squash, low, high), noise_std, low, high)

    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Box
    ) -> NoisyDeterministic:
        return cls(parameters["mean"], parameters["noise_std"], action_space.low, action_space.high)

    class Graph(DistributionGraph):
        """The squashed action as `mean`, and the noise's standard deviation."""

        action_space: gym.spaces.Box

        def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
            import tensorflow as tf

            size = int(np.prod(self.action_space.shape))
            shape = [-1, *self.action_space.shape]
            return {
                "mean": squash_tensor(tf.reshape(outputs[:, :size], shape), self.action_space),
                "noise_std": tf.reshape(outputs[:, size:], shape),
            }

        def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
            return parameters["mean"]

        def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            seeds = tf.stack([seed, tf.constant(0, tf.int64)])
            mean = parameters["mean"]
            noise = tf.random.stateless_normal(tf.shape(mean), seeds, dtype=mean.dtype)
            low = tf.constant(self.action_space.low, tf.float32)
            high = tf.constant(self.action_space.high, tf.float32)
            return tf.clip_by_value(mean + parameters["noise_std"] * noise, low, high)

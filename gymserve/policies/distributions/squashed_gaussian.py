"""Squashed Gaussians over a bounded Box, from outputs `[pre-squash mean | log_std]` (batch, 2 * d).

Actions are `low + (tanh(u) + 1) / 2 * (high - low)` with u ~ Normal(mean, exp(log_std)), so
the greedy action is the squashed mean and every sample lies inside the bounds. Stochastic
actors (SAC, PPO, A2C) train this way; training stores the pre-squash sample u as raw action.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    Distribution,
    DistributionGraph,
    normal_log_density,
    split_outputs,
    squash,
    squash_tensor,
    sum_event,
)

if TYPE_CHECKING:
    import tensorflow as tf


class SquashedGaussian(Distribution):
    """Diagonal Gaussians squashed by tanh and scaled to the bounds [low, high]."""

    kind = "squashed_gaussian"
    space_type = gym.spaces.Box
    parameter_names = ("mean", "log_std")
    outputs_meaning = "mean and log_std"

    def __init__(self, mean: np.ndarray, log_std: np.ndarray, low: np.ndarray, high: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.log_std = np.clip(np.asarray(log_std, dtype=np.float32), LOG_STD_MIN, LOG_STD_MAX)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def squash(self, pre_squash: np.ndarray) -> np.ndarray:
        """Map unbounded values into [low, high] through tanh."""
        return squash(pre_squash, self.low, self.high)

    def mode(self) -> np.ndarray:
        return self.squash(self.mean)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.mean.shape).astype(np.float32)
        return self.squash(self.mean + np.exp(self.log_std) * noise)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "log_std": self.log_std}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        """The density of the squashed actions: the Gaussian's at atanh of the action in unit
        coordinates, divided by the squash's derivative (actions at the bounds get -inf)."""
        half_range = (self.high - self.low).astype(np.float64) / 2
        unit = (np.asarray(actions, np.float64) - self.low) / half_range - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            pre_squash = np.arctanh(unit)
            log_derivative = np.log(half_range) + np.log1p(-(unit**2))
            gaussian = normal_log_density(pre_squash, self.mean, self.log_std)
            return sum_event(np.where(np.abs(unit) < 1, gaussian - log_derivative, -np.inf))

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Box) -> SquashedGaussian:
        mean, log_std = split_outputs(outputs, action_space)
        return cls(mean, log_std, action_space.low, action_space.high)

    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Box
    ) -> SquashedGaussian:
        return cls(parameters["mean"], parameters["log_std"], action_space.low, action_space.high)

    class Graph(DistributionGraph):
        """Raw actions are the pre-squash samples u.

        The density of the env action includes the change of variables through the squash:
        log pi(a) = log N(u; mean, std) - sum log |da/du|, with da/du = (1 - tanh(u)^2) (high - low) / 2.
        The entropy bonus is that of the Gaussian over u, since the squashed one has no closed form.
        """

        action_space: gym.spaces.Box

        def __init__(self, action_space: gym.spaces.Box):
            import tensorflow as tf

            if not action_space.is_bounded("both"):
                raise ValueError(f"a squashed Gaussian needs a bounded Box action space, got {action_space}")
            super().__init__(action_space)
            self._action_axes = list(range(1, 1 + len(action_space.shape)))
            half_range = (action_space.high.astype(np.float64) - action_space.low) / 2.0
            self._log_half_range = tf.constant(np.log(half_range), tf.float32)

        def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
            """The pre-squash mean and the clipped log_std, shaped like actions."""
            import tensorflow as tf

            size = int(np.prod(self.action_space.shape))
            shape = [-1, *self.action_space.shape]
            return {
                "mean": tf.reshape(outputs[:, :size], shape),
                "log_std": tf.reshape(tf.clip_by_value(outputs[:, size:], LOG_STD_MIN, LOG_STD_MAX), shape),
            }

        def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
            """The squashed mean."""
            return squash_tensor(parameters["mean"], self.action_space)

        def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            seeds = tf.stack([seed, tf.constant(0, tf.int64)])
            mean = parameters["mean"]
            noise = tf.random.stateless_normal(tf.shape(mean), seeds, dtype=mean.dtype)
            return squash_tensor(mean + tf.exp(parameters["log_std"]) * noise, self.action_space)

        def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
            return squash_tensor(raw_actions, self.action_space)

        def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
            import tensorflow as tf

            parameters = self.parameters(outputs)
            mean = parameters["mean"]
            return mean + tf.exp(parameters["log_std"]) * generator.normal(tf.shape(mean))

        def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            parameters = self.parameters(outputs)
            mean, log_std = parameters["mean"], parameters["log_std"]
            standardized = (raw_actions - mean) * tf.exp(-log_std)
            gaussian = -0.5 * tf.square(standardized) - log_std - 0.5 * math.log(2.0 * math.pi)
            # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
            log_tanh_slope = 2.0 * (math.log(2.0) - raw_actions - tf.nn.softplus(-2.0 * raw_actions))
            return tf.reduce_sum(gaussian - log_tanh_slope - self._log_half_range, axis=self._action_axes)

        def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            log_std = self.parameters(outputs)["log_std"]
            return tf.reduce_sum(log_std + 0.5 * math.log(2.0 * math.pi * math.e), axis=self._action_axes)

        def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            # The squash is one invertible map applied to both, so the KL is that of the Gaussians over u.
            old = self.parameters(old_outputs)
            new = self.parameters(outputs)
            variance_ratio = tf.exp(2.0 * (old["log_std"] - new["log_std"]))
            mean_term = tf.square((old["mean"] - new["mean"]) * tf.exp(-new["log_std"]))
            per_dimension = 0.5 * (variance_ratio + mean_term - 1.0) - (old["log_std"] - new["log_std"])
            return tf.reduce_sum(per_dimension, axis=self._action_axes)

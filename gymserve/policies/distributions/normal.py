"""Unsquashed diagonal Gaussians, from outputs `[mean | log_std]` (batch, 2 * d), kind "gaussian".

Networks written for TF-Agents' `ActorPolicy` for unbounded (or clipped) Box actions read their
outputs this way. The exported graphs clip the greedy and sampled actions to the bounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import (
    HALF_LOG_TWO_PI,
    LOG_STD_MAX,
    LOG_STD_MIN,
    Distribution,
    DistributionGraph,
    clip_tensor,
    normal_log_density,
    split_outputs,
    sum_event,
)

if TYPE_CHECKING:
    import tensorflow as tf


class Normal(Distribution):
    """Diagonal Gaussians with mean `loc` and standard deviation `scale`, not squashed."""

    kind = "gaussian"
    space_type = gym.spaces.Box
    parameter_names = ("loc", "scale")
    outputs_meaning = "mean and log_std"

    def __init__(self, loc: np.ndarray, scale: np.ndarray):
        self.loc = np.asarray(loc, dtype=np.float32)
        self.scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), self.loc.shape)
        if not (self.scale > 0).all():
            raise ValueError(f"a Normal needs positive scales, got {self.scale.tolist()}")

    def mode(self) -> np.ndarray:
        return self.loc

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.loc + self.scale * rng.standard_normal(self.loc.shape).astype(np.float32)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"loc": self.loc, "scale": self.scale}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        return sum_event(normal_log_density(np.asarray(actions, np.float64), self.loc, np.log(self.scale)))

    def entropy(self) -> np.ndarray:
        return sum_event(0.5 + HALF_LOG_TWO_PI + np.log(self.scale.astype(np.float64)))

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Box) -> Normal:
        mean, log_std = split_outputs(outputs, action_space)
        return cls(mean, np.exp(np.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)))

    class Graph(DistributionGraph):
        """The mean and the standard deviation of the clipped log_std, shaped like actions."""

        action_space: gym.spaces.Box

        def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
            import tensorflow as tf

            size = int(np.prod(self.action_space.shape))
            shape = [-1, *self.action_space.shape]
            return {
                "loc": tf.reshape(outputs[:, :size], shape),
                "scale": tf.reshape(
                    tf.exp(tf.clip_by_value(outputs[:, size:], LOG_STD_MIN, LOG_STD_MAX)), shape
                ),
            }

        def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
            return clip_tensor(parameters["loc"], self.action_space)

        def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            seeds = tf.stack([seed, tf.constant(0, tf.int64)])
            loc = parameters["loc"]
            noise = tf.random.stateless_normal(tf.shape(loc), seeds, dtype=loc.dtype)
            return clip_tensor(loc + parameters["scale"] * noise, self.action_space)

        def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            parameters = self.parameters(outputs)
            standardized = (raw_actions - parameters["loc"]) / parameters["scale"]
            log_density = -0.5 * tf.square(standardized) - tf.math.log(parameters["scale"])
            axes = list(range(1, 1 + len(self.action_space.shape)))
            return tf.reduce_sum(log_density - 0.5 * math.log(2.0 * math.pi), axis=axes)

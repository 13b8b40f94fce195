"""Action distributions in TensorFlow, for training: sampling, log-probabilities, entropies, KL.

They read an actor network's outputs exactly as `gymserve.policies.distributions` does when the
trained policy acts or is served: logits for a Discrete action space; `[pre-squash mean |
log_std]` for a Box one, with actions `low + (tanh(u) + 1) / 2 * (high - low)`. A rollout stores
the *raw* action: the integer for Discrete, the pre-squash sample `u` for Box, so that
log-probabilities never have to invert tanh at the bounds.
"""

from __future__ import annotations

import abc
import math

import gymnasium as gym
import numpy as np
import tensorflow as tf

from gymserve.policies.policy_graph import distribution_parameters, squash


class ActionDistribution(abc.ABC):
    """A family of action distributions, parameterised per observation by network outputs."""

    raw_dtype: tf.DType

    @abc.abstractmethod
    def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
        """One raw action per row of `outputs`."""

    @abc.abstractmethod
    def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
        """The actions the environment takes for a batch of raw actions."""

    @abc.abstractmethod
    def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
        """log pi(action | observation) of each row: the density of the env action."""

    @abc.abstractmethod
    def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
        """The entropy bonus of each row."""

    @abc.abstractmethod
    def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        """KL(old || new) of each row, between the distributions of `old_outputs` and `outputs`."""


class CategoricalActions(ActionDistribution):
    """Softmax over logits for `Discrete(n, start)`."""

    raw_dtype = tf.int64

    def __init__(self, start: int = 0):
        self.start = start

    def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
        # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits).
        uniform = generator.uniform(tf.shape(outputs), minval=np.finfo(np.float32).tiny, maxval=1.0)
        return tf.argmax(outputs - tf.math.log(-tf.math.log(uniform)), axis=-1)

    def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
        return raw_actions + self.start

    def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
        log_probabilities = tf.nn.log_softmax(outputs)
        return tf.gather(log_probabilities, raw_actions, axis=-1, batch_dims=1)

    def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
        log_probabilities = tf.nn.log_softmax(outputs)
        return -tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, axis=-1)

    def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        old_log_probabilities = tf.nn.log_softmax(old_outputs)
        log_ratios = old_log_probabilities - tf.nn.log_softmax(outputs)
        return tf.reduce_sum(tf.exp(old_log_probabilities) * log_ratios, axis=-1)


class SquashedGaussianActions(ActionDistribution):
    """Diagonal Gaussians over `u`, squashed by tanh and scaled into a Box's bounds.

    The density of the env action includes the change of variables through the squash:
    log pi(a) = log N(u; mean, std) - sum log |da/du|, with da/du = (1 - tanh(u)^2) (high - low) / 2.
    The entropy bonus is that of the Gaussian over `u`, since the squashed one has no closed form.
    Parameters and squash are gymserve.policies.policy_graph's, as built into exported models.
    """

    raw_dtype = tf.float32

    def __init__(self, action_space: gym.spaces.Box):
        if not action_space.is_bounded("both"):
            raise ValueError(f"a squashed Gaussian needs a bounded Box action space, got {action_space}")
        self.action_space = action_space
        self._action_axes = list(range(1, 1 + len(action_space.shape)))
        half_range = (action_space.high.astype(np.float64) - action_space.low) / 2.0
        self._log_half_range = tf.constant(np.log(half_range), tf.float32)

    def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
        parameters = distribution_parameters(outputs, self.action_space)
        mean = parameters["mean"]
        return mean + tf.exp(parameters["log_std"]) * generator.normal(tf.shape(mean))

    def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
        return squash(raw_actions, self.action_space)

    def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
        parameters = distribution_parameters(outputs, self.action_space)
        mean, log_std = parameters["mean"], parameters["log_std"]
        standardized = (raw_actions - mean) * tf.exp(-log_std)
        gaussian = -0.5 * tf.square(standardized) - log_std - 0.5 * math.log(2.0 * math.pi)
        # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|
        log_tanh_slope = 2.0 * (math.log(2.0) - raw_actions - tf.nn.softplus(-2.0 * raw_actions))
        return tf.reduce_sum(gaussian - log_tanh_slope - self._log_half_range, axis=self._action_axes)

    def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
        log_std = distribution_parameters(outputs, self.action_space)["log_std"]
        return tf.reduce_sum(log_std + 0.5 * math.log(2.0 * math.pi * math.e), axis=self._action_axes)

    def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        # The squash is one invertible map applied to both, so the KL is that of the Gaussians over u.
        old = distribution_parameters(old_outputs, self.action_space)
        new = distribution_parameters(outputs, self.action_space)
        variance_ratio = tf.exp(2.0 * (old["log_std"] - new["log_std"]))
        mean_term = tf.square((old["mean"] - new["mean"]) * tf.exp(-new["log_std"]))
        per_dimension = 0.5 * (variance_ratio + mean_term - 1.0) - (old["log_std"] - new["log_std"])
        return tf.reduce_sum(per_dimension, axis=self._action_axes)


def action_distribution(action_space: gym.spaces.Space) -> ActionDistribution:
    """The distribution family an actor network for `action_space` parameterises."""
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalActions(int(action_space.start))
    if isinstance(action_space, gym.spaces.Box):
        return SquashedGaussianActions(action_space)
    raise TypeError(f"on-policy agents act in Discrete or Box action spaces, got {action_space}")

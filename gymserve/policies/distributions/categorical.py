"""Categorical distributions over a `Discrete(n, start)` action space, from logits (batch, n)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import Distribution, DistributionGraph

if TYPE_CHECKING:
    import tensorflow as tf


class Categorical(Distribution):
    """Categorical distributions over `start, ..., start + n - 1` given unnormalised logits."""

    kind = "categorical"
    space_type = gym.spaces.Discrete
    parameter_names = ("logits",)
    outputs_meaning = "logits"

    def __init__(self, logits: np.ndarray, start: int = 0):
        self.logits = np.asarray(logits, dtype=np.float32)
        self.start = start

    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=-1, keepdims=True)
        weights = np.exp(shifted.astype(np.float64))
        return weights / weights.sum(axis=-1, keepdims=True)

    def mode(self) -> np.ndarray:
        return self.start + np.argmax(self.logits, axis=-1).astype(np.int64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        # Inverse-CDF sampling: one uniform number per row, so draws depend only on the seed.
        cumulative = np.cumsum(self.probabilities(), axis=-1)
        uniforms = rng.random((len(cumulative), 1))
        indices = (uniforms > cumulative).sum(axis=-1)
        return self.start + np.minimum(indices, cumulative.shape[-1] - 1).astype(np.int64)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"logits": self.logits}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        indices = np.asarray(actions) - self.start
        count = self.logits.shape[-1]
        if indices.shape != self.logits.shape[:-1] or not np.isin(indices, np.arange(count)).all():
            raise ValueError(
                f"actions {np.asarray(actions).tolist()} are not one of {self.start}.."
                f"{self.start + count - 1} per distribution (batch {self.logits.shape[:-1]})"
            )
        with np.errstate(divide="ignore"):  # an impossible action has log-probability -inf
            log_probabilities = np.log(self.probabilities())
        return np.take_along_axis(log_probabilities, indices[..., None], axis=-1)[..., 0]

    def entropy(self) -> np.ndarray:
        probabilities = self.probabilities()
        logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
        return -(probabilities * logs).sum(axis=-1)

    @classmethod
    def output_size(cls, action_space: gym.spaces.Discrete) -> int:
        return int(action_space.n)

    @classmethod
    def parameter_shapes(cls, action_space: gym.spaces.Discrete) -> dict[str, tuple[int, ...]]:
        return {"logits": (int(action_space.n),)}

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Discrete) -> Categorical:
        return cls(outputs, int(action_space.start))

    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Discrete
    ) -> Categorical:
        return cls(parameters["logits"], int(action_space.start))

    class Graph(DistributionGraph):
        """Softmax over logits; raw actions are the indices, env actions add `start`."""

        action_space: gym.spaces.Discrete

        @property
        def raw_dtype(self) -> tf.DType:
            import tensorflow as tf

            return tf.int64

        def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": outputs}

        def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
            """The first arg-max of the logits."""
            import tensorflow as tf

            return tf.argmax(parameters["logits"], axis=-1, output_type=tf.int64) + int(
                self.action_space.start
            )

        def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            seeds = tf.stack([seed, tf.constant(0, tf.int64)])
            samples = tf.random.stateless_categorical(parameters["logits"], 1, seeds, dtype=tf.int64)
            return samples[:, 0] + int(self.action_space.start)

        def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
            return raw_actions + int(self.action_space.start)

        def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
            import tensorflow as tf

            # Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits).
            uniform = generator.uniform(tf.shape(outputs), minval=np.finfo(np.float32).tiny, maxval=1.0)
            return tf.argmax(outputs - tf.math.log(-tf.math.log(uniform)), axis=-1)

        def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            log_probabilities = tf.nn.log_softmax(outputs)
            return tf.gather(log_probabilities, raw_actions, axis=-1, batch_dims=1)

        def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            log_probabilities = tf.nn.log_softmax(outputs)
            return -tf.reduce_sum(tf.exp(log_probabilities) * log_probabilities, axis=-1)

        def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
            import tensorflow as tf

            old_log_probabilities = tf.nn.log_softmax(old_outputs)
            log_ratios = old_log_probabilities - tf.nn.log_softmax(outputs)
            return tf.reduce_sum(tf.exp(old_log_probabilities) * log_ratios, axis=-1)

"""A policy whose action distribution comes from a Keras network.

The network takes a float32 batch of raw observations (any normalization is a layer inside it)
and outputs what `distributions.distribution_from_outputs` expects: logits (or DQN Q-values)
for a Discrete action space, `[pre-squash mean | log_std]` for a Box action space, or, with
`distribution="noisy_deterministic"`, `[pre-squash action | exploration noise std]`.

Acting calls the network once per environment step with a handful of observations, so the
forward pass is traced once into a concrete TensorFlow function with a `[None, *obs_shape]`
input signature and called with a tensor. On two CPU cores, for a 256x256 MLP and one
observation, that costs about 0.2 ms against about 0.35 ms for a `tf.function` and 1.4 ms for
an eager `network(x)`. The function reads the network's variables, so training updates are
seen by the next call.
"""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from gymserve.policies.base import Policy, PolicyState
from gymserve.policies.distributions import (
    Distribution,
    DistributionKind,
    default_distribution_kind,
    distribution_from_outputs,
)


class ActorPolicy(Policy):
    """Acts from a Keras network's outputs; greedy, stochastic and epsilon-greedy per call."""

    def __init__(
        self,
        network: keras.Model,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        seed: int | None = None,
        distribution: DistributionKind | None = None,
    ):
        super().__init__(observation_space, action_space, seed)
        if isinstance(action_space, gym.spaces.Box) and not action_space.is_bounded("both"):
            raise ValueError(f"squashed actions need finite bounds; the action space {action_space} is not")
        kind = distribution or default_distribution_kind(action_space)
        allowed = _BOX_KINDS if isinstance(action_space, gym.spaces.Box) else ("categorical",)
        if kind not in allowed:
            raise ValueError(f"distribution {kind!r} does not fit {action_space}; expected one of {allowed}")
        self._distribution_kind: DistributionKind = kind
        self._network = network
        self._forward = _trace_forward(network, self.observation_space.shape)
        _check_output_shape(self._forward.structured_outputs.shape, self.action_space)

    @property
    def network(self) -> keras.Model:
        return self._network

    @property
    def distribution_kind(self) -> DistributionKind:
        """How the network's outputs are read (distributions.py)."""
        return self._distribution_kind

    def network_outputs(self, observations: np.ndarray) -> np.ndarray:
        """The raw network outputs for a validated float32 batch of observations."""
        return self._forward(tf.constant(observations)).numpy()

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return distribution_from_outputs(
            self.network_outputs(observations), self.action_space, self._distribution_kind
        )


_BOX_KINDS: tuple[DistributionKind, ...] = ("squashed_gaussian", "noisy_deterministic")


def expected_output_shape(action_space: gym.spaces.Box | gym.spaces.Discrete) -> tuple[int]:
    """The per-observation output shape the distributions contract asks of a network."""
    if isinstance(action_space, gym.spaces.Discrete):
        return (int(action_space.n),)
    return (2 * int(np.prod(action_space.shape)),)


def _trace_forward(
    network: keras.Model, observation_shape: tuple[int, ...]
) -> tf.types.experimental.ConcreteFunction:
    signature = tf.TensorSpec([None, *observation_shape], tf.float32, name="observations")

    if not network.built:
        # Variables must exist before tracing, or the traced function would own fresh copies.
        network(np.zeros((1, *observation_shape), np.float32))

    @tf.function(input_signature=[signature])
    def forward(observations: tf.Tensor) -> tf.Tensor:
        return tf.cast(network(observations, training=False), tf.float32)

    try:
        return forward.get_concrete_function()
    except Exception as error:  # Keras raises several types for an input it cannot take
        raise ValueError(
            "the network cannot take a float32 observation batch of shape "
            f"(None, *{observation_shape}): {error}"
        ) from error


def _check_output_shape(
    output_shape: tf.TensorShape, action_space: gym.spaces.Box | gym.spaces.Discrete
) -> None:
    expected = expected_output_shape(action_space)
    if output_shape.rank != 2 or output_shape[1] != expected[0]:
        meaning = "logits" if isinstance(action_space, gym.spaces.Discrete) else "mean and log_std"
        raise ValueError(
            f"the network outputs shape {output_shape}; "
            f"expected (batch, {expected[0]}) {meaning} for {action_space}"
        )

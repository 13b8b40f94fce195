"""The distributions contract in TensorFlow ops, for the graphs that leave the process.

`distributions.py` defines what network outputs mean in numpy; the exported SavedModel and
ONNX graphs need the same post-processing inside the model so that a client gets actions in
the action space, not raw network outputs. These functions build it, op for op in the same
order as the numpy code, so in-process and exported greedy actions agree.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import tensorflow as tf

from gymserve.policies.distributions import (
    LOG_STD_MAX,
    LOG_STD_MIN,
    DistributionKind,
    default_distribution_kind,
)


def distribution_parameters(
    outputs: tf.Tensor,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    kind: DistributionKind | None = None,
) -> dict[str, tf.Tensor]:
    """`{"logits"}` for a Discrete space; for a Box, shaped like actions, `{"mean", "log_std"}` or
    (noisy deterministic) `{"mean", "noise_std"}` with the squashed action as the mean."""
    if isinstance(action_space, gym.spaces.Discrete):
        return {"logits": outputs}
    size = int(np.prod(action_space.shape))
    shape = [-1, *action_space.shape]
    if (kind or default_distribution_kind(action_space)) == "noisy_deterministic":
        return {
            "mean": squash(tf.reshape(outputs[:, :size], shape), action_space),
            "noise_std": tf.reshape(outputs[:, size:], shape),
        }
    return {
        "mean": tf.reshape(outputs[:, :size], shape),
        "log_std": tf.reshape(tf.clip_by_value(outputs[:, size:], LOG_STD_MIN, LOG_STD_MAX), shape),
    }


def greedy_action(
    parameters: dict[str, tf.Tensor], action_space: gym.spaces.Box | gym.spaces.Discrete
) -> tf.Tensor:
    """The most likely action: the first arg-max of the logits, the squashed mean, or the
    deterministic action."""
    if isinstance(action_space, gym.spaces.Discrete):
        return tf.argmax(parameters["logits"], axis=-1, output_type=tf.int64) + int(action_space.start)
    if "noise_std" in parameters:
        return parameters["mean"]
    return squash(parameters["mean"], action_space)


def stochastic_action(
    parameters: dict[str, tf.Tensor], action_space: gym.spaces.Box | gym.spaces.Discrete, seed: tf.Tensor
) -> tf.Tensor:
    """A sample drawn with TensorFlow's stateless random ops: the same seed gives the same action."""
    seeds = tf.stack([seed, tf.constant(0, tf.int64)])
    if isinstance(action_space, gym.spaces.Discrete):
        samples = tf.random.stateless_categorical(parameters["logits"], 1, seeds, dtype=tf.int64)
        return samples[:, 0] + int(action_space.start)
    mean = parameters["mean"]
    noise = tf.random.stateless_normal(tf.shape(mean), seeds, dtype=mean.dtype)
    if "noise_std" in parameters:
        low = tf.constant(action_space.low, tf.float32)
        high = tf.constant(action_space.high, tf.float32)
        return tf.clip_by_value(mean + parameters["noise_std"] * noise, low, high)
    return squash(mean + tf.exp(parameters["log_std"]) * noise, action_space)


def squash(pre_squash: tf.Tensor, action_space: gym.spaces.Box) -> tf.Tensor:
    """tanh into [low, high], clipped against rounding like `Policy.action` does."""
    low = tf.constant(action_space.low, tf.float32)
    high = tf.constant(action_space.high, tf.float32)
    unit = (tf.tanh(pre_squash) + 1.0) * 0.5
    return tf.clip_by_value(low + unit * (high - low), low, high)


def named_next_state(next_state: list[tf.Tensor]) -> dict[str, tf.Tensor]:
    """A recurrent network's next state parts as the exported outputs `next_state_0`, `next_state_1`, ..."""
    return {f"next_state_{index}": tf.cast(part, tf.float32) for index, part in enumerate(next_state)}


def next_state_of(outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The `next_state_i` entries of `outputs` (none for a stateless policy)."""
    return {name: value for name, value in outputs.items() if name.startswith("next_state_")}

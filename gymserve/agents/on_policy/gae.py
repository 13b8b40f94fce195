"""Generalized advantage estimation (Schulman et al. 2016), the one GAE of gymserve.

Written in TensorFlow so compiled rollouts can run it inside the graph; eager callers pass numpy
arrays and get tensors back. Time runs along axis 0; any trailing axes (parallel envs) broadcast.

Each step t carries the value of its true successor, `next_values[t] = V(s'_t)`: for a step that
ended its episode this is the value of the final observation, not of the observation the env
reset to. The two ways an episode ends are then treated differently:

- termination (the pole fell): the successor has no future, so nothing is bootstrapped;
- truncation (the time limit): the episode was cut short, so the TD target still bootstraps from
  `V(s'_t)`, but the advantage does not flow in from the next episode.
"""

from __future__ import annotations

import tensorflow as tf


def generalized_advantages(
    rewards: tf.Tensor,
    values: tf.Tensor,
    next_values: tf.Tensor,
    terminated: tf.Tensor,
    truncated: tf.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Advantages and value targets (returns) of a rollout, each shaped like `rewards`.

    `values[t] = V(s_t)`; `terminated` and `truncated` are the env's flags of step t (bool or
    0/1). The returns are `advantages + values`, the TD(lambda) targets of the value function.
    """
    rewards = tf.convert_to_tensor(rewards, tf.float32)
    values = tf.convert_to_tensor(values, tf.float32)
    next_values = tf.convert_to_tensor(next_values, tf.float32)
    terminated = tf.cast(tf.convert_to_tensor(terminated), tf.bool)
    truncated = tf.cast(tf.convert_to_tensor(truncated), tf.bool)
    for name, tensor in (
        ("values", values),
        ("next_values", next_values),
        ("terminated", terminated),
        ("truncated", truncated),
    ):
        if not tensor.shape.is_compatible_with(rewards.shape):
            raise ValueError(
                f"{name} has shape {tensor.shape}; expected the shape of rewards {rewards.shape}"
            )

    survives = 1.0 - tf.cast(terminated, tf.float32)
    continues = 1.0 - tf.cast(terminated | truncated, tf.float32)
    deltas = rewards + gamma * survives * next_values - values

    def accumulate(later_advantage: tf.Tensor, step: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        delta, step_continues = step
        return delta + gamma * gae_lambda * step_continues * later_advantage

    advantages = tf.scan(accumulate, (deltas, continues), initializer=tf.zeros_like(deltas[0]), reverse=True)
    return advantages, advantages + values

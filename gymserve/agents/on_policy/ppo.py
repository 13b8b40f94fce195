"""Proximal Policy Optimization (Schulman et al., 2017) with the clipped surrogate objective.

Each iteration collects `n_steps` steps of `num_envs` envs, computes GAE advantages, and takes
`n_epochs` passes over the rollout in shuffled minibatches of `batch_size` rows, all in one
compiled call (algorithm.py). The policy term is

    -mean(min(r A, clip(r, 1 - clip_coef, 1 + clip_coef) A)),   r = pi(a|s) / pi_old(a|s),

and `linear_decay_steps` anneals both the learning rate and `clip_coef` linearly to 0.

With `lstm_units` set, runs build recurrent_ppo.RecurrentPPO instead (the registry's variant of
"ppo"): an LSTM actor-critic trained on sequences of `bptt_length` steps, through which gradients
flow (truncated backpropagation).
"""

from __future__ import annotations

from typing import ClassVar

import gymnasium as gym
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.on_policy.algorithm import (
    OnPolicyAlgorithm,
    OnPolicyConfig,
    check_minibatches_tile_the_rollout,
    clipped_surrogate_loss,
)


class PPOConfig(OnPolicyConfig):
    """PPO hyperparameters: Stable-Baselines3's defaults, but rollouts of 8 envs x 256 steps."""

    num_envs: int = Field(8, gt=0, description="Training environments stepped side by side.")
    n_steps: int = Field(256, gt=0, description="Steps of every env per rollout.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    learning_rate: float = Field(3e-4, gt=0, description="Initial Adam learning rate.")
    normalize_advantage: bool = Field(True, description="Standardize advantages within each minibatch.")
    n_epochs: int = Field(10, gt=0, description="Passes over each rollout.")
    batch_size: int = Field(64, gt=0, description="Rows per minibatch; must divide n_steps * num_envs.")
    clip_coef: float = Field(0.2, gt=0, description="How far the probability ratio may move from 1.")
    lstm_units: int | None = Field(
        None,
        gt=0,
        description=(
            "Units of an LSTM between the hidden_sizes layers (shared by actor and critic) and the heads; "
            "None: a feed-forward actor-critic."
        ),
    )
    bptt_length: int = Field(
        16, gt=0, description="With lstm_units: steps per training sequence (truncated backpropagation)."
    )

    @model_validator(mode="after")
    def _minibatches_tile_the_rollout(self) -> PPOConfig:
        check_minibatches_tile_the_rollout(self, self.batch_size)
        if self.lstm_units is not None:
            if self.image_encoder is not None:
                raise ValueError("image_encoder does not apply with lstm_units: recurrent PPO takes vectors")
            for name in ("n_steps", "batch_size"):
                if getattr(self, name) % self.bptt_length:
                    raise ValueError(
                        f"{name} {getattr(self, name)} is not a multiple of bptt_length {self.bptt_length}; "
                        "recurrent minibatches are whole sequences"
                    )
        return self


class PPO(OnPolicyAlgorithm):
    """Feed-forward PPO for Discrete and (tanh-squashed Gaussian) Box action spaces."""

    name = "ppo"
    config_class = PPOConfig
    policy_metric_names = ("clip_fraction",)
    recurrent: ClassVar[bool] = False  # whether the actor-critic has an LSTM of `lstm_units`

    def __init__(self, config: PPOConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space):
        lstm_units = getattr(config, "lstm_units", None)
        if (lstm_units is not None) != self.recurrent:
            raise ValueError(
                f"{type(self).__name__} is {'recurrent' if self.recurrent else 'feed-forward'} but "
                f"the config's lstm_units is {lstm_units}; algorithm_class('ppo', config) picks the class"
            )
        super().__init__(config, observation_space, action_space)

    def n_epochs(self) -> int:
        return self.config.n_epochs

    def minibatch_size(self) -> int:
        return self.config.batch_size

    def policy_loss(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, decay_fraction: tf.Tensor
    ) -> tf.Tensor:
        return clipped_surrogate_loss(log_probs, old_log_probs, advantages, self._clip_coef(decay_fraction))

    def policy_metrics(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, decay_fraction: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """clip_fraction: the share of rows whose ratio is outside [1 - clip, 1 + clip]; a large
        share says the clip, more than the learning rate, bounds how far an update moves."""
        ratio = tf.exp(log_probs - old_log_probs)
        outside = tf.abs(ratio - 1.0) > self._clip_coef(decay_fraction)
        return {"clip_fraction": tf.reduce_mean(tf.cast(outside, tf.float32))}

    def _clip_coef(self, decay_fraction: tf.Tensor) -> tf.Tensor | float:
        """The clip range now: `clip_coef`, decayed with the learning rate under `linear_decay_steps`."""
        if self.config.linear_decay_steps is None:
            return self.config.clip_coef
        return self.config.clip_coef * decay_fraction

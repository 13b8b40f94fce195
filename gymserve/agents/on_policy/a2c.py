"""Advantage Actor-Critic (A2C), the synchronous form of A3C (Mnih et al., 2016).

Each iteration collects `n_steps` steps of `num_envs` envs and takes one gradient step on the
whole rollout with the policy term -mean(A * log pi(a|s)); with `gae_lambda` = 1 the advantages
are n-step returns minus the critic's values. Rollout, targets and loss are algorithm.py's.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
from pydantic import Field

from gymserve.agents.on_policy.algorithm import OnPolicyAlgorithm, OnPolicyConfig, policy_gradient_loss


class A2CConfig(OnPolicyConfig):
    """A2C hyperparameters: Stable-Baselines3's defaults, with 8 envs as in rl-baselines3-zoo."""

    num_envs: int = Field(8, gt=0, description="Training environments stepped side by side.")
    optimizer: Literal["adam", "rmsprop"] = Field(
        "rmsprop", description="Adam, or RMSprop (alpha 0.99, eps 1e-5)."
    )


class A2C(OnPolicyAlgorithm):
    """A2C for Discrete and (tanh-squashed Gaussian) Box action spaces."""

    name = "a2c"
    config_class = A2CConfig

    def policy_loss(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, decay_fraction: tf.Tensor
    ) -> tf.Tensor:
        return policy_gradient_loss(log_probs, advantages)

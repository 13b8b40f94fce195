"""Soft Actor-Critic (Haarnoja et al., 2018) with twin critics and automatic entropy tuning.

The actor outputs [pre-tanh mean | log_std] (gymserve.policies.distributions), so the trained
actor is the exported policy as it is: u ~ N(mean, std), a = low + (tanh(u) + 1) / 2 * (high -
low), and log pi(a|s) includes both changes of variables. The critics and the replay buffer hold
actions as tanh(u) in [-1, 1]^d, whatever the bounds.

Differences from the paper: automatic entropy tuning (Haarnoja et al., 2018b) instead of a fixed
temperature, no separate state-value network, optional n-step returns and prioritized replay
(algorithm.py), and optionally no entropy term in the TD target (`backup_entropy`).

The first `learning_starts` environment steps take uniform random actions. Then every iteration
acts `train_freq` runner steps with samples of the actor and takes `gradient_steps` gradient
steps, in one compiled call that also returns the actor's outputs for the next action.
Each gradient step, with a' ~ pi(s') and a ~ pi(s) reparameterised:

    critics  Q1, Q2 -> y = r + gamma (1 - terminated) (min_i Qtarget_i(s', a') - alpha log pi(a'|s'))
             (bootstrap_horizon n > 1: the discounted sum of up to n rewards, then gamma^n and the n-th s')
    actor    minimises alpha log pi(a|s) - min_i Q_i(s, a)
    alpha    minimises -log(alpha) (log pi(a|s) + target_entropy),  target_entropy = -dim(A) by default

then moves the target critics toward the critics by Polyak averaging with `tau`. Without
`backup_entropy` the TD target drops its alpha term. The Gaussian noise comes from the
algorithm's numpy generator, which checkpoints save, so a resumed run draws what an uninterrupted
one would. Observation normalization is one RunningNormalization layer shared by the actor and
the critics; inside the actor it ships with the exported policy.

Tuned defaults for gymserve/Minitaur-v0 ship in
gymserve/agents/training/configs/sac_Minitaur-v0.json. Diving forward
earns about 0.3 and ends the episode, while a steady 0.1 m/s gait (return 1 over the 1000
steps) is worth only 0.1 at gamma 0.99, so greedy policies learn to dive. gamma 0.998 with 5-step
returns values the gait above the dive, and without `backup_entropy` a negative policy entropy
no longer charges every step alive as a cost. With seed 0, greedy evaluations average 1.3 at 20k
steps, 11.3 at 100k and 15.1 at 130k (21 min on two cores) on the AVX-512 machine of
benchmarks/RESULTS.md; other CPUs round differently and give other numbers from the same seed.
"""

from __future__ import annotations

import math
from typing import ClassVar

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field

from gymserve.agents.networks import action_value_critics, mlp, observation_input
from gymserve.agents.off_policy.algorithm import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    apply_gradients,
    build_adam,
    unit_box_actions,
)
from gymserve.policies.base import uniform_actions
from gymserve.policies.distributions import SquashedGaussian, distribution_from_outputs


class SACConfig(OffPolicyConfig):
    """SAC hyperparameters; the defaults are the TF-Agents SAC Minitaur tutorial's."""

    renamed_fields: ClassVar[dict[str, str]] = {
        "n_step": "bootstrap_horizon",
        "initial_collect_steps": "learning_starts",
    }

    actor_learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate of the actor.")
    critic_learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate of the critics.")
    alpha_learning_rate: float = Field(3e-4, gt=0, description="Adam learning rate of log(alpha).")
    actor_hidden_sizes: tuple[int, ...] = Field((256, 256), description="Units of the actor's hidden layers.")
    critic_hidden_sizes: tuple[int, ...] = Field(
        (256, 256), description="Units of each critic's hidden layers."
    )
    activation: str = Field("relu", description="Activation of the hidden layers.")
    normalize_observations: bool = Field(
        False, description="Standardize observations with running statistics."
    )
    learning_starts: int = Field(
        10_000,
        ge=0,
        description="Environment steps of uniform random actions before learning starts. "
        "Formerly `initial_collect_steps`.",
    )
    target_update_interval: int = Field(1, gt=0, description="Gradient steps between target updates.")
    reward_scale: float = Field(1.0, gt=0, description="Rewards are multiplied by this in the TD targets.")
    initial_alpha: float = Field(1.0, gt=0, description="Entropy temperature alpha at the start.")
    target_entropy: float | None = Field(
        None, description="Entropy the temperature tuning aims for; None means -dim(A)."
    )
    backup_entropy: bool = Field(
        True,
        description="Keep -alpha log pi(a'|s') in the TD targets. A negative policy entropy makes that "
        "term a cost per step, which can make ending an episode early (falling) look attractive.",
    )


class EntropyTemperature(keras.Model):
    """Holds log(alpha), the trainable entropy temperature, as a checkpointed weight."""

    def __init__(self, initial_alpha: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        initializer = keras.initializers.Constant(math.log(initial_alpha))
        self.log_alpha = self.add_weight(shape=(), initializer=initializer, name="log_alpha")

    def call(self, inputs=None):
        return keras.ops.exp(self.log_alpha)


def squashed_gaussian_actor(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    hidden_sizes: tuple[int, ...],
    activation: str,
    normalize_observations: bool,
) -> keras.Model:
    """Observations -> [pre-tanh mean | log_std], (B, 2d), from one linear output layer."""
    inputs, features = observation_input(observation_space, normalize_observations)
    features = mlp(features, hidden_sizes, activation, "actor")
    outputs = keras.layers.Dense(2 * _action_size(action_space), name="mean_log_std")(features)
    return keras.Model(inputs, outputs, name="actor")


class SAC(OffPolicyAlgorithm):
    """Soft Actor-Critic for bounded Box action spaces."""

    name = "sac"
    config_class = SACConfig
    action_spaces = (gym.spaces.Box,)
    metric_names = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy")

    def __init__(self, config: SACConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        super().__init__(config, observation_space, action_space)
        self.config: SACConfig = config
        self.distribution = SquashedGaussian.Graph(action_space)  # rejects unbounded boxes
        self.action_size = _action_size(action_space)
        self.target_entropy = float(
            -self.action_size if config.target_entropy is None else config.target_entropy
        )
        self.actor = squashed_gaussian_actor(
            observation_space,
            action_space,
            config.actor_hidden_sizes,
            config.activation,
            config.normalize_observations,
        )
        shared = self.actor.get_layer("observation_normalization") if config.normalize_observations else None
        critic_args = (observation_space, action_space, config.critic_hidden_sizes, config.activation, shared)
        self.critic = action_value_critics(*critic_args, name="critic")
        self.target_critic = action_value_critics(*critic_args, name="target_critic")
        self.target_critic.set_weights(self.critic.get_weights())
        self.temperature = EntropyTemperature(config.initial_alpha, name="entropy_temperature")
        self.actor_optimizer = build_adam(config.actor_learning_rate, self.actor.trainable_variables)
        self.critic_optimizer = build_adam(config.critic_learning_rate, self.critic.trainable_variables)
        self.alpha_optimizer = build_adam(config.alpha_learning_rate, self.temperature.trainable_variables)

    def networks(self) -> dict[str, keras.Model]:
        return {
            "actor": self.actor,
            "critic": self.critic,
            "target_critic": self.target_critic,
            "temperature": self.temperature,
        }

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer, "alpha": self.alpha_optimizer}

    def policy_network(self) -> keras.Model:
        return self.actor

    @property
    def alpha(self) -> float:
        """The current entropy temperature."""
        return float(np.exp(self.temperature.log_alpha.numpy()))

    def sample_actions(self, outputs: tf.Tensor, noise: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Reparameterised samples u = mean + std * noise of the actor's `outputs`, for standard
        normal `noise` shaped (B, *action_shape): tanh(u) as (B, d), as the critics take actions,
        and log pi of the env actions they stand for."""
        parameters = self.distribution.parameters(outputs)
        raw_actions = parameters["mean"] + tf.exp(parameters["log_std"]) * noise
        critic_actions = tf.reshape(tf.tanh(raw_actions), (-1, self.action_size))
        return critic_actions, self.distribution.log_prob(outputs, raw_actions)

    @classmethod
    def action_spec(cls, action_space: gym.spaces.Box) -> tuple[tuple[int, ...], type]:
        return (_action_size(action_space),), np.float32  # tanh(u)

    def stored_actions(self, actions: np.ndarray) -> np.ndarray:
        return unit_box_actions(actions, self.action_space)

    def explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        """Uniform random actions until learning starts, then samples of the actor."""
        if total_steps < self.config.learning_starts:
            return uniform_actions(self.action_space, len(observations), self.rng)
        return distribution_from_outputs(self.acting_outputs(observations), self.action_space).sample(
            self.rng
        )

    def extra_minibatch_arrays(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """The standard normal noise of the actions sampled at the observations and next observations."""
        noise = self.rng.standard_normal((2, *shape, *self.action_space.shape), dtype=np.float32)
        return {"noise": noise[0], "next_noise": noise[1]}

    @property
    def gradient_step_counter(self) -> tf.Variable:
        return self.critic_optimizer.iterations

    @property
    def target_update_period(self) -> int:
        return self.config.target_update_interval

    def target_pairs(self) -> list[tuple[keras.Model, keras.Model]]:
        return [(self.target_critic, self.critic)]

    def gradient_step(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        observations, next_observations = batch["observations"], batch["next_observations"]
        log_alpha = self.temperature.log_alpha
        alpha = tf.exp(log_alpha)
        next_actions, next_log_probs = self.sample_actions(self.actor(next_observations), batch["next_noise"])
        next_values = tf.reduce_min(self.target_critic([next_observations, next_actions]), axis=1)
        if self.config.backup_entropy:
            next_values -= alpha * next_log_probs
        targets = tf.stop_gradient(
            self.config.reward_scale * batch["returns"] + batch["discounts"] * next_values
        )
        with tf.GradientTape() as tape:
            q_values = self.critic([observations, batch["actions"]], training=True)
            squared_errors = tf.reduce_sum(tf.square(q_values - targets[:, None]), axis=1)
            critic_loss = 0.5 * tf.reduce_mean(batch["weights"] * squared_errors)
        apply_gradients(self.critic_optimizer, tape, critic_loss, self.critic.trainable_variables)
        td_errors = tf.reduce_mean(tf.abs(q_values - targets[:, None]), axis=1)

        with tf.GradientTape() as tape:
            sampled_actions, log_probs = self.sample_actions(
                self.actor(observations, training=True), batch["noise"]
            )
            q_values = tf.reduce_min(self.critic([observations, sampled_actions]), axis=1)
            actor_loss = tf.reduce_mean(alpha * log_probs - q_values)
        apply_gradients(self.actor_optimizer, tape, actor_loss, self.actor.trainable_variables)

        entropy_excess = tf.stop_gradient(log_probs + self.target_entropy)  # > 0: entropy below target
        with tf.GradientTape() as tape:
            alpha_loss = -tf.reduce_mean(log_alpha * entropy_excess)
        apply_gradients(self.alpha_optimizer, tape, alpha_loss, [log_alpha])
        metrics = tf.stack([critic_loss, actor_loss, alpha_loss, alpha, -tf.reduce_mean(log_probs)])
        return metrics, td_errors


def _action_size(action_space: gym.spaces.Box) -> int:
    return int(np.prod(action_space.shape))

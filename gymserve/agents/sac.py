"""Soft Actor-Critic (Haarnoja et al., 2018) with twin critics and automatic entropy tuning.

The actor outputs [pre-tanh mean | log_std] (gymserve.policies.distributions), so the trained
actor is the exported policy as it is: u ~ N(mean, std), a = low + (tanh(u) + 1) / 2 * (high -
low), and log pi(a|s) includes both changes of variables. The critics and the replay buffer hold
actions as tanh(u) in [-1, 1]^d, whatever the bounds.

The first `initial_collect_steps` environment steps take uniform random actions. Then every
iteration acts `train_freq` runner steps with samples of the actor and takes `gradient_steps`
gradient steps on uniform minibatches, in one compiled call that also returns the actor's outputs
for the next action. Each gradient step, with a' ~ pi(s') and a ~ pi(s) reparameterised:

    critics  Q1, Q2 -> y = r + gamma (1 - terminated) (min_i Qtarget_i(s', a') - alpha log pi(a'|s'))
             (with `n_step` > 1: the discounted sum of up to n rewards, then gamma^n and the n-th s')
    actor    minimises alpha log pi(a|s) - min_i Q_i(s, a)
    alpha    minimises -log(alpha) (log pi(a|s) + target_entropy),  target_entropy = -dim(A) by default

then moves the target critics toward the critics by Polyak averaging with `tau`. Without
`backup_entropy` the TD target drops its alpha term. The Gaussian noise comes from the
algorithm's numpy generator, which checkpoints save, so a resumed run draws what an uninterrupted
one would. Observation normalization is one RunningNormalization layer shared by the actor and
the critics; inside the actor it ships with the exported policy.

Tuned defaults for gymserve/Minitaur-v0 ship in configs/sac_Minitaur-v0.json. Diving forward
earns about 0.3 and ends the episode, while a steady 0.1 m/s gait (return 1 over the 1000
steps) is worth only 0.1 at gamma 0.99, so greedy policies learn to dive. gamma 0.998 with 5-step
returns values the gait above the dive, and without `backup_entropy` a negative policy entropy
no longer charges every step alive as a cost. With seed 0, greedy evaluations average 1.3 at 20k
steps, 11.3 at 100k and 15.1 at 130k (21 min on two cores) on the AVX-512 machine of
benchmarks/RESULTS.md; other CPUs round differently and give other numbers from the same seed.
"""

from __future__ import annotations

import math

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field

from gymserve.agents.action_distributions import SquashedGaussianActions
from gymserve.agents.algorithm import Algorithm
from gymserve.agents.config import TrainingConfig
from gymserve.agents.dqn import n_step_targets
from gymserve.agents.env_runner import EnvRunner, Transition
from gymserve.agents.networks import RunningNormalization, mlp, observation_input
from gymserve.agents.replay_buffer import ReplayBuffer
from gymserve.policies.base import uniform_actions
from gymserve.policies.distributions import distribution_from_outputs
from gymserve.policies.policy_graph import distribution_parameters

METRICS = ("critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy")
_REPLAY_PREFIX = "replay_"


class SACConfig(TrainingConfig):
    """SAC hyperparameters; the defaults are the TF-Agents SAC Minitaur tutorial's."""

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
    buffer_size: int = Field(1_000_000, gt=0, description="Replay buffer capacity in transitions.")
    initial_collect_steps: int = Field(
        10_000, ge=0, description="Environment steps of uniform random actions before learning starts."
    )
    batch_size: int = Field(256, gt=0, description="Transitions per gradient step.")
    train_freq: int = Field(1, gt=0, description="Runner steps (each steps every env) per round.")
    gradient_steps: int = Field(1, gt=0, description="Gradient steps per round.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    n_step: int = Field(1, gt=0, description="Rewards summed before bootstrapping (cut at episode ends).")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak averaging factor of the target critics.")
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
    jit_compile: bool = Field(True, description="Compile the gradient steps with XLA.")


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


def twin_critic(
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    hidden_sizes: tuple[int, ...],
    activation: str,
    normalization: RunningNormalization | None,
    name: str,
) -> keras.Model:
    """(observations, actions in [-1, 1]^d) -> (B, 2): the values of two independent Q-networks.

    `normalization` is the actor's layer, shared so that every network sees the same statistics.
    """
    observations = keras.Input(shape=observation_space.shape, dtype="float32", name="observations")
    actions = keras.Input(shape=(_action_size(action_space),), dtype="float32", name="actions")
    features = observations if normalization is None else normalization(observations)
    if len(observation_space.shape) > 1:
        features = keras.layers.Flatten()(features)
    joint = keras.layers.Concatenate(name="observations_actions")([features, actions])
    q_values = [
        keras.layers.Dense(1, name=f"q{index}")(mlp(joint, hidden_sizes, activation, f"q{index}_hidden"))
        for index in (1, 2)
    ]
    outputs = keras.layers.Concatenate(name="q_values")(q_values)
    return keras.Model([observations, actions], outputs, name=name)


class SAC(Algorithm):
    """Soft Actor-Critic for bounded Box action spaces."""

    name = "sac"
    config_class = SACConfig
    action_spaces = (gym.spaces.Box,)

    def __init__(self, config: SACConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        super().__init__(config, observation_space, action_space)
        self.config: SACConfig = config
        self.distribution = SquashedGaussianActions(action_space)  # rejects unbounded boxes
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
        self.critic = twin_critic(*critic_args, name="critic")
        self.target_critic = twin_critic(*critic_args, name="target_critic")
        self.target_critic.set_weights(self.critic.get_weights())
        self.temperature = EntropyTemperature(config.initial_alpha, name="entropy_temperature")
        self.actor_optimizer = _adam(config.actor_learning_rate, self.actor.trainable_variables)
        self.critic_optimizer = _adam(config.critic_learning_rate, self.critic.trainable_variables)
        self.alpha_optimizer = _adam(config.alpha_learning_rate, self.temperature.trainable_variables)
        self.replay = ReplayBuffer(
            {
                "observation": (observation_space.shape, np.float32),
                "action": ((self.action_size,), np.float32),  # tanh(u)
                "reward": ((), np.float32),
                "next_observation": (observation_space.shape, np.float32),
                "terminated": ((), np.bool_),
                "done": ((), np.bool_),
            },
            config.buffer_size,
        )
        # (observations, the actor's outputs for them) as the last update computed them.
        self._next_outputs: tuple[np.ndarray, np.ndarray] | None = None
        self._compiled_update: tf.types.experimental.ConcreteFunction | None = None

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

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        for _ in range(self.config.train_freq):
            self._store(runner.step(self._explore(runner.observations, runner.total_steps)))
        if self.replay.num_frames < max(self.config.initial_collect_steps, 1):
            return {}
        values, outputs = self._update(self._sample_minibatches(), runner.observations)
        self._next_outputs = (runner.observations, outputs.numpy())
        return {f"sac/{name}": float(value) for name, value in zip(METRICS, values.numpy(), strict=True)}

    def sample_actions(self, outputs: tf.Tensor, noise: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Reparameterised samples u = mean + std * noise of the actor's `outputs`, for standard
        normal `noise` shaped (B, *action_shape): tanh(u) as (B, d), as the critics take actions,
        and log pi of the env actions they stand for."""
        parameters = distribution_parameters(outputs, self.action_space)
        raw_actions = parameters["mean"] + tf.exp(parameters["log_std"]) * noise
        critic_actions = tf.reshape(tf.tanh(raw_actions), (-1, self.action_size))
        return critic_actions, self.distribution.log_prob(outputs, raw_actions)

    def state(self) -> dict[str, np.ndarray]:
        return {_REPLAY_PREFIX + name: array for name, array in self.replay.gather_all().items()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.replay.load({name.removeprefix(_REPLAY_PREFIX): array for name, array in arrays.items()})

    def _explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        """Uniform random actions during initial collection, then samples of the actor."""
        if total_steps < self.config.initial_collect_steps:
            return uniform_actions(self.action_space, len(observations), self.rng)
        if self._next_outputs is not None and self._next_outputs[0] is observations:
            outputs = self._next_outputs[1]
        else:
            outputs = self.policy().network_outputs(observations)
        return distribution_from_outputs(outputs, self.action_space).sample(self.rng)

    def _store(self, transition: Transition) -> None:
        low, high = self.action_space.low.reshape(-1), self.action_space.high.reshape(-1)
        actions = transition.actions.reshape(len(transition.actions), -1)
        self.replay.add_batch(
            {
                "observation": transition.observations,
                "action": np.clip(2.0 * (actions - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32),
                "reward": transition.rewards,
                "next_observation": transition.next_observations,
                "terminated": transition.terminated,
                "done": transition.dones,
            }
        )

    def _sample_minibatches(self) -> tuple[np.ndarray, ...]:
        """(gradient_steps, batch_size, ...) observations, actions, n-step returns, bootstrap
        discounts, next observations, and the standard normal noise of the actions sampled at both."""
        config = self.config
        count = config.gradient_steps * config.batch_size
        windows, mask = self.replay.sample_episode_windows(count, self.rng, config.n_step)
        returns, discounts, last = n_step_targets(
            windows["reward"], windows["terminated"], mask, config.gamma
        )
        arrays = (
            windows["observation"][:, 0],
            windows["action"][:, 0],
            returns,
            discounts,
            windows["next_observation"][np.arange(count), last],
        )
        shape = (config.gradient_steps, config.batch_size)
        noise = self.rng.standard_normal((2, *shape, *self.action_space.shape), dtype=np.float32)
        return (*(array.reshape(shape + array.shape[1:]) for array in arrays), noise[0], noise[1])

    def _update(
        self, minibatches: tuple[np.ndarray, ...], observations: np.ndarray
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`_learn_and_act`, traced once into a concrete function: its shapes never change, and
        calling a concrete function with tensors skips tf.function's per-call signature matching."""
        if self._compiled_update is None:
            function = tf.function(self._learn_and_act, jit_compile=self.config.jit_compile)
            self._compiled_update = function.get_concrete_function(
                tuple(tf.TensorSpec(array.shape, array.dtype) for array in minibatches),
                tf.TensorSpec((None, *self.observation_space.shape), tf.float32),
            )
        return self._compiled_update(
            tuple(tf.constant(array) for array in minibatches), tf.constant(observations)
        )

    def _learn_and_act(
        self, minibatches: tuple[tf.Tensor, ...], observations: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The gradient steps, then the actor's outputs at the current `observations`, so that
        choosing the next action needs no TensorFlow call of its own."""
        return self._gradient_steps(*minibatches), self.actor(observations, training=False)

    def _gradient_steps(
        self, observations, actions, returns, discounts, next_observations, noise, next_noise
    ):
        """One gradient step per leading index; returns the mean of each of METRICS."""
        steps = tf.shape(observations)[0]
        metrics = tf.TensorArray(tf.float32, size=steps)
        for index in tf.range(steps):
            values = self._gradient_step(
                observations[index],
                actions[index],
                returns[index],
                discounts[index],
                next_observations[index],
                noise[index],
                next_noise[index],
            )
            metrics = metrics.write(index, values)
            if self.critic_optimizer.iterations % self.config.target_update_interval == 0:
                self._update_targets()
        return tf.reduce_mean(metrics.stack(), axis=0)

    def _gradient_step(self, observations, actions, returns, discounts, next_observations, noise, next_noise):
        log_alpha = self.temperature.log_alpha
        alpha = tf.exp(log_alpha)
        next_actions, next_log_probs = self.sample_actions(self.actor(next_observations), next_noise)
        next_values = tf.reduce_min(self.target_critic([next_observations, next_actions]), axis=1)
        if self.config.backup_entropy:
            next_values -= alpha * next_log_probs
        targets = tf.stop_gradient(self.config.reward_scale * returns + discounts * next_values)
        with tf.GradientTape() as tape:
            q_values = self.critic([observations, actions], training=True)
            critic_loss = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(q_values - targets[:, None]), axis=1))
        _descend(self.critic_optimizer, tape, critic_loss, self.critic.trainable_variables)

        with tf.GradientTape() as tape:
            sampled_actions, log_probs = self.sample_actions(self.actor(observations, training=True), noise)
            q_values = tf.reduce_min(self.critic([observations, sampled_actions]), axis=1)
            actor_loss = tf.reduce_mean(alpha * log_probs - q_values)
        _descend(self.actor_optimizer, tape, actor_loss, self.actor.trainable_variables)

        entropy_excess = tf.stop_gradient(log_probs + self.target_entropy)  # > 0: entropy below target
        with tf.GradientTape() as tape:
            alpha_loss = -tf.reduce_mean(log_alpha * entropy_excess)
        _descend(self.alpha_optimizer, tape, alpha_loss, [log_alpha])
        return tf.stack([critic_loss, actor_loss, alpha_loss, alpha, -tf.reduce_mean(log_probs)])

    def _update_targets(self) -> None:
        tau = self.config.tau
        pairs = zip(self.target_critic.trainable_weights, self.critic.trainable_weights, strict=True)
        for target, online in pairs:
            target.assign(tau * online + (1.0 - tau) * target)


def _action_size(action_space: gym.spaces.Box) -> int:
    return int(np.prod(action_space.shape))


def _adam(learning_rate: float, variables: list) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)
    return optimizer


def _descend(
    optimizer: keras.optimizers.Optimizer, tape: tf.GradientTape, loss: tf.Tensor, variables: list
) -> None:
    gradients = tape.gradient(loss, variables)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))

"""Twin Delayed DDPG (Fujimoto et al., 2018): a deterministic actor for bounded Box actions.

Three changes to DDPG against its overestimation of values:

    twin critics          y = R + gamma^n (1 - terminated) min_i Qtarget_i(s', a')
    target smoothing      a' = clip(tanh(target_actor(s')) + clip(sigma_t N(0, 1), -c, c), -1, 1)
    delayed actor         every `policy_delay` critic steps the actor ascends Q1(s, tanh(actor(s)))
                          and the target actor and critics move tau of the way (Polyak)

Differences from the paper: actions are squashed by tanh inside the actor and the critics take
them in [-1, 1]^d (as SAC's do), exploration noise `exploration_noise_std` is relative to half
the action range, and n-step returns and prioritized replay are available (algorithm.py).

The first `learning_starts` environment steps take uniform random actions, then the actor's
action plus Gaussian noise. The policy network is the actor with the noise's standard deviation
(in action units) appended, read as a "noisy_deterministic" distribution: greedy acting,
evaluation and export use the actor's action; stochastic acting adds the same noise training
explored with, drawn from a seeded generator in every backend.

Tuned defaults ship in gymserve/agents/training/configs/td3_<env>.json. On Pendulum-v1 (64x64 networks,
10k random steps, then one gradient step per env step) greedy 10-episode evaluations first reach
-200 at 14k, 14k, 17k, 18k and 18k steps for seeds 0-4 and end at -147, -171, -183, -191 and
-190 after 20k (about 40 s each on two free cores). On gymserve/CartPoleContinuousBullet-v0 (reward 1
per step until the pole falls or the cart leaves its track, 200 steps) TD3 and DDPG explore with
noise of 0.3 of the force range: with 0.1 the seed-0 TD3 greedy evaluations stayed below 90 for
20k steps; with 0.3 they reach 200 at 22k (TD3) and 199 at 18k (DDPG).
"""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field

from gymserve.agents.networks import (
    BroadcastConstant,
    NumpyForward,
    action_value_critics,
    deterministic_actor,
)
from gymserve.agents.off_policy.algorithm import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    apply_gradients,
    build_adam,
    unit_box_actions,
)
from gymserve.policies.actor_policy import ActorPolicy
from gymserve.policies.base import uniform_actions
from gymserve.policies.distributions import NoisyDeterministic, distribution_from_outputs


class DeterministicActorConfig(OffPolicyConfig):
    """Hyperparameters of the deterministic actor-critic algorithms (TD3, DDPG); SB3's defaults."""

    actor_learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate of the actor.")
    critic_learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate of the critics.")
    actor_hidden_sizes: tuple[int, ...] = Field((400, 300), description="Units of the actor's hidden layers.")
    critic_hidden_sizes: tuple[int, ...] = Field(
        (400, 300), description="Units of each critic's hidden layers."
    )
    activation: str = Field("relu", description="Activation of the hidden layers.")
    normalize_observations: bool = Field(
        False, description="Standardize observations with running statistics."
    )
    learning_starts: int = Field(
        10_000, ge=0, description="Environment steps of uniform random actions before learning starts."
    )
    exploration_noise_std: float = Field(
        0.1, ge=0, description="Std of the Gaussian exploration noise, relative to half the action range."
    )


class TD3Config(DeterministicActorConfig):
    """TD3 hyperparameters: the paper's smoothing and delay."""

    policy_delay: int = Field(
        2, gt=0, description="Critic steps per actor step; the targets move with the actor."
    )
    target_policy_noise: float = Field(
        0.2, ge=0, description="Std of the target smoothing noise, relative to half the action range."
    )
    target_noise_clip: float = Field(0.5, ge=0, description="The smoothing noise is clipped to +-this.")


class TD3(OffPolicyAlgorithm):
    """TD3 for bounded Box action spaces; DDPG is the same algorithm without its three changes."""

    name = "td3"
    config_class = TD3Config
    action_spaces = (gym.spaces.Box,)
    policy_distribution = "noisy_deterministic"
    metric_names = ("critic_loss", "actor_loss")

    def __init__(
        self,
        config: DeterministicActorConfig,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
    ):
        super().__init__(config, observation_space, action_space)
        if not action_space.is_bounded("both"):
            raise ValueError(
                f"{self.name} squashes actions into a bounded Box; {action_space} is not bounded"
            )
        self.config: DeterministicActorConfig = config
        self.critic_count, self.policy_delay, self.target_noise, self.target_noise_clip = self.target_rules()
        actor_args = (
            observation_space,
            action_space,
            config.actor_hidden_sizes,
            config.activation,
            config.normalize_observations,
        )
        self.actor = deterministic_actor(*actor_args)
        self.target_actor = deterministic_actor(*actor_args)
        self.target_actor.set_weights(self.actor.get_weights())
        shared = self.actor.get_layer("observation_normalization") if config.normalize_observations else None
        critic_args = (observation_space, action_space, config.critic_hidden_sizes, config.activation, shared)
        self.critic = action_value_critics(*critic_args, name="critic", count=self.critic_count)
        self.target_critic = action_value_critics(*critic_args, name="target_critic", count=self.critic_count)
        self.target_critic.set_weights(self.critic.get_weights())
        self.actor_optimizer = build_adam(config.actor_learning_rate, self.actor.trainable_variables)
        self.critic_optimizer = build_adam(config.critic_learning_rate, self.critic.trainable_variables)
        self.half_range = ((action_space.high - action_space.low) / 2.0).astype(np.float32)
        self.noise_std = (self.acting_noise_scale() * self.half_range).reshape(-1)
        pre_tanh_action = self.actor.outputs[0]
        noise = BroadcastConstant(self.noise_std.tolist(), name="exploration_noise_std")(pre_tanh_action)
        outputs = keras.layers.Concatenate(name="action_noise_std")([pre_tanh_action, noise])
        self._policy_network = keras.Model(self.actor.inputs, outputs, name="noisy_actor")

    def target_rules(self) -> tuple[int, int, float, float]:
        """Critics, critic steps per actor step, target smoothing noise std and its clip."""
        config = self.config
        return 2, config.policy_delay, config.target_policy_noise, config.target_noise_clip

    def acting_noise_scale(self) -> float:
        """The std of the exploration noise relative to half the action range, as exported."""
        return self.config.exploration_noise_std

    def networks(self) -> dict[str, keras.Model]:
        return {
            "actor": self.actor,
            "target_actor": self.target_actor,
            "critic": self.critic,
            "target_critic": self.target_critic,
        }

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"actor": self.actor_optimizer, "critic": self.critic_optimizer}

    def policy_network(self) -> keras.Model:
        return self._policy_network

    def evaluation_policy(self) -> ActorPolicy:
        """The policy on a numpy copy of the actor's current weights: an evaluation acts thousands
        of times, and a TensorFlow call costs far more than a small actor's arithmetic."""
        try:
            actor = NumpyForward(self.actor)
        except TypeError:  # a layer or activation the numpy copy does not compute
            return self.policy()
        noise_std = self.noise_std.astype(np.float32)

        def outputs(observations: np.ndarray) -> np.ndarray:
            pre_tanh_action = actor(observations)
            noise = np.broadcast_to(noise_std, pre_tanh_action.shape)
            return np.concatenate([pre_tanh_action, noise], axis=1)

        return ActorPolicy(
            self._policy_network,
            self.observation_space,
            self.action_space,
            distribution=self.policy_distribution,
            forward=outputs,
        )

    @classmethod
    def action_spec(cls, action_space: gym.spaces.Box) -> tuple[tuple[int, ...], type]:
        return (int(np.prod(action_space.shape)),), np.float32  # in [-1, 1]

    def stored_actions(self, actions: np.ndarray) -> np.ndarray:
        return unit_box_actions(actions, self.action_space)

    def explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        """Uniform random actions until learning starts, then the actor's plus exploration noise."""
        if total_steps < self.config.learning_starts:
            return uniform_actions(self.action_space, len(observations), self.rng)
        return self.noisy_actions(self.acting_distribution(observations))

    def acting_distribution(self, observations: np.ndarray) -> NoisyDeterministic:
        outputs = self.acting_outputs(observations)
        return distribution_from_outputs(outputs, self.action_space, "noisy_deterministic")

    def noisy_actions(self, distribution: NoisyDeterministic) -> np.ndarray:
        """The actions to explore with: a sample of the exported stochastic policy."""
        return distribution.sample(self.rng)

    def extra_minibatch_arrays(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """Standard normal noise for target policy smoothing."""
        if self.target_noise == 0:
            return {}
        size = int(np.prod(self.action_space.shape))
        return {"target_noise": self.rng.standard_normal((*shape, size), dtype=np.float32)}

    @property
    def gradient_step_counter(self) -> tf.Variable:
        return self.critic_optimizer.iterations

    @property
    def target_update_period(self) -> int:
        return self.policy_delay

    def target_pairs(self) -> list[tuple[keras.Model, keras.Model]]:
        return [(self.target_actor, self.actor), (self.target_critic, self.critic)]

    def gradient_step(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        observations, next_observations = batch["observations"], batch["next_observations"]
        next_actions = tf.tanh(self.target_actor(next_observations))
        if self.target_noise > 0:
            smoothing = tf.clip_by_value(
                self.target_noise * batch["target_noise"], -self.target_noise_clip, self.target_noise_clip
            )
            next_actions = tf.clip_by_value(next_actions + smoothing, -1.0, 1.0)
        next_values = tf.reduce_min(self.target_critic([next_observations, next_actions]), axis=1)
        targets = tf.stop_gradient(batch["returns"] + batch["discounts"] * next_values)
        with tf.GradientTape() as tape:
            q_values = self.critic([observations, batch["actions"]], training=True)
            squared_errors = tf.reduce_sum(tf.square(q_values - targets[:, None]), axis=1)
            critic_loss = tf.reduce_mean(batch["weights"] * squared_errors)
        apply_gradients(self.critic_optimizer, tape, critic_loss, self.critic.trainable_variables)
        td_errors = tf.reduce_mean(tf.abs(q_values - targets[:, None]), axis=1)

        def actor_loss(training: bool) -> tf.Tensor:
            actions = tf.tanh(self.actor(observations, training=training))
            return -tf.reduce_mean(self.critic([observations, actions])[:, 0])

        def actor_step() -> tf.Tensor:
            with tf.GradientTape() as tape:
                loss = actor_loss(training=True)
            apply_gradients(self.actor_optimizer, tape, loss, self.actor.trainable_variables)
            return loss

        due = tf.equal(self.critic_optimizer.iterations % self.policy_delay, 0)
        loss = tf.cond(due, actor_step, lambda: actor_loss(training=False))
        return tf.stack([critic_loss, loss]), td_errors

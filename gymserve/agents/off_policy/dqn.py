"""Deep Q-Networks (Mnih et al., 2015) with double Q-learning, dueling heads and n-step returns.

Differences from the paper: double Q-learning (van Hasselt et al., 2016) by default, optional
dueling heads (Wang et al., 2016) and prioritized replay (Schaul et al., 2016), n-step returns,
Adam instead of RMSprop, and low-dimensional observations instead of frames. One iteration acts
`train_freq` steps epsilon-greedily (epsilon decays linearly over `exploration_steps`
environment steps) and stores the transitions, then takes `gradient_steps` Huber-loss steps in a
single compiled TensorFlow call (the off-policy skeleton, algorithm.py). The target network
follows the online network every `target_update_interval` gradient steps, by copy (tau = 1) or
Polyak averaging. Acting uses a numpy copy of the Q-network, refreshed after each update.

TD target of a transition starting at t, with n-step returns (n = `bootstrap_horizon`) cut at the
episode's end:
    y = r_t + ... + gamma^(m-1) r_(t+m-1) + gamma^m (1 - terminated) Q_target(s_(t+m), argmax_a Q(s_(t+m), a))
(plain DQN takes max_a Q_target instead of the double-Q choice).

Tuned defaults for gymserve/CartPole-v1 ship in gymserve/agents/training/configs/dqn_CartPole-v1.json: a
replay ratio of two gradient steps per environment step and 3-step returns solve it in a median
of 10k steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.networks import NumpyForward, bfloat16_compute, q_network
from gymserve.agents.off_policy.algorithm import (
    OffPolicyAlgorithm,
    OffPolicyConfig,
    apply_gradients,
    build_adam,
)
from gymserve.agents.training.config import (
    IMAGE_ENCODER_DESCRIPTION,
    MIXED_PRECISION_DESCRIPTION,
    ImageEncoder,
    check_mixed_precision,
)
from gymserve.agents.training.schedules import linear_schedule


class DQNConfig(OffPolicyConfig):
    """DQN hyperparameters (names follow Stable-Baselines3 where they exist)."""

    renamed_fields: ClassVar[dict[str, str]] = {"n_step": "bootstrap_horizon", "target_update_tau": "tau"}

    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    hidden_sizes: tuple[int, ...] = Field((64, 64), description="Units of the Q-network's hidden layers.")
    activation: str = Field("relu", description="Activation of the hidden layers.")
    normalize_observations: bool = Field(
        False, description="Standardize observations with running statistics."
    )
    image_encoder: ImageEncoder | None = Field(None, description=IMAGE_ENCODER_DESCRIPTION)
    mixed_precision: bool = Field(False, description=MIXED_PRECISION_DESCRIPTION)
    dueling: bool = Field(
        False, description="Split the head into a state value and action advantages (Wang et al., 2016)."
    )
    buffer_size: int = Field(50_000, gt=0, description="Replay buffer capacity in transitions.")
    batch_size: int = Field(64, gt=0, description="Transitions per gradient step.")
    train_freq: int = Field(4, gt=0, description="Runner steps (each steps every env) per round.")
    double_q: bool = Field(
        True, description="Choose the bootstrap action with the online network (double DQN)."
    )
    target_update_interval: int = Field(500, gt=0, description="Gradient steps between target updates.")
    tau: float = Field(
        1.0, gt=0, le=1, description="1 copies the online network into the target; less averages."
    )
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="Epsilon at step 0.")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="Epsilon after the decay.")
    exploration_steps: int = Field(10_000, ge=0, description="Environment steps of linear epsilon decay.")
    huber_delta: float = Field(1.0, gt=0, description="TD errors beyond this are penalised linearly.")
    max_grad_norm: float | None = Field(10.0, gt=0, description="Clip gradients to this global norm.")
    jit_compile: bool = Field(
        True,
        description=(
            "Compile the gradient steps with XLA (3x faster for MLPs, about 10x slower for CNNs on CPU)."
        ),
    )

    @model_validator(mode="after")
    def _mixed_precision_needs_images(self) -> DQNConfig:
        check_mixed_precision(self.image_encoder, self.mixed_precision)
        return self


def td_targets(
    returns: tf.Tensor,
    discounts: tf.Tensor,
    next_q_online: tf.Tensor,
    next_q_target: tf.Tensor,
    double_q: bool,
) -> tf.Tensor:
    """returns + discounts * the target network's value of the next observation's chosen action.

    Double Q-learning chooses the action with the online network; plain DQN takes the target's max.
    """
    if double_q:
        next_values = tf.gather(next_q_target, tf.argmax(next_q_online, axis=1), batch_dims=1)
    else:
        next_values = tf.reduce_max(next_q_target, axis=1)
    return returns + discounts * next_values


class DQN(OffPolicyAlgorithm):
    """Double DQN for Discrete action spaces; the Q-values serve as the policy's logits."""

    name = "dqn"
    config_class = DQNConfig
    action_spaces = (gym.spaces.Discrete,)
    metric_names = ("loss",)

    def __init__(
        self, config: DQNConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Discrete
    ):
        super().__init__(config, observation_space, action_space)
        self.config: DQNConfig = config
        network_args = (
            observation_space,
            action_space,
            config.hidden_sizes,
            config.activation,
            config.normalize_observations,
            config.dueling,
        )
        self.q_network = q_network(*network_args, name="q_network", image_encoder=config.image_encoder)
        self.target_network = q_network(
            *network_args, name="target_q_network", image_encoder=config.image_encoder
        )
        self.target_network.set_weights(self.q_network.get_weights())
        self.optimizer = build_adam(config.learning_rate, self.q_network.trainable_variables)
        # Acting one observation at a time is far cheaper in numpy (networks.NumpyForward).
        numpy_forward = not (config.dueling or config.image_encoder)
        self._greedy_q_values = NumpyForward(self.q_network) if numpy_forward else None
        self._epsilon = config.exploration_initial_eps

    def networks(self) -> dict[str, keras.Model]:
        return {"q": self.q_network, "target_q": self.target_network}

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"q": self.optimizer}

    def policy_network(self) -> keras.Model:
        return self.q_network

    @classmethod
    def action_spec(cls, action_space: gym.spaces.Discrete) -> tuple[tuple[int, ...], type]:
        return (), np.int64

    def stored_actions(self, actions: np.ndarray) -> np.ndarray:
        return actions - int(self.action_space.start)

    def epsilon(self, step: int) -> float:
        """The exploration probability after `step` environment steps."""
        config = self.config
        return linear_schedule(
            config.exploration_initial_eps, config.exploration_final_eps, config.exploration_steps, step
        )

    def explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        """Epsilon-greedy actions; the Q-network runs only when some env acts greedily, which early
        in a run, with epsilon near 1, spares most acting steps their forward pass."""
        self._epsilon = self.epsilon(total_steps)
        explore = self.rng.random(len(observations)) < self._epsilon
        actions = np.zeros(len(observations), np.int64)
        if not explore.all():
            q_values = (
                self.acting_outputs(observations)
                if self._greedy_q_values is None
                else self._greedy_q_values(observations)
            )
            actions = np.argmax(q_values, axis=1)
        if explore.any():
            actions[explore] = self.rng.integers(self.action_space.n, size=int(explore.sum()))
        return actions + int(self.action_space.start)

    def exploration_metrics(self) -> dict[str, float]:
        return {"dqn/epsilon": self._epsilon}

    def after_update(self) -> None:
        if self._greedy_q_values is not None:
            self._greedy_q_values.sync()

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state(arrays)
        self.after_update()

    def restore(self, directory: Path, variables_only: bool = False) -> None:
        super().restore(directory, variables_only)
        self.after_update()

    @property
    def gradient_step_counter(self) -> tf.Variable:
        return self.optimizer.iterations

    @property
    def target_update_period(self) -> int:
        return self.config.target_update_interval

    def target_pairs(self) -> list[tuple[keras.Model, keras.Model]]:
        return [(self.target_network, self.q_network)]

    def gradient_step(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        mixed = self.config.mixed_precision
        with bfloat16_compute(self.q_network, mixed), bfloat16_compute(self.target_network, mixed):
            return self._gradient_step(batch)

    def _gradient_step(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        next_observations = batch["next_observations"]
        next_q_online = self.q_network(next_observations, training=False) if self.config.double_q else None
        next_q_target = self.target_network(next_observations, training=False)
        targets = tf.stop_gradient(
            td_targets(
                batch["returns"], batch["discounts"], next_q_online, next_q_target, self.config.double_q
            )
        )
        with tf.GradientTape() as tape:
            q_values = tf.gather(
                self.q_network(batch["observations"], training=True), batch["actions"], batch_dims=1
            )
            errors = q_values - targets
            loss = tf.reduce_mean(batch["weights"] * _huber(errors, self.config.huber_delta))
        variables = self.q_network.trainable_variables
        apply_gradients(self.optimizer, tape, loss, variables, self.config.max_grad_norm)
        return tf.stack([loss]), tf.abs(errors)


def _huber(errors: tf.Tensor, delta: float) -> tf.Tensor:
    absolute = tf.abs(errors)
    quadratic = tf.minimum(absolute, delta)
    return 0.5 * quadratic**2 + delta * (absolute - quadratic)

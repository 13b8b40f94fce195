"""Deep Q-Networks (Mnih et al., 2015) with double Q-learning and optional n-step returns.

One iteration acts `train_freq` steps epsilon-greedily (epsilon decays linearly over
`exploration_steps` environment steps) and stores the transitions, then takes `gradient_steps`
Huber-loss steps on uniform minibatches in a single compiled TensorFlow call. The target network
follows the online network every `target_update_interval` gradient steps, by copy (tau = 1) or
Polyak averaging. Acting uses a numpy copy of the Q-network, refreshed after each update.

TD target of a transition starting at t, with n-step returns cut at the episode's end:
    y = r_t + ... + gamma^(m-1) r_(t+m-1) + gamma^m (1 - terminated) Q_target(s_(t+m), argmax_a Q(s_(t+m), a))
(plain DQN takes max_a Q_target instead of the double-Q choice).

Tuned defaults for gymserve/CartPole-v1 ship in configs/dqn_CartPole-v1.json: a replay ratio of
two gradient steps per environment step and 3-step returns solve it in a median of 10k steps.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.config import TrainingConfig
from gymserve.agents.env_runner import EnvRunner, Transition
from gymserve.agents.networks import NumpyForward, q_network
from gymserve.agents.replay_buffer import ReplayBuffer

_REPLAY_PREFIX = "replay_"


class DQNConfig(TrainingConfig):
    """DQN hyperparameters (names follow Stable-Baselines3 where they exist)."""

    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    hidden_sizes: tuple[int, ...] = Field((64, 64), description="Units of the Q-network's hidden layers.")
    activation: str = Field("relu", description="Activation of the hidden layers.")
    normalize_observations: bool = Field(
        False, description="Standardize observations with running statistics."
    )
    buffer_size: int = Field(50_000, gt=0, description="Replay buffer capacity in transitions.")
    learning_starts: int = Field(
        1_000, ge=0, description="Environment steps of experience before learning starts."
    )
    batch_size: int = Field(64, gt=0, description="Transitions per gradient step.")
    train_freq: int = Field(4, gt=0, description="Runner steps (each steps every env) per round.")
    gradient_steps: int = Field(1, gt=0, description="Gradient steps per round.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    n_step: int = Field(1, gt=0, description="Rewards summed before bootstrapping (cut at episode ends).")
    double_q: bool = Field(
        True, description="Choose the bootstrap action with the online network (double DQN)."
    )
    target_update_interval: int = Field(500, gt=0, description="Gradient steps between target updates.")
    target_update_tau: float = Field(
        1.0, gt=0, le=1, description="1 copies the online network; less averages."
    )
    exploration_initial_eps: float = Field(1.0, ge=0, le=1, description="Epsilon at step 0.")
    exploration_final_eps: float = Field(0.05, ge=0, le=1, description="Epsilon after the decay.")
    exploration_steps: int = Field(10_000, ge=0, description="Environment steps of linear epsilon decay.")
    huber_delta: float = Field(1.0, gt=0, description="TD errors beyond this are penalised linearly.")
    max_grad_norm: float | None = Field(10.0, gt=0, description="Clip gradients to this global norm.")
    jit_compile: bool = Field(
        True, description="Compile the gradient steps with XLA (3x faster for small nets)."
    )


def linear_schedule(initial: float, final: float, duration: int, step: int) -> float:
    """`initial` moving linearly to `final` over `duration` steps, then `final`."""
    if duration <= 0:
        return final
    fraction = min(step / duration, 1.0)
    return initial + fraction * (final - initial)


def n_step_targets(
    rewards: np.ndarray, terminated: np.ndarray, mask: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The discounted reward sums and bootstrap discounts of windows of consecutive transitions.

    `rewards`, `terminated` and `mask` are (batch, n); `mask` marks the transitions that belong
    to the window (a prefix: the window ends at its episode's end or at the newest transition).
    Returns the reward sums, the factor gamma^m (0 if the last transition terminated) for the
    bootstrap value, and the index m - 1 of the last transition whose next observation it uses.
    """
    mask = np.asarray(mask, bool)
    steps = mask.shape[1]
    powers = gamma ** np.arange(steps, dtype=np.float64)
    returns = (np.where(mask, rewards, 0.0) * powers).sum(axis=1)
    last = mask.sum(axis=1) - 1
    rows = np.arange(len(mask))
    discounts = gamma ** (last + 1.0) * (1.0 - np.asarray(terminated, bool)[rows, last])
    return returns.astype(np.float32), discounts.astype(np.float32), last


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


class DQN(Algorithm):
    """Double DQN for Discrete action spaces; the Q-values serve as the policy's logits."""

    name = "dqn"
    config_class = DQNConfig
    action_spaces = (gym.spaces.Discrete,)

    def __init__(
        self, config: DQNConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Discrete
    ):
        super().__init__(config, observation_space, action_space)
        self.config: DQNConfig = config
        network_args = (observation_space, action_space, config.hidden_sizes, config.activation)
        self.q_network = q_network(*network_args, config.normalize_observations, name="q_network")
        self.target_network = q_network(*network_args, config.normalize_observations, name="target_q_network")
        self.target_network.set_weights(self.q_network.get_weights())
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.optimizer.build(self.q_network.trainable_variables)
        self.replay = ReplayBuffer(
            {
                "observation": (observation_space.shape, np.float32),
                "action": ((), np.int64),
                "reward": ((), np.float32),
                "next_observation": (observation_space.shape, np.float32),
                "terminated": ((), np.bool_),
                "done": ((), np.bool_),
            },
            config.buffer_size,
        )
        self._greedy_q_values = NumpyForward(self.q_network)
        steps_and_batch = [config.gradient_steps, config.batch_size]
        observation_spec = tf.TensorSpec([*steps_and_batch, *observation_space.shape], tf.float32)
        signature = [
            observation_spec,
            tf.TensorSpec(steps_and_batch, tf.int64),
            tf.TensorSpec(steps_and_batch, tf.float32),
            tf.TensorSpec(steps_and_batch, tf.float32),
            observation_spec,
        ]
        self._update = tf.function(
            self._gradient_steps, input_signature=signature, jit_compile=config.jit_compile, autograph=False
        )

    def networks(self) -> dict[str, keras.Model]:
        return {"q": self.q_network, "target_q": self.target_network}

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"q": self.optimizer}

    def policy_network(self) -> keras.Model:
        return self.q_network

    def epsilon(self, step: int) -> float:
        """The exploration probability after `step` environment steps."""
        config = self.config
        return linear_schedule(
            config.exploration_initial_eps, config.exploration_final_eps, config.exploration_steps, step
        )

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        for _ in range(self.config.train_freq):
            epsilon = self.epsilon(runner.total_steps)
            self._store(runner.step(self._explore(runner.observations, epsilon)))
        metrics = {"dqn/epsilon": epsilon}
        if self.replay.num_frames >= max(self.config.learning_starts, 1):
            metrics["dqn/loss"] = float(self._update(*self._sample_minibatches()))
            self._greedy_q_values.sync()
        return metrics

    def state(self) -> dict[str, np.ndarray]:
        return {_REPLAY_PREFIX + name: array for name, array in self.replay.gather_all().items()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.replay.load({name.removeprefix(_REPLAY_PREFIX): array for name, array in arrays.items()})
        self._greedy_q_values.sync()

    def restore(self, directory: Path, variables_only: bool = False) -> None:
        super().restore(directory, variables_only)
        self._greedy_q_values.sync()

    def _explore(self, observations: np.ndarray, epsilon: float) -> np.ndarray:
        actions = np.argmax(self._greedy_q_values(observations), axis=1)
        explore = self.rng.random(len(actions)) < epsilon
        if explore.any():
            actions[explore] = self.rng.integers(self.action_space.n, size=int(explore.sum()))
        return actions + int(self.action_space.start)

    def _store(self, transition: Transition) -> None:
        self.replay.add_batch(
            {
                "observation": transition.observations,
                "action": transition.actions - int(self.action_space.start),
                "reward": transition.rewards,
                "next_observation": transition.next_observations,
                "terminated": transition.terminated,
                "done": transition.dones,
            }
        )

    def _sample_minibatches(self) -> tuple[np.ndarray, ...]:
        """(gradient_steps, batch_size, ...) observations, actions, returns, discounts, next observations."""
        config = self.config
        count = config.gradient_steps * config.batch_size
        if config.n_step == 1:
            batch = self.replay.sample(count, self.rng)
            returns = batch["reward"]
            discounts = (config.gamma * (1.0 - batch["terminated"])).astype(np.float32)
            next_observations = batch["next_observation"]
            observations, actions = batch["observation"], batch["action"]
        else:
            windows, mask = self.replay.sample_episode_windows(count, self.rng, config.n_step)
            returns, discounts, last = n_step_targets(
                windows["reward"], windows["terminated"], mask, config.gamma
            )
            next_observations = windows["next_observation"][np.arange(count), last]
            observations, actions = windows["observation"][:, 0], windows["action"][:, 0]
        shape = (config.gradient_steps, config.batch_size)
        return tuple(
            array.reshape(shape + array.shape[1:])
            for array in (observations, actions, returns, discounts, next_observations)
        )

    def _gradient_steps(self, observations, actions, returns, discounts, next_observations) -> tf.Tensor:
        """One gradient step per leading index; returns their mean loss.

        Written with explicit tf.while_loop / tf.cond so it traces without autograph, which
        would otherwise spend seconds converting Keras internals.
        """

        def step(index: tf.Tensor, total_loss: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            loss = self._gradient_step(
                observations[index],
                actions[index],
                returns[index],
                discounts[index],
                next_observations[index],
            )
            due = tf.equal(self.optimizer.iterations % self.config.target_update_interval, 0)
            updated = tf.cond(due, self._update_target, lambda: tf.constant(False))
            with tf.control_dependencies([updated]):
                return index + 1, total_loss + loss

        steps = tf.shape(observations)[0]
        _, total_loss = tf.while_loop(
            lambda index, _: index < steps, step, (tf.constant(0), tf.constant(0.0))
        )
        return total_loss / tf.cast(steps, tf.float32)

    def _gradient_step(self, observations, actions, returns, discounts, next_observations) -> tf.Tensor:
        next_q_online = self.q_network(next_observations, training=False) if self.config.double_q else None
        next_q_target = self.target_network(next_observations, training=False)
        targets = tf.stop_gradient(
            td_targets(returns, discounts, next_q_online, next_q_target, self.config.double_q)
        )
        with tf.GradientTape() as tape:
            q_values = tf.gather(self.q_network(observations, training=True), actions, batch_dims=1)
            loss = tf.reduce_mean(_huber(q_values - targets, self.config.huber_delta))
        variables = self.q_network.trainable_variables
        gradients = tape.gradient(loss, variables)
        if self.config.max_grad_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return loss

    def _update_target(self) -> tf.Tensor:
        """Move the target network to the online one; returns True once the assignments ran."""
        tau = self.config.target_update_tau
        for target, online in zip(self.target_network.weights, self.q_network.weights, strict=True):
            if online.trainable and tau < 1.0:
                target.assign(tau * online + (1.0 - tau) * target)
            else:
                target.assign(online)
        return tf.constant(True)


def _huber(errors: tf.Tensor, delta: float) -> tf.Tensor:
    absolute = tf.abs(errors)
    quadratic = tf.minimum(absolute, delta)
    return 0.5 * quadratic**2 + delta * (absolute - quadratic)

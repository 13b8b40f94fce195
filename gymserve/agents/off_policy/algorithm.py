"""The off-policy skeleton: a replay buffer, n-step targets and compiled gradient steps (DQN, SAC, TD3, DDPG).

One iteration of every off-policy algorithm is the same loop:

    for train_freq runner steps: act with `explore` and store the transitions in the replay buffer
    once learning_starts steps are stored:
        draw gradient_steps minibatches of windows (uniformly, or by priority), turn each into an
        n-step TD target's reward sum and bootstrap discount (n = bootstrap_horizon)
        run the gradient steps in one compiled TensorFlow call, moving the target networks toward
        the online ones by Polyak averaging (tau) every `target_update_period` gradient steps;
        the same call returns the acting network's outputs for the current observations
        with prioritized replay, the TD errors become the windows' new priorities

`sample_experience()` draws one round's minibatches and `train(experience)` runs its gradient
steps: the two halves of the round, for a caller's own loop (TF-Agents' `agent.train`).

A subclass supplies the replay fields of its actions (`action_spec`, `stored_actions`), how it
explores, one gradient step (`gradient_step`, returning its metrics and per-sample TD errors),
the (target, online) network pairs and the optimizer whose step count times target updates.
Every minibatch carries importance weights (1 with uniform replay) that scale the per-sample
losses. All minibatches of an iteration are drawn before its first gradient step, so with
prioritized replay their priorities are updated after the last one.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.fused_adam import FusedAdam
from gymserve.agents.off_policy.n_step import n_step_targets
from gymserve.agents.off_policy.packed_arrays import PackedLayout
from gymserve.agents.off_policy.prioritized_replay import PrioritizedReplayBuffer
from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.agents.training.config import TrainingConfig
from gymserve.agents.training.env_runner import EnvRunner, Transition
from gymserve.agents.training.schedules import linear_schedule
from gymserve.policies.signatures import observation_dtype

if TYPE_CHECKING:
    from gymserve.agents.training.actor_learner.collect_policy import CollectPolicy

REPLAY_PREFIX = "replay_"
ACTING_OUTPUTS_FIELDS = ("acting_observations", "acting_outputs")  # the last update's, checkpointed
MINIBATCH_FIELDS = ("observations", "actions", "returns", "discounts", "next_observations", "weights")


class OffPolicyConfig(TrainingConfig):
    """Replay and update settings shared by the off-policy algorithms (SB3's names where they exist)."""

    renamed_fields: ClassVar[dict[str, str]] = {"n_step": "bootstrap_horizon"}

    buffer_size: int = Field(1_000_000, gt=0, description="Replay buffer capacity in transitions.")
    learning_starts: int = Field(
        1_000, ge=0, description="Environment steps of experience stored before learning starts."
    )
    batch_size: int = Field(256, gt=0, description="Transitions per gradient step.")
    train_freq: int = Field(1, gt=0, description="Runner steps (each steps every env) per round.")
    gradient_steps: int = Field(1, gt=0, description="Gradient steps per round.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    bootstrap_horizon: int = Field(
        1,
        gt=0,
        description="n of n-step TD targets: rewards summed before bootstrapping from a target "
        "network (cut at episode ends). Formerly `n_step`.",
    )
    tau: float = Field(0.005, gt=0, le=1, description="Polyak factor of target updates; 1 copies.")
    jit_compile: bool = Field(True, description="Compile the gradient steps with XLA.")
    prioritized_replay: bool = Field(
        False, description="Draw transitions in proportion to their last |TD error| (Schaul et al., 2016)."
    )
    priority_exponent: float = Field(
        0.6, ge=0, description="alpha: priorities are raised to this power (0 is uniform)."
    )
    importance_weight_exponent: float = Field(
        0.4, ge=0, le=1, description="beta at step 0 of the importance weights (N P(i))^-beta."
    )
    importance_weight_annealing_steps: int | None = Field(
        None, gt=0, description="Environment steps over which beta rises linearly to 1; None: max_steps."
    )
    priority_epsilon: float = Field(1e-6, gt=0, description="Added to |TD error| so no priority is 0.")
    replay_frames_once: bool | None = Field(
        None,
        description="Store stacked image observations as single frames, each once (a quarter of the "
        "memory or less for 4 stacked frames, no copy for next observations); None: for uint8 "
        "observations of 3 or more dimensions while each next observation is the observation shifted "
        "by one frame along the first, whole observations from the first that is not; true refuses those.",
    )


def build_adam(learning_rate: float, variables: list[tf.Variable]) -> keras.optimizers.Optimizer:
    """An Adam optimizer with its slots built, so checkpoints and compiled steps see them from the start."""
    optimizer = FusedAdam(learning_rate)
    optimizer.build(variables)
    return optimizer


def apply_gradients(
    optimizer: keras.optimizers.Optimizer,
    tape: tf.GradientTape,
    loss: tf.Tensor,
    variables: list[tf.Variable],
    max_grad_norm: float | None = None,
) -> None:
    """One optimizer step on `loss`, with the gradients clipped to `max_grad_norm` when given."""
    gradients = tape.gradient(loss, variables)
    if max_grad_norm is not None:
        gradients, _ = tf.clip_by_global_norm(gradients, max_grad_norm)
    optimizer.apply_gradients(zip(gradients, variables, strict=True))


def polyak_update(target: keras.Model, online: keras.Model, tau: float) -> None:
    """Move the trainable weights of `target` tau of the way to `online`'s; copy the others."""
    for target_weight, online_weight in zip(target.weights, online.weights, strict=True):
        if online_weight.trainable and tau < 1.0:
            target_weight.assign(tau * online_weight + (1.0 - tau) * target_weight)
        else:
            target_weight.assign(online_weight)


def unit_box_actions(actions: np.ndarray, action_space: gym.spaces.Box) -> np.ndarray:
    """Env actions of a bounded Box as (B, d) values in [-1, 1], as the critics take them."""
    low, high = action_space.low.reshape(-1), action_space.high.reshape(-1)
    actions = np.asarray(actions).reshape(len(actions), -1)
    return np.clip(2.0 * (actions - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


class OffPolicyAlgorithm(Algorithm):
    """Replay, n-step targets, prioritized sampling, compiled gradient steps and target updates."""

    config: OffPolicyConfig
    remote_collection = "transitions"
    metric_names: ClassVar[tuple[str, ...]]  # the values `gradient_step` returns, in order

    def __init__(
        self, config: OffPolicyConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space
    ):
        super().__init__(config, observation_space, action_space)
        # uint8 frames are stored as uint8 (a quarter of float32's memory); the network takes them as they are
        stored = self._stored_observation_dtype = observation_dtype(observation_space.dtype)
        spec = {
            "observation": (observation_space.shape, stored),
            "action": self.action_spec(action_space),
            "reward": ((), np.float32),
            "next_observation": (observation_space.shape, stored),
            "terminated": ((), np.bool_),
            "done": ((), np.bool_),
        }
        frames_once = config.replay_frames_once
        if frames_once is None:  # tried, and given up for whole observations at the first that is no stack
            frames_once = stored == np.uint8 and len(observation_space.shape) >= 3
        frame_stacks = [("observation", "next_observation")] if frames_once else []
        frames = {"frame_stacks": frame_stacks, "frame_stacks_fallback": config.replay_frames_once is None}
        if config.prioritized_replay:
            self.replay: ReplayBuffer = PrioritizedReplayBuffer(
                spec, config.buffer_size, config.priority_exponent, config.priority_epsilon, **frames
            )
        else:
            self.replay = ReplayBuffer(spec, config.buffer_size, **frames)
        # (observations, the acting network's outputs for them) as the last update computed them.
        self._next_outputs: tuple[np.ndarray, np.ndarray] | None = None
        self._compiled_update: tf.types.experimental.ConcreteFunction | None = None
        self._minibatch_layout: PackedLayout | None = None

    # What a subclass provides.

    @classmethod
    @abc.abstractmethod
    def action_spec(cls, action_space: gym.spaces.Space) -> tuple[tuple[int, ...], type]:
        """The (shape, dtype) of an action as the replay buffer stores it."""

    @abc.abstractmethod
    def stored_actions(self, actions: np.ndarray) -> np.ndarray:
        """The env actions of a transition as the replay buffer stores them."""

    @abc.abstractmethod
    def explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        """The env actions to take while training at `observations`."""

    @abc.abstractmethod
    def gradient_step(self, batch: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """One gradient step on a minibatch (MINIBATCH_FIELDS plus `extra_minibatch_arrays`).

        Returns the values of `metric_names` stacked, and each sample's |TD error| (B,).
        """

    @abc.abstractmethod
    def target_pairs(self) -> list[tuple[keras.Model, keras.Model]]:
        """(target, online) network pairs that `update_targets` moves together."""

    @property
    @abc.abstractmethod
    def gradient_step_counter(self) -> tf.Variable:
        """The step count (an optimizer's iterations) that times target updates."""

    @property
    @abc.abstractmethod
    def target_update_period(self) -> int:
        """Gradient steps between target updates."""

    def extra_minibatch_arrays(self, shape: tuple[int, int]) -> dict[str, np.ndarray]:
        """Arrays of shape (gradient_steps, batch_size, ...) drawn with `self.rng` after each sample."""
        return {}

    def exploration_metrics(self) -> dict[str, float]:
        """Metrics of the acting just done (e.g. epsilon)."""
        return {}

    def after_update(self) -> None:
        """Called after each round of gradient steps (e.g. to refresh a numpy copy of the weights)."""

    def acted(self, transition: Transition) -> None:
        """Called with each step taken with `explore`'s actions, where the envs run (in a Ray actor
        too), e.g. to restart exploration noise where episodes ended."""

    # What the skeleton provides.

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        for _ in range(self.config.train_freq):
            transition = runner.step(self.explore(runner.observations, runner.total_steps))
            self.acted(transition)
            self.store(transition)
        metrics = self.exploration_metrics()
        metrics.update(self.learn_if_ready(runner.observations, runner.total_steps))
        return metrics

    def learn_if_ready(self, observations: np.ndarray, total_steps: int) -> dict[str, float]:
        """A round of gradient steps (`learn`) once the replay is ready to learn from; else nothing."""
        return self.learn(observations, total_steps) if self.ready_to_learn() else {}

    def ready_to_learn(self) -> bool:
        """Whether the replay holds `learning_starts` transitions (and at least one)."""
        return self.replay.num_frames >= max(self.config.learning_starts, 1)

    def learn(self, observations: np.ndarray, total_steps: int) -> dict[str, float]:
        """One round of `gradient_steps` gradient steps; also computes the acting network's outputs at
        `observations` (where the envs act next) so that `explore` there needs no call of its own."""
        metrics, outputs = self._train(self.sample_experience(total_steps), observations)
        self._next_outputs = (observations, outputs)
        return metrics

    @property
    def collect_policy(self) -> CollectPolicy:
        from gymserve.agents.training.actor_learner.collect_policy import CollectPolicy

        return CollectPolicy(self)

    def sample_experience(self, total_steps: int = 0) -> dict[str, np.ndarray]:
        """One round's minibatches from the replay buffer, (gradient_steps, batch_size, ...) arrays
        by MINIBATCH_FIELDS name (plus "positions" with prioritized replay), for `train`.
        `total_steps` anneals the importance weights of prioritized replay."""
        if not self.ready_to_learn():
            raise ValueError(
                f"the replay buffer holds {self.replay.num_frames} transitions, fewer than learning_starts "
                f"({self.config.learning_starts}): collect more before sampling"
            )
        minibatches, positions = self._sample_minibatches(total_steps)
        return minibatches if positions is None else minibatches | {"positions": positions}

    def train(self, experience: dict[str, np.ndarray]) -> dict[str, float]:
        """One round of gradient steps on `experience` (what `sample_experience` returns)."""
        metrics, _ = self._train(experience, np.asarray(experience["observations"][0], np.float32))
        self._next_outputs = None
        return metrics

    def _train(
        self, experience: dict[str, np.ndarray], observations: np.ndarray
    ) -> tuple[dict[str, float], np.ndarray]:
        """The gradient steps on `experience`: metrics, and the acting outputs at `observations`."""
        minibatches = {name: array for name, array in experience.items() if name != "positions"}
        values, td_errors, outputs = self._update(minibatches, observations)
        if "positions" in experience:
            self.replay.update_priorities(experience["positions"], td_errors.numpy())
        self.after_update()
        metrics = {
            f"{self.name}/{name}": float(value)
            for name, value in zip(self.metric_names, values.numpy(), strict=True)
        }
        return metrics, outputs.numpy()

    def set_policy_weights(self, weights: list[np.ndarray]) -> None:
        super().set_policy_weights(weights)
        self._next_outputs = None
        self.after_update()

    def acting_outputs(self, observations: np.ndarray) -> np.ndarray:
        """The policy network's outputs at `observations`, from the last update when it computed them
        (the same array, or after a resume an equal one: a new computation could round differently)."""
        cached = self._next_outputs
        if cached is not None and (cached[0] is observations or np.array_equal(cached[0], observations)):
            return cached[1]
        return self.policy().network_outputs(observations)

    def importance_weight_exponent(self, total_steps: int) -> float:
        """beta after `total_steps` environment steps: annealed linearly to 1."""
        config = self.config
        duration = config.importance_weight_annealing_steps or config.max_steps
        return linear_schedule(config.importance_weight_exponent, 1.0, duration, total_steps)

    def update_targets(self) -> tf.Tensor:
        """Polyak-average every target network toward its online network; True once done."""
        for target, online in self.target_pairs():
            polyak_update(target, online, self.config.tau)
        return tf.constant(True)

    def state(self) -> dict[str, np.ndarray]:
        arrays = {
            REPLAY_PREFIX + name: array for name, array in self.replay.gather_all(frames_once=True).items()
        }
        if self._next_outputs is not None:
            arrays.update(zip(ACTING_OUTPUTS_FIELDS, self._next_outputs, strict=True))
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        replay = {
            name.removeprefix(REPLAY_PREFIX): array
            for name, array in arrays.items()
            if name.startswith(REPLAY_PREFIX)
        }
        self.replay.load(replay)
        if all(name in arrays for name in ACTING_OUTPUTS_FIELDS):
            self._next_outputs = tuple(arrays[name] for name in ACTING_OUTPUTS_FIELDS)

    def store(self, transition: Transition) -> None:
        """Add one step of every env to the replay buffer."""
        self.replay.add_batch(
            {
                "observation": transition.observations.astype(self._stored_observation_dtype, copy=False),
                "action": self.stored_actions(transition.actions),
                "reward": transition.rewards,
                "next_observation": transition.next_observations.astype(
                    self._stored_observation_dtype, copy=False
                ),
                "terminated": transition.terminated,
                "done": transition.dones,
            }
        )

    def _sample_minibatches(self, total_steps: int) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """(gradient_steps, batch_size, ...) arrays by name, and the positions drawn by priority (or None)."""
        config = self.config
        count = config.gradient_steps * config.batch_size
        positions = None
        if isinstance(self.replay, PrioritizedReplayBuffer):
            beta = self.importance_weight_exponent(total_steps)
            windows, mask, positions, weights = self.replay.sample_prioritized_windows(
                count, self.rng, config.bootstrap_horizon, beta
            )
        else:
            windows, mask = self.replay.sample_episode_windows(count, self.rng, config.bootstrap_horizon)
            weights = np.ones(count, np.float32)
        returns, discounts, last = n_step_targets(
            windows["reward"], windows["terminated"], mask, config.gamma
        )
        arrays = (
            windows["observation"][:, 0],
            windows["action"][:, 0],
            returns,
            discounts,
            windows["next_observation"][np.arange(count), last],
            weights,
        )
        shape = (config.gradient_steps, config.batch_size)
        minibatches = {
            name: array.reshape(shape + array.shape[1:])
            for name, array in zip(MINIBATCH_FIELDS, arrays, strict=True)
        }
        return minibatches | self.extra_minibatch_arrays(shape), positions

    def _update(
        self, minibatches: dict[str, np.ndarray], observations: np.ndarray
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`_learn_and_act`, traced once into a concrete function: its shapes never change, and
        calling a concrete function with tensors skips tf.function's per-call signature matching.
        The minibatch arrays travel packed, one tensor per dtype (packed_arrays.py)."""
        if self._compiled_update is None:
            layout = PackedLayout.of(minibatches, leading_dims=2)

            def learn_and_act(packed: list[tf.Tensor], observations: tf.Tensor) -> tuple[tf.Tensor, ...]:
                return self._learn_and_act(layout.unpack(packed), observations)

            function = tf.function(learn_and_act, jit_compile=self.config.jit_compile, autograph=False)
            self._compiled_update = function.get_concrete_function(
                layout.specs(), tf.TensorSpec((None, *self.observation_space.shape), tf.float32)
            )
            self._minibatch_layout = layout
        packed = self._minibatch_layout.pack(minibatches)
        return self._compiled_update(packed, tf.constant(observations))

    def _learn_and_act(
        self, minibatches: dict[str, tf.Tensor], observations: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The gradient steps, then the acting network's outputs at the current `observations`, so
        that choosing the next action needs no TensorFlow call of its own."""
        metrics, td_errors = self._gradient_steps(minibatches)
        return metrics, td_errors, self.policy_network()(observations, training=False)

    def _gradient_steps(self, minibatches: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """One gradient step per leading index; returns the mean of each metric and every |TD error|.

        Written with an explicit tf.while_loop / tf.cond so it traces without autograph, which
        would otherwise spend seconds converting Keras internals.
        """
        steps = tf.shape(minibatches["observations"])[0]

        def step(index: tf.Tensor, metrics: tf.TensorArray, errors: tf.TensorArray):
            values, td_errors = self.gradient_step(
                {name: array[index] for name, array in minibatches.items()}
            )
            due = tf.equal(self.gradient_step_counter % self.target_update_period, 0)
            updated = tf.cond(due, self.update_targets, lambda: tf.constant(False))
            with tf.control_dependencies([updated]):
                return index + 1, metrics.write(index, values), errors.write(index, td_errors)

        arrays = (tf.TensorArray(tf.float32, size=steps), tf.TensorArray(tf.float32, size=steps))
        _, metrics, errors = tf.while_loop(lambda index, *_: index < steps, step, (tf.constant(0), *arrays))
        return tf.reduce_mean(metrics.stack(), axis=0), errors.stack()

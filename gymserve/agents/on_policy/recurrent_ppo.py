"""PPO with an LSTM actor-critic, for partially observed tasks (`PPOConfig.lstm_units`).

The rollout carries each env's LSTM state from step to step and across rollouts, zeroing it
where an episode starts, and records the state every step was taken with. Training cuts the
rollout into sequences of `bptt_length` steps per env; each sequence is replayed from the state
recorded at its first step, again zeroing it at episode starts, so gradients flow back through
at most `bptt_length` steps (truncated backpropagation through time). Minibatches are whole
sequences: `batch_size` rows are `batch_size / bptt_length` sequences.
"""

from __future__ import annotations

from typing import NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from gymserve.agents.networks import RecurrentActorCritic, recurrent_actor_critic
from gymserve.agents.on_policy.algorithm import (
    ActorCriticLoss,
    OnPolicyConfig,
    Rollout,
    advantage_columns,
)
from gymserve.agents.on_policy.graph_envs import GraphEnvs
from gymserve.agents.on_policy.ppo import PPO, PPOConfig
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.policies.distributions import DistributionGraph

STATE_PARTS = 2  # the LSTM's hidden and cell state


class RecurrentRollout(NamedTuple):
    """`n_steps` steps of every env, time-major: (n_steps, num_envs, ...)."""

    observations: tf.Tensor
    raw_actions: tf.Tensor
    log_probs: tf.Tensor
    rewards: tf.Tensor
    terminated: tf.Tensor
    truncated: tf.Tensor
    values: tf.Tensor  # V(s_t) given the state the step was taken with
    next_values: tf.Tensor  # V of the true successor given the state after the step
    episode_starts: tf.Tensor  # float32 1.0 where the step is an episode's first
    states: tuple[tf.Tensor, ...]  # the state each step was taken with (already zeroed at starts)


def without_ended_episodes(state: list[tf.Tensor], episode_starts: tf.Tensor) -> list[tf.Tensor]:
    """The state with the rows of envs whose episode starts now set to zero."""
    keep = 1.0 - episode_starts[:, None]
    return [part * keep for part in state]


def collect_recurrent_rollout(
    env: GraphEnvs,
    networks: RecurrentActorCritic,
    distribution: DistributionGraph,
    generator: tf.random.Generator,
    n_steps: int,
    memory: list[tf.Variable],
) -> RecurrentRollout:
    """Act for `n_steps` steps of every env (traceable); `memory` holds the state parts and, last,
    the episode-start flags, read at the start and written at the end."""
    *initial_state, initial_starts = (tf.convert_to_tensor(variable) for variable in memory)
    fields = {
        "observations": tf.float32,
        "raw_actions": distribution.raw_dtype,
        "log_probs": tf.float32,
        "rewards": tf.float32,
        "terminated": tf.bool,
        "truncated": tf.bool,
        "values": tf.float32,
        "next_values": tf.float32,
        "episode_starts": tf.float32,
        **{f"state_{index}": tf.float32 for index in range(STATE_PARTS)},
    }

    def act(t, state, starts, arrays):
        state = without_ended_episodes(state, starts)
        observations = env.observations()
        outputs, values, *next_state = networks.both([observations, *state], training=False)
        raw_actions = distribution.sample(outputs, generator)
        step = env.step(distribution.env_actions(raw_actions))
        _, next_values, *_ = networks.both([step.final_observations, *next_state], training=False)
        written = {
            "observations": observations,
            "raw_actions": raw_actions,
            "log_probs": distribution.log_prob(outputs, raw_actions),
            "rewards": step.rewards,
            "terminated": step.terminated,
            "truncated": step.truncated,
            "values": values,
            "next_values": next_values,
            "episode_starts": starts,
            **{f"state_{index}": part for index, part in enumerate(state)},
        }
        ended = tf.cast(step.terminated | step.truncated, tf.float32)
        arrays = {name: arrays[name].write(t, written[name]) for name in fields}
        return t + 1, next_state, ended, arrays

    arrays = {name: tf.TensorArray(dtype, size=n_steps) for name, dtype in fields.items()}
    _, final_state, final_starts, arrays = tf.while_loop(
        lambda t, *_: t < n_steps, act, (tf.constant(0), initial_state, initial_starts, arrays)
    )
    for variable, value in zip(memory, (*final_state, final_starts), strict=True):
        variable.assign(value)
    stacked = {name: array.stack() for name, array in arrays.items()}
    states = tuple(stacked.pop(f"state_{index}") for index in range(STATE_PARTS))
    return RecurrentRollout(**stacked, states=states)


def sequence_batch(
    rollout: RecurrentRollout, gamma: float, gae_lambda: float, sequence_length: int
) -> dict[str, tf.Tensor]:
    """The rollout with GAE as (sequences, sequence_length, ...) columns, sequence i of env
    i % num_envs, plus each sequence's starting state parts `state_0`, `state_1` (sequences, units)."""
    columns = advantage_columns(rollout, rollout.values, rollout.next_values, gamma, gae_lambda)
    columns["episode_starts"] = rollout.episode_starts

    def sequences(value: tf.Tensor) -> tf.Tensor:
        shape = tf.shape(value)
        cut = tf.reshape(value, tf.concat([[-1, sequence_length], shape[1:]], axis=0))  # (S, L, E, ...)
        order = [0, 2, 1, *range(3, len(value.shape) + 1)]
        return tf.reshape(tf.transpose(cut, order), tf.concat([[-1, sequence_length], shape[2:]], axis=0))

    batch = {name: sequences(value) for name, value in columns.items()}
    for index, part in enumerate(rollout.states):
        batch[f"state_{index}"] = tf.reshape(part[::sequence_length], (-1, part.shape[-1]))
    return batch


class RecurrentActorCriticLoss(ActorCriticLoss):
    """The actor-critic loss of a minibatch of sequences, replayed through the LSTM step by step."""

    def __init__(
        self, networks: RecurrentActorCritic, distribution: DistributionGraph, config: OnPolicyConfig
    ):
        self.networks = networks
        self.distribution = distribution
        self.config = config
        self.variables = list(networks.both.trainable_weights)

    def forward(self, batch: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        state = [batch[f"state_{index}"] for index in range(STATE_PARTS)]
        outputs, values = [], []
        for t in range(batch["observations"].shape[1]):
            state = without_ended_episodes(state, batch["episode_starts"][:, t])
            step_outputs, step_values, *state = self.networks.both(
                [batch["observations"][:, t], *state], training=True
            )
            outputs.append(step_outputs)
            values.append(step_values)
        rows = {
            name: tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))
            for name, value in batch.items()
            if not name.startswith("state_")
        }
        outputs = tf.stack(outputs, axis=1)
        return rows, tf.reshape(outputs, (-1, outputs.shape[-1])), tf.reshape(tf.stack(values, axis=1), [-1])


class RecurrentPPO(PPO):
    """PPO whose actor and critic share an LSTM; runs of "ppo" build one when `lstm_units` is set."""

    recurrent = True
    loss_class = RecurrentActorCriticLoss
    remote_collection = None  # an actor would have to ship and resume each env's LSTM state

    def __init__(self, config: PPOConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space):
        super().__init__(config, observation_space, action_space)
        self._memory: list[tf.Variable] | None = None  # the rollout's state parts and episode-start flags

    def build_networks(self) -> RecurrentActorCritic:
        config = self.config
        return recurrent_actor_critic(
            self.observation_space,
            self.action_space,
            lstm_units=config.lstm_units,
            hidden_sizes=config.hidden_sizes,
            activation=config.activation,
            state_dependent_std=config.state_dependent_std,
            initial_log_std=config.initial_log_std,
            normalize_observations=config.normalize_observations,
            orthogonal_torso=config.orthogonal_init,
        )

    def networks(self) -> dict[str, keras.Model]:
        return {"actor_critic": self.actor_critic.both}

    def batch_rows(self) -> int:
        """Sequences per rollout."""
        return self.config.n_steps // self.config.bptt_length * self.config.num_envs

    def minibatch_size(self) -> int:
        return self.config.batch_size // self.config.bptt_length

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        if self._memory is None:
            units, envs = self.actor_critic.units, self.config.num_envs
            self._memory = [tf.Variable(tf.zeros((envs, units)), trainable=False) for _ in range(STATE_PARTS)]
            self._memory.append(tf.Variable(tf.ones(envs), trainable=False))  # every env starts an episode
        return super().train_iteration(runner)

    def stream_states(self) -> dict[str, np.ndarray]:
        memory = {f"memory{index}": part.numpy() for index, part in enumerate(self._memory or ())}
        return {**super().stream_states(), **memory}

    def load_streams(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_streams(arrays)  # the memory exists: train_iteration made it first
        for index, part in enumerate(self._memory):
            part.assign(arrays[f"memory{index}"])

    def _compiled_iteration(self, decay_fraction: tf.Tensor) -> tuple[Rollout, dict[str, tf.Tensor]]:
        config = self.config
        rollout = collect_recurrent_rollout(
            self._envs[0], self.actor_critic, self.distribution, self._generator, config.n_steps, self._memory
        )
        batch = sequence_batch(rollout, config.gamma, config.gae_lambda, config.bptt_length)
        return rollout, self.update(batch, decay_fraction)

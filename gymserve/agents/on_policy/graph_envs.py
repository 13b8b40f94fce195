"""The training envs as a compiled (`tf.function`) rollout sees them: tensors in, tensors out.

    envs = graph_envs(runner, parts=1, in_graph=True, seed=0)
    observations = envs[0].observations()      # (num_envs, *obs_shape) float32
    step = envs[0].step(actions)               # an EnvStep of tensors
    envs[0].account(runner, rewards, dones)    # after the rollout, outside the graph

`gymserve/CartPole-v1` and `gymserve/CartPoleNoVelocity-v1` run as TensorFlow ops
(`InGraphCartPole`): their physics is the one `gymserve.envs.cartpole.euler_step`, evaluated
with `tf.math`, so a whole rollout and update compile into one graph that never returns to
Python. Every other environment stays in the trainer's `EnvRunner` and is stepped through
`tf.numpy_function` (`PythonEnvsInGraph`), so the same rollout code drives it from inside a graph.

Both restart a finished episode in the same step: `EnvStep.observations` already belong to the
new episode, while `EnvStep.final_observations` hold the state the action led to, from which GAE
bootstraps a truncated episode.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import tensorflow as tf

from gymserve.agents.training.env_runner import EnvRunner
from gymserve.envs import cartpole, cartpole_no_velocity

CARTPOLE_ID = "gymserve/CartPole-v1"
# The cart-poles simulated in the graph, and which of the four state variables each observes.
IN_GRAPH_OBSERVED: dict[str, list[int]] = {
    CARTPOLE_ID: [0, 1, 2, 3],
    "gymserve/CartPoleNoVelocity-v1": cartpole_no_velocity.OBSERVED,
}


class EnvStep(NamedTuple):
    """One step of every environment in a batch (leading axis: the environments)."""

    rewards: tf.Tensor  # float32
    terminated: tf.Tensor  # bool
    truncated: tf.Tensor  # bool
    final_observations: tf.Tensor  # float32: the state each action led to, before any restart
    observations: tf.Tensor  # float32: where the next step starts (a new episode's if one ended)


class GraphEnvs(Protocol):
    """A batch of environments a rollout reads and steps with tensors."""

    num_envs: int
    in_graph: bool  # True when the steps never pass through the trainer's EnvRunner

    def observations(self) -> tf.Tensor:
        """The current observation of every environment, float32 (num_envs, *obs_shape)."""

    def step(self, actions: tf.Tensor) -> EnvStep:
        """Apply one action per environment; finished episodes restart at once."""

    def account(self, runner: EnvRunner, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Report a finished rollout's (n_steps, num_envs) steps and episode ends to the run's runner."""

    def state(self) -> dict[str, np.ndarray]:
        """What a checkpoint keeps to continue the episodes in progress (not the runner's part)."""

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from `state()`."""


class InGraphCartPole:
    """`num_envs` cart-poles whose state lives in TensorFlow variables and steps as graph ops.

    Transitions are those of `gymserve.envs.cartpole` (float64 state, the same physics function);
    only the random starting states come from a TensorFlow generator instead of numpy's.
    Observations are the state variables listed in `observed` (all four by default).
    """

    in_graph = True

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int = 500,
        seed: int = 0,
        observed: list[int] = IN_GRAPH_OBSERVED[CARTPOLE_ID],
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self._observed = list(observed)
        self._generator = tf.random.Generator.from_seed(seed)
        self._state = tf.Variable(self._starting_states(), name="cartpole_state")  # (4, num_envs)
        self._steps = tf.Variable(tf.zeros(num_envs, tf.int32), name="cartpole_steps")
        self._episode_returns = np.zeros(num_envs)
        self._episode_lengths = np.zeros(num_envs, np.int64)

    def observations(self) -> tf.Tensor:
        return self._observe(self._state)

    def set_states(self, states: np.ndarray) -> None:
        """Start new episodes from explicit float64 states (num_envs, 4)."""
        self._state.assign(tf.transpose(tf.convert_to_tensor(states, tf.float64)))
        self._steps.assign(tf.zeros(self.num_envs, tf.int32))
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0

    def step(self, actions: tf.Tensor) -> EnvStep:
        force = tf.where(tf.equal(actions, 1), cartpole.FORCE_MAGNITUDE, -cartpole.FORCE_MAGNITUDE)
        next_state = tf.stack(
            cartpole.euler_step(tf.unstack(self._state), tf.cast(force, tf.float64), tf.math)
        )
        terminated = cartpole.has_fallen(next_state[0], next_state[2])
        steps = self._steps + 1
        truncated = steps >= self.max_episode_steps
        ended = terminated | truncated
        self._state.assign(tf.where(ended, self._starting_states(), next_state))
        self._steps.assign(tf.where(ended, 0, steps))
        return EnvStep(
            rewards=tf.ones(self.num_envs, tf.float32),
            terminated=terminated,
            truncated=truncated,
            final_observations=self._observe(next_state),
            observations=self.observations(),
        )

    def account(self, runner: EnvRunner, rewards: np.ndarray, dones: np.ndarray) -> None:
        finished = []
        for step_rewards, step_dones in zip(rewards, dones, strict=True):
            self._episode_returns += step_rewards
            self._episode_lengths += 1
            for index in np.flatnonzero(step_dones):
                finished.append((float(self._episode_returns[index]), int(self._episode_lengths[index])))
            self._episode_returns[step_dones] = 0.0
            self._episode_lengths[step_dones] = 0
        runner.record_steps(rewards.size, finished)

    def state(self) -> dict[str, np.ndarray]:
        return {
            "physics": self._state.numpy(),
            "steps": self._steps.numpy(),
            "generator": self._generator.state.numpy(),
            "episode_returns": self._episode_returns.copy(),
            "episode_lengths": self._episode_lengths.copy(),
        }

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._state.assign(arrays["physics"])
        self._steps.assign(arrays["steps"])
        self._generator.state.assign(arrays["generator"])
        self._episode_returns[:] = arrays["episode_returns"]
        self._episode_lengths[:] = arrays["episode_lengths"]

    def _observe(self, state: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.transpose(tf.gather(state, self._observed)), tf.float32)

    def _starting_states(self) -> tf.Tensor:
        bound = cartpole.RESET_BOUND
        return self._generator.uniform((4, self.num_envs), -bound, bound, dtype=tf.float64)


class PythonEnvsInGraph:
    """The trainer's `EnvRunner` (Python environments) stepped from a graph via `tf.numpy_function`.

    The runner itself counts the run's steps and records its finished episodes.
    """

    in_graph = False

    def __init__(self, runner: EnvRunner):
        self.runner = runner
        self.num_envs = runner.num_envs
        self._observation_shape = (self.num_envs, *runner.observation_space.shape)

    def observations(self) -> tf.Tensor:
        observations = tf.numpy_function(lambda: self.runner.observations, [], tf.float32, stateful=True)
        observations.set_shape(self._observation_shape)
        return observations

    def step(self, actions: tf.Tensor) -> EnvStep:
        outputs = tf.numpy_function(
            self._step, [actions], [tf.float32, tf.bool, tf.bool, tf.float32, tf.float32], stateful=True
        )
        batch, observations = (self.num_envs,), self._observation_shape
        for output, shape in zip(outputs, (batch, batch, batch, observations, observations), strict=True):
            output.set_shape(shape)
        return EnvStep(*outputs)

    def account(self, runner: EnvRunner, rewards: np.ndarray, dones: np.ndarray) -> None:
        """Nothing to report: every step went through the runner."""

    def state(self) -> dict[str, np.ndarray]:
        """Nothing beyond the runner's own snapshot."""
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Nothing to load: the runner continues its own envs."""

    def _step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        transition = self.runner.step(actions)
        return (
            transition.rewards,
            transition.terminated,
            transition.truncated,
            transition.next_observations,
            self.runner.observations,
        )


def graph_envs(
    runner: EnvRunner, parts: int, in_graph: bool, seed: int
) -> list[InGraphCartPole | PythonEnvsInGraph]:
    """The runner's envs in `parts` disjoint groups (one per worker), in-graph for CartPole.

    With `in_graph` and a cart-pole of `IN_GRAPH_OBSERVED`, each group is an `InGraphCartPole` of
    the same size (seeded `seed`, `seed + 1`, ...) and the runner's own envs stay idle; otherwise
    the groups are `runner.split(parts)`.
    """
    if not 1 <= parts <= runner.num_envs:
        raise ValueError(
            f"cannot split {runner.num_envs} environments into {parts} groups; expected 1..{runner.num_envs}"
        )
    if in_graph and runner.env_id in IN_GRAPH_OBSERVED:
        max_episode_steps = gym.spec(runner.env_id).max_episode_steps
        observed = IN_GRAPH_OBSERVED[runner.env_id]
        sizes = [len(group) for group in np.array_split(np.arange(runner.num_envs), parts)]
        return [
            InGraphCartPole(size, max_episode_steps, seed + index, observed)
            for index, size in enumerate(sizes)
        ]
    return [PythonEnvsInGraph(group) for group in (runner.split(parts) if parts > 1 else [runner])]

"""Collecting experience: a Driver runs a policy in an env or a vector env and feeds observers.

    buffer = ReplayBuffer(trajectory_spec(env.observation_space, env.action_space),
                          batch_size=1, max_length=1000)
    average_return = AverageReturn()
    Driver(env, policy, observers=[buffer.add_batch, average_return], num_steps=100).run()

Each observer is called once per env step with a `Trajectory` batched over the envs (a batch of
one for a single env), in TF-Agents' layout: an item holds an observation, the action taken in
it and what the step returned. After an episode's last step (`next_step_type` LAST) comes a
boundary item, LAST -> FIRST with reward 0, whose action is not executed: the env resets
instead. A driver keeps its envs and the policy state between `run` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gymserve.policies.base import ActionMode, Policy
from gymserve.policies.time_step import StepType


class Trajectory(NamedTuple):
    """One step of every env: arrays with a leading (num_envs,) dimension."""

    step_type: np.ndarray
    observation: np.ndarray
    action: np.ndarray
    next_step_type: np.ndarray
    reward: np.ndarray
    discount: np.ndarray  # 0 when the episode terminated, 1 otherwise (also when truncated)

    def is_boundary(self) -> np.ndarray:
        """The items between two episodes, which no env step produced."""
        return self.step_type == StepType.LAST

    def is_last(self) -> np.ndarray:
        """The items whose step ended an episode."""
        return self.next_step_type == StepType.LAST


def trajectory_spec(observation_space: gym.spaces.Space, action_space: gym.spaces.Space) -> Trajectory:
    """The data spec of one Trajectory item, for a ReplayBuffer that a Driver feeds."""
    scalar_int, scalar_float = ((), np.int32), ((), np.float32)
    return Trajectory(scalar_int, observation_space, action_space, scalar_int, scalar_float, scalar_float)


class Driver:
    """Runs `policy` for `num_steps` env steps or `num_episodes` episodes per `run` call."""

    def __init__(
        self,
        env: gym.Env | gym.vector.VectorEnv,
        policy: Policy,
        observers: list[Callable[[Trajectory], Any]] = (),
        num_steps: int | None = None,
        num_episodes: int | None = None,
        mode: ActionMode | str = ActionMode.STOCHASTIC,
        seed: int | None = None,
    ):
        """Steps count the items of all envs except boundaries; episodes count episode ends.
        `seed` seeds the first reset of the envs."""
        if (num_steps is None) == (num_episodes is None):
            raise ValueError(
                f"give num_steps or num_episodes, not both nor neither; got num_steps={num_steps!r}, "
                f"num_episodes={num_episodes!r}"
            )
        for name, value in (("num_steps", num_steps), ("num_episodes", num_episodes)):
            if value is not None and (not isinstance(value, int | np.integer) or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._vectorized = isinstance(env, gym.vector.VectorEnv)
        if (
            self._vectorized
            and env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP) != AutoresetMode.NEXT_STEP
        ):
            raise ValueError(
                f"the Driver steps vector envs with next-step autoreset, got {env.metadata['autoreset_mode']}"
            )
        self.env, self.policy, self.observers = env, policy, list(observers)
        self.num_steps, self.num_episodes, self.mode, self._seed = num_steps, num_episodes, mode, seed
        self._observations: np.ndarray | None = None
        self._step_types = np.zeros(0, np.int32)
        self._policy_state = policy.get_initial_state()

    @property
    def num_envs(self) -> int:
        return self.env.num_envs if self._vectorized else 1

    def run(self) -> None:
        """Step until `num_steps` items or `num_episodes` episode ends were observed."""
        if self._observations is None:
            self._observations = self._reset()
            self._step_types = np.full(self.num_envs, StepType.FIRST, np.int32)
        steps = episodes = 0
        while (steps < self.num_steps) if self.num_steps is not None else (episodes < self.num_episodes):
            trajectory = self._step()
            for observer in self.observers:
                observer(trajectory)
            steps += int((~trajectory.is_boundary()).sum())
            episodes += int(trajectory.is_last().sum())

    def _step(self) -> Trajectory:
        observations, step_types = self._observations, self._step_types
        policy_step = self.policy.action(observations, self._policy_state, self.mode)
        actions, self._policy_state = np.asarray(policy_step.action), policy_step.state
        boundary = step_types == StepType.LAST
        if self._vectorized:
            next_observations, rewards, terminated, truncated, _ = self.env.step(actions)
        elif boundary[0]:
            next_observations, rewards, terminated, truncated = self._reset(), [0.0], [False], [False]
        else:
            observation, reward, terminated, truncated, _ = self.env.step(actions[0])
            next_observations, rewards, terminated, truncated = (
                observation[None],
                [reward],
                [terminated],
                [truncated],
            )
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        next_step_types = np.where(
            boundary, StepType.FIRST, np.where(terminated | truncated, StepType.LAST, StepType.MID)
        ).astype(np.int32)
        self._observations, self._step_types = np.asarray(next_observations), next_step_types
        return Trajectory(
            step_types,
            observations,
            actions,
            next_step_types,
            np.where(boundary, 0.0, rewards).astype(np.float32),
            np.where(terminated & ~boundary, 0.0, 1.0).astype(np.float32),
        )

    def _reset(self) -> np.ndarray:
        seed, self._seed = self._seed, None  # later resets continue the env's own generator
        observations, _ = self.env.reset(seed=seed)
        return np.asarray(observations) if self._vectorized else np.asarray(observations)[None]

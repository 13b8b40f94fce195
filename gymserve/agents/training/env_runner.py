"""The training environments as algorithms see them: step a batch, get transitions back.

An `EnvRunner` steps `num_envs` environments with one batch of actions. An environment whose
episode ends is reset in the same step: the transition carries its final observation in
`next_observations` (with `terminated` or `truncated` set) while `runner.observations` already
holds the first observation of its next episode. The runner counts environment steps (the clock
every schedule and the trainer run on) and records finished episodes for the trainer's history.

`split(parts)` hands disjoint groups of environments to asynchronous workers; the groups share
the step count and the episode record, both guarded by a lock.

`snapshot()` pickles the environments mid-episode with the runner's episode bookkeeping, and
`EnvRunner.from_snapshot` continues them: a checkpoint carries it so that a resumed run steps on
exactly where it stopped. Environments that cannot be pickled (pybullet's) give no snapshot.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from gymserve.envs import training_options


@dataclass(frozen=True)
class Transition:
    """One step of every environment of a runner; arrays have a leading (num_envs,) dimension."""

    observations: np.ndarray  # float32, what the actions were chosen from
    actions: np.ndarray
    rewards: np.ndarray  # float32
    next_observations: np.ndarray  # float32, after the action; the final observation if the episode ended
    terminated: np.ndarray  # bool: reached a terminal state, so the return does not continue
    truncated: np.ndarray  # bool: cut short (time limit), so bootstrap from next_observations

    @property
    def dones(self) -> np.ndarray:
        """Whether each environment's episode ended at this step, either way."""
        return self.terminated | self.truncated


@dataclass(frozen=True)
class FinishedEpisode:
    """A training episode that ended at environment step `step` of the run."""

    step: int
    total_return: float
    length: int


class _SharedProgress:
    """The step count and finished episodes of a runner and all runners split from it."""

    def __init__(self, total_steps: int):
        self.lock = threading.Lock()
        self.total_steps = total_steps
        self.finished: list[FinishedEpisode] = []


class EnvRunner:
    """Steps a group of environments in lockstep and resets each one when its episode ends."""

    def __init__(
        self,
        envs: Sequence[gym.Env],
        seed: int,
        total_steps: int = 0,
        on_observations: Callable[[np.ndarray], None] | None = None,
    ):
        """Reset env i with seed `seed + i`; `total_steps` continues a resumed run's count.

        `on_observations` sees every new batch of observations (e.g. to update running
        normalization statistics).
        """
        if not envs:
            raise ValueError("an EnvRunner needs at least one environment")
        self._attach(envs, on_observations, _SharedProgress(total_steps))
        self.observations = np.stack([self._reset(index, seed + index) for index in range(self.num_envs)])
        self._observe(self.observations)

    def _attach(
        self,
        envs: Sequence[gym.Env],
        on_observations: Callable[[np.ndarray], None] | None,
        progress: _SharedProgress,
    ) -> None:
        self._envs = list(envs)
        self._on_observations = on_observations
        self._progress = progress
        self.observation_space = self._envs[0].observation_space
        self.action_space = self._envs[0].action_space
        self._returns = np.zeros(len(self._envs))
        self._lengths = np.zeros(len(self._envs), dtype=np.int64)
        self._parts: list[EnvRunner] = []  # the runners `split` made, if any

    @classmethod
    def from_snapshot(
        cls,
        snapshot: bytes,
        total_steps: int,
        on_observations: Callable[[np.ndarray], None] | None = None,
    ) -> EnvRunner:
        """The runner `snapshot()` saved, its episodes in progress continuing (no reset: the
        current observations were seen by `on_observations` before the snapshot)."""
        saved = pickle.loads(snapshot)  # a checkpoint of the run itself: trusted as its code is
        runner = cls.__new__(cls)
        runner._attach(saved["envs"], on_observations, _SharedProgress(total_steps))
        runner._returns[:] = saved["returns"]
        runner._lengths[:] = saved["lengths"]
        runner.observations = saved["observations"]
        return runner

    @classmethod
    def make(
        cls,
        env_id: str,
        num_envs: int,
        seed: int,
        total_steps: int = 0,
        on_observations: Callable[[np.ndarray], None] | None = None,
    ) -> EnvRunner:
        """A runner over `num_envs` fresh training environments (`gym.make(env_id)`, with the
        training-only options of envs that have them, e.g. the Atari games' clipped rewards)."""
        return cls(make_envs(env_id, num_envs), seed, total_steps, on_observations)

    @property
    def num_envs(self) -> int:
        return len(self._envs)

    @property
    def total_steps(self) -> int:
        """Environment steps taken so far in the run, by this runner and all runners split from it."""
        return self._progress.total_steps

    @property
    def env_id(self) -> str | None:
        """The registry id the environments were made from (None for envs made without the registry)."""
        spec = self._envs[0].spec
        return None if spec is None else spec.id

    def record_steps(self, steps: int, finished: Sequence[tuple[float, int]] = ()) -> None:
        """Count `steps` taken by a copy of these envs outside `step()` (e.g. compiled TensorFlow
        envs) and the (return, length) of each episode that finished in them."""
        with self._progress.lock:
            self._progress.total_steps += steps
            step = self._progress.total_steps
            self._progress.finished.extend(FinishedEpisode(step, float(r), int(n)) for r, n in finished)

    def step(self, actions: np.ndarray) -> Transition:
        """Apply one action per environment; see the module docstring for episode ends."""
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(
                f"got {len(actions)} actions for {self.num_envs} environments; expected one per env"
            )
        observations = self.observations
        next_observations = np.empty_like(observations)
        rewards = np.empty(self.num_envs, np.float32)
        terminated = np.empty(self.num_envs, bool)
        truncated = np.empty(self.num_envs, bool)
        finished = []
        for index, (env, action) in enumerate(zip(self._envs, actions, strict=True)):
            observation, reward, terminated[index], truncated[index], _ = env.step(action)
            next_observations[index] = observation
            rewards[index] = reward
            self._returns[index] += float(reward)
            self._lengths[index] += 1
            if terminated[index] or truncated[index]:
                finished.append((index, self._returns[index], self._lengths[index]))
        self.observations = next_observations.copy()
        for index, _, _ in finished:
            self.observations[index] = self._reset(index)
        self.record_steps(self.num_envs, [(total_return, length) for _, total_return, length in finished])
        self._observe(self.observations)
        return Transition(observations, actions, rewards, next_observations, terminated, truncated)

    def pop_finished_episodes(self) -> list[FinishedEpisode]:
        """The episodes finished since the last call, oldest first."""
        with self._progress.lock:
            finished, self._progress.finished = self._progress.finished, []
        return finished

    def split(self, parts: int) -> list[EnvRunner]:
        """`parts` runners over disjoint, contiguous groups of this runner's environments.

        They continue the current episodes and share this runner's step count and episode record;
        do not step this runner itself while they are in use.
        """
        if not 1 <= parts <= self.num_envs:
            raise ValueError(
                f"cannot split {self.num_envs} environments into {parts} groups; expected 1..{self.num_envs}"
            )
        runners = []
        for indices in np.array_split(np.arange(self.num_envs), parts):
            runner = EnvRunner.__new__(EnvRunner)
            runner._attach([self._envs[i] for i in indices], self._on_observations, self._progress)
            runner._returns[:] = self._returns[indices]
            runner._lengths[:] = self._lengths[indices]
            runner.observations = self.observations[indices].copy()
            runners.append(runner)
        self._parts = runners  # they hold the episodes in progress from now on
        return runners

    def snapshot(self) -> bytes | None:
        """The environments and episodes in progress, pickled; None if an environment cannot be."""
        holders = self._parts or [self]
        saved = {
            "envs": self._envs,
            "observations": np.concatenate([holder.observations for holder in holders]),
            "returns": np.concatenate([holder._returns for holder in holders]),
            "lengths": np.concatenate([holder._lengths for holder in holders]),
        }
        try:
            return pickle.dumps(saved)
        except (pickle.PicklingError, TypeError, AttributeError, NotImplementedError):
            return None

    def close(self) -> None:
        for env in self._envs:
            env.close()

    def _reset(self, index: int, seed: int | None = None) -> np.ndarray:
        self._returns[index] = 0.0
        self._lengths[index] = 0
        observation, _ = self._envs[index].reset(seed=seed)
        return np.asarray(observation, np.float32)

    def _observe(self, observations: np.ndarray) -> None:
        if self._on_observations is not None:
            self._on_observations(observations)


def make_envs(env_id: str, count: int, training: bool = True) -> list[gym.Env]:
    """`count` fresh `gym.make(env_id)` envs, with the training-only options of envs that have them
    (e.g. the Atari games' clipped rewards) unless not `training`."""
    options = training_options(env_id) if training else {}
    return [gym.make(env_id, **options) for _ in range(count)]

"""Observers that average over the last finished episodes a Driver reports.

    average_return = AverageReturn(buffer_size=10)
    Driver(env, policy, observers=[average_return], num_episodes=10).run()
    average_return.result()   # mean undiscounted return of the last 10 episodes; 0.0 before any

Returns and lengths are summed per env from the trajectory items that are not boundaries; an
episode counts once its last step is observed.
"""

from __future__ import annotations

import abc
from collections import deque

import numpy as np

from gymserve.tf_agents.drivers import Trajectory


class _EpisodeAverage(abc.ABC):
    """Accumulates a per-env quantity over episodes and averages the last `buffer_size`."""

    def __init__(self, buffer_size: int = 10):
        if not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
        self._finished: deque[float] = deque(maxlen=buffer_size)
        self._running = np.zeros(0)

    def __call__(self, trajectory: Trajectory) -> None:
        if len(self._running) != len(trajectory.step_type):
            self._running = np.zeros(len(trajectory.step_type))
        self._running += np.where(trajectory.is_boundary(), 0.0, self._increment(trajectory))
        for row in np.flatnonzero(trajectory.is_last()):
            self._finished.append(float(self._running[row]))
            self._running[row] = 0.0

    def result(self) -> float:
        return float(np.mean(self._finished)) if self._finished else 0.0

    def reset(self) -> None:
        self._finished.clear()
        self._running = np.zeros(0)

    @abc.abstractmethod
    def _increment(self, trajectory: Trajectory) -> np.ndarray:
        """What each non-boundary item adds to its env's running total."""


class AverageReturn(_EpisodeAverage):
    """Mean undiscounted return of the last `buffer_size` finished episodes."""

    def _increment(self, trajectory: Trajectory) -> np.ndarray:
        return np.asarray(trajectory.reward, np.float64)


class AverageEpisodeLength(_EpisodeAverage):
    """Mean number of env steps of the last `buffer_size` finished episodes."""

    def _increment(self, trajectory: Trajectory) -> np.ndarray:
        return np.ones(len(trajectory.step_type))

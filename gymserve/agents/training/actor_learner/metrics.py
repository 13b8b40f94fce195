"""What an `Actor` measures over the episodes it finishes (TF-Agents' `actor.collect_metrics`).

metrics = collect_metrics(buffer_size=10)   # AverageReturn and AverageEpisodeLength
Actor(env, policy, episodes_per_run=10, metrics=metrics).run()
metrics[0].result()                         # mean return of the last 10 episodes; 0.0 before any
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque

from gymserve.agents.training.env_runner import FinishedEpisode


class EpisodeAverage(ABC):
    """The mean of one quantity over the last `buffer_size` finished episodes."""

    name: str

    def __init__(self, buffer_size: int = 10):
        if not isinstance(buffer_size, int) or buffer_size < 1:
            raise ValueError(f"buffer_size must be a positive integer, got {buffer_size!r}")
        self._values: deque[float] = deque(maxlen=buffer_size)

    def __call__(self, episode: FinishedEpisode) -> None:
        self._values.append(self.value(episode))

    def result(self) -> float:
        return sum(self._values) / len(self._values) if self._values else 0.0

    @abstractmethod
    def value(self, episode: FinishedEpisode) -> float:
        """The quantity averaged, for one finished episode."""


class AverageReturnMetric(EpisodeAverage):
    name = "AverageReturn"

    def value(self, episode: FinishedEpisode) -> float:
        return episode.total_return


class AverageEpisodeLengthMetric(EpisodeAverage):
    name = "AverageEpisodeLength"

    def value(self, episode: FinishedEpisode) -> float:
        return float(episode.length)


def collect_metrics(buffer_size: int = 10) -> list[EpisodeAverage]:
    """Average return and episode length over the last `buffer_size` episodes."""
    return [AverageReturnMetric(buffer_size), AverageEpisodeLengthMetric(buffer_size)]


eval_metrics = collect_metrics  # TF-Agents' name for the same pair over the evaluation episodes

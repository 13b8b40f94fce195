"""An off-policy algorithm's exploring behaviour, as an `Actor` steps envs with it.

TF-Agents' `agent.collect_policy`: `algorithm.collect_policy` acts as the algorithm acts while it
trains (its exploration noise or epsilon, its warm-up with uniform actions before `learning_starts`,
on the env step clock), and sees every step it took so that the noise restarts where episodes end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from gymserve.agents.training.config import TrainingConfig
    from gymserve.agents.training.env_runner import Transition


class Explorer(Protocol):
    """What of an off-policy algorithm (off_policy/algorithm.py) its collect policy uses."""

    config: TrainingConfig

    def explore(self, observations: np.ndarray, total_steps: int) -> np.ndarray: ...

    def acted(self, transition: Transition) -> None: ...

    def update_observation_statistics(self, observations: np.ndarray) -> None: ...


class CollectPolicy:
    """The actions `algorithm` explores with at a step count."""

    def __init__(self, algorithm: Explorer):
        self.algorithm = algorithm

    def actions(self, observations: np.ndarray, total_steps: int) -> np.ndarray:
        return self.algorithm.explore(observations, total_steps)

    def acted(self, transition: Transition) -> None:
        self.algorithm.acted(transition)

    def update_observation_statistics(self, observations: np.ndarray) -> None:
        self.algorithm.update_observation_statistics(observations)

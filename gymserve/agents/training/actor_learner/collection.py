"""Where a Learner's experience comes from: its own envs, a user-held Actor, or Ray actors.

Each source gives the learner one iteration of collecting and learning (`train_iteration`; None
while a user's actor has not yet taken an iteration's steps), the
run's step count and the training episodes that ended, and the training envs mid-episode for a
checkpoint where they pickle. gymserve.agents.distributed's learners have the same shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.training.env_runner import EnvRunner, FinishedEpisode

if TYPE_CHECKING:
    from gymserve.agents.off_policy.algorithm import OffPolicyAlgorithm
    from gymserve.agents.training.actor_learner.actor import Actor


class Collection(Protocol):
    """What the learner needs of where experience comes from."""

    total_steps: int

    def train_iteration(self) -> dict[str, float] | None: ...

    def pop_finished_episodes(self) -> list[FinishedEpisode]: ...

    def training_envs_snapshot(self) -> bytes | None:
        """The training envs mid-episode for a checkpoint (EnvRunner.snapshot), or None."""

    def close(self) -> None: ...


class LocalCollection:
    """The algorithm stepping this process's training envs (`Learner(..., collects=True)`)."""

    def __init__(self, algorithm: Algorithm, runner: EnvRunner):
        self.algorithm = algorithm
        self.runner = runner

    @property
    def total_steps(self) -> int:
        return self.runner.total_steps

    def train_iteration(self) -> dict[str, float]:
        return self.algorithm.train_iteration(self.runner)

    def pop_finished_episodes(self) -> list[FinishedEpisode]:
        return self.runner.pop_finished_episodes()

    def training_envs_snapshot(self) -> bytes | None:
        return self.runner.snapshot()

    def close(self) -> None:
        self.runner.close()


class ActorCollection:
    """A user-held Actor that stores into the algorithm's replay: each iteration is the learning
    half of the algorithm's own iteration (`OffPolicyAlgorithm.train_iteration`), the actor's runs
    having been the collecting half, so it completes, as in `gymserve train`, once the actor has
    taken `train_freq` steps of every env since the last one."""

    def __init__(self, algorithm: OffPolicyAlgorithm, actor: Actor):
        self.algorithm = algorithm
        self.actor = actor
        self.steps_per_iteration = algorithm.config.train_freq * actor.num_envs
        self.iteration_start = actor.total_steps

    @property
    def total_steps(self) -> int:
        return self.actor.total_steps

    def train_iteration(self) -> dict[str, float] | None:
        """A round of gradient steps for each iteration the actor completed since the last call."""
        iterations = (self.actor.total_steps - self.iteration_start) // self.steps_per_iteration
        if iterations == 0:
            return None
        self.iteration_start += iterations * self.steps_per_iteration
        metrics = self.algorithm.exploration_metrics()
        for _ in range(iterations):
            metrics.update(self.algorithm.learn_if_ready(self.actor.observations, self.actor.total_steps))
        return metrics

    def pop_finished_episodes(self) -> list[FinishedEpisode]:
        return self.actor.pop_finished_episodes()

    def training_envs_snapshot(self) -> bytes | None:
        return self.actor.runner.snapshot()

    def close(self) -> None:
        """The user's actor stays theirs to run on or close."""

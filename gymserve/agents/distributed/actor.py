"""A collector: the process behind one Ray actor, stepping its envs with the learner's latest weights.

It builds the run's algorithm (networks only matter) and an `EnvRunner` over its share of the
training envs, then answers the learner: `set_weights` with each published copy of the acting
network, `collect_transitions` (off-policy: `steps_per_batch` steps of its envs, acting with the
algorithm's `explore`) or `collect_rollout` (on-policy: the algorithm's own compiled rollout).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from gymserve.agents.on_policy.algorithm import Rollout
from gymserve.agents.training.env_runner import EnvRunner, Transition
from gymserve.agents.training.runs import RunInfo, build_algorithm


@dataclass(frozen=True)
class CollectorPlacement:
    """Where an actor's process runs."""

    node_id: str
    pid: int


@dataclass(frozen=True)
class CollectedBatch:
    """What one collect call shipped: transitions (off-policy) or a rollout (on-policy, numpy arrays)."""

    steps: int  # environment steps taken, all envs
    episodes: list[tuple[float, int]]  # (return, length) of each episode that ended
    weights_version: int  # learner updates behind the weights acted with
    seconds: float  # spent collecting
    transitions: list[Transition] = field(default_factory=list)
    rollout: Rollout | None = None


class Collector:
    """One actor's envs and acting network; see the module docstring."""

    def __init__(self, info: RunInfo, num_envs: int, env_seed: int, seed: int, cpus: float):
        """`env_seed` seeds the envs' resets (env i: `env_seed + i`), `seed` the algorithm's sampling."""
        import tensorflow as tf

        threads = max(1, int(cpus))
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        config = info.config.model_copy(update={"seed": seed})
        self.algorithm = build_algorithm(RunInfo(info.algorithm, info.env_id, config))
        self.runner = EnvRunner.make(info.env_id, num_envs, env_seed)
        self.weights_version = 0
        self.learner_steps = 0  # the run's step count when the weights were published
        self.steps_at_weights = 0  # this actor's own count then
        self.steps_shipped = 0

    def placement(self) -> CollectorPlacement:
        import ray

        return CollectorPlacement(ray.get_runtime_context().get_node_id(), os.getpid())

    def set_weights(self, weights: list[np.ndarray], version: int, learner_steps: int) -> None:
        self.algorithm.set_policy_weights(weights)
        self.weights_version = version
        self.learner_steps = learner_steps
        self.steps_at_weights = self.runner.total_steps

    def collect_transitions(self, steps: int) -> CollectedBatch:
        started = time.perf_counter()
        transitions = []
        for _ in range(steps):
            # schedules (exploration, random warm-up) run on the run's clock, which moves on
            # with this actor's own steps until the next weights arrive
            clock = self.learner_steps + self.runner.total_steps - self.steps_at_weights
            transition = self.runner.step(self.algorithm.explore(self.runner.observations, clock))
            self.algorithm.acted(transition)
            transitions.append(transition)
        return self._batch(started, transitions=transitions)

    def collect_rollout(self) -> CollectedBatch:
        started = time.perf_counter()
        rollout = self.algorithm.collect(self.runner)
        return self._batch(started, rollout=Rollout(*(np.asarray(tensor) for tensor in rollout)))

    def _batch(self, started: float, **payload: object) -> CollectedBatch:
        steps_before, self.steps_shipped = self.steps_shipped, self.runner.total_steps
        episodes = [(episode.total_return, episode.length) for episode in self.runner.pop_finished_episodes()]
        return CollectedBatch(
            steps=self.runner.total_steps - steps_before,
            episodes=episodes,
            weights_version=self.weights_version,
            seconds=time.perf_counter() - started,
            **payload,
        )

    def close(self) -> None:
        self.runner.close()

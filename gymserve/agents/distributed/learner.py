"""The learner's side of training with actors: it stands where the `EnvRunner` stands in the trainer.

The trainer's loop calls `learner.train_iteration()` instead of `algorithm.train_iteration(runner)`
and reads `total_steps` and `pop_finished_episodes()` from it as from a runner, so evaluation,
checkpoints, history, TensorBoard and every other duty of the loop stay the trainer's own.

- `ReplayLearner` (off-policy): actors ship batches of transitions as fast as the rate limiter
  lets them; each iteration stores what has arrived, then runs one round of gradient steps if the
  limiter allows, publishing the weights every `weight_sync_interval` rounds.
- `RolloutLearner` (on-policy): each iteration collects one rollout from every actor with the
  same weights, updates on them side by side (n_steps x num_envs, as in one process) and
  publishes the new weights.

`ActorPool` starts the actors, broadcasts weights through the object store and restarts the
bookkeeping of an actor whose process died: Ray restarts the process, the pool sends it the
latest weights, and only the batch it was collecting is lost.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.distributed.actor import CollectedBatch, Collector
from gymserve.agents.distributed.actor_log import ActorLog
from gymserve.agents.distributed.cluster import (
    DistributedConfig,
    UnsupportedDistributedTrainingError,
    actor_options,
    connect,
    import_ray,
)
from gymserve.agents.distributed.rate_limiter import SampleToInsertRatio
from gymserve.agents.on_policy.algorithm import Rollout
from gymserve.agents.training.env_runner import FinishedEpisode
from gymserve.agents.training.registry import REGISTRY, actor_support
from gymserve.agents.training.runs import RunInfo

RESTART_POLL_SECONDS = 0.5  # how often to ask whether a restarting actor is back


def check_trainable_with_actors(info: RunInfo, algorithm: Algorithm, config: DistributedConfig) -> None:
    """Raise (before anything is started or written) unless this run can train with actors."""
    import_ray()
    if algorithm.remote_collection is None:
        blocking = [
            name for name in actor_support(info.algorithm) or () if getattr(info.config, name) is not None
        ]
        raise UnsupportedDistributedTrainingError(
            f"{info.algorithm}{''.join(f' with {name}' for name in blocking)} cannot train with actors; "
            f"choose one of {', '.join(algorithms_trainable_with_actors())}, or train without --actors"
        )
    if config.actors > info.config.num_envs:
        raise UnsupportedDistributedTrainingError(
            f"{config.actors} actors need at least as many envs, but num_envs is {info.config.num_envs}: "
            f"each actor steps a share of the num_envs training envs; set num_envs >= {config.actors}"
        )
    if algorithm.remote_collection == "transitions" and info.config.num_envs % config.actors:
        raise UnsupportedDistributedTrainingError(
            f"num_envs {info.config.num_envs} does not split evenly among {config.actors} actors: the replay "
            f"buffer stores every actor's batches in the same rows; choose a multiple of {config.actors}"
        )


def algorithms_trainable_with_actors() -> list[str]:
    """The registered algorithms that train with actors, each with the config fields it needs unset."""
    trainable = []
    for name in REGISTRY:
        fields = actor_support(name)
        if fields is not None:
            trainable.append(f"{name} (without {', '.join(fields)})" if fields else name)
    return trainable


@dataclasses.dataclass(frozen=True)
class RunPoint:
    """Where the run the learner continues stands."""

    run_dir: Path
    total_steps: int
    wall_time: float
    env_seed: int  # seeds the resets of the training envs (env i: env_seed + i)


def start_learner(info: RunInfo, algorithm: Algorithm, config: DistributedConfig, point: RunPoint) -> Learner:
    """Connect to Ray, start the actors and return the learner for `algorithm`'s kind of collection."""
    check_trainable_with_actors(info, algorithm, config)
    learner_class = ReplayLearner if algorithm.remote_collection == "transitions" else RolloutLearner
    return learner_class(info, algorithm, config, point)


class ActorPool:
    """The collector actors, their placement and restarts, and the weights they act with."""

    def __init__(self, info: RunInfo, config: DistributedConfig, env_seed: int):
        self.ray = import_ray()
        remote_collector = self.ray.remote(Collector).options(**actor_options(config))
        groups = np.array_split(np.arange(info.config.num_envs), config.actors)
        self.num_envs = [len(group) for group in groups]
        self.actors = [
            remote_collector.remote(
                info,
                len(group),
                env_seed + int(group[0]),
                int(np.random.SeedSequence([info.config.seed, index]).generate_state(1)[0]),
                config.num_cpus_per_actor,
            )
            for index, group in enumerate(groups)
        ]
        self.placements = self.ray.get([actor.placement.remote() for actor in self.actors])
        self.restarts = [0] * len(self.actors)
        self.pending: dict[Any, tuple[int, Callable[[Any], Any]]] = {}  # ObjectRef -> (actor, call)
        self._latest_weights: tuple[Any, int, int] | None = None

    def __len__(self) -> int:
        return len(self.actors)

    def publish(self, weights: list[np.ndarray], version: int, learner_steps: int) -> float:
        """Put `weights` in the object store once and send every actor a reference; the seconds taken."""
        started = time.perf_counter()
        reference = self.ray.put(weights)
        self._latest_weights = (reference, version, learner_steps)
        for actor in self.actors:
            actor.set_weights.remote(reference, version, learner_steps)
        return time.perf_counter() - started

    def submit(self, index: int, call: Callable[[Any], Any]) -> None:
        """Start `call(actor_handle)` (returning an ObjectRef) on actor `index`."""
        self.pending[call(self.actors[index])] = (index, call)

    def busy(self, index: int) -> bool:
        return any(actor == index for actor, _ in self.pending.values())

    def wait(self, block: bool) -> list[tuple[int, CollectedBatch]]:
        """The batches that are ready (at least one if `block`), by actor; a batch whose actor died is
        dropped and the call is submitted again once Ray has restarted the actor."""
        if not self.pending:
            return []
        references = list(self.pending)
        ready, _ = self.ray.wait(
            references, num_returns=1 if block else len(references), timeout=None if block else 0
        )
        batches = []
        for reference in ready:
            index, call = self.pending.pop(reference)
            try:
                batches.append((index, self.ray.get(reference)))
            except self.ray.exceptions.RayActorError:
                self._recover(index)
                self.submit(index, call)
        return batches

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)

    def _recover(self, index: int) -> None:
        """Wait for Ray to restart actor `index`, then count the restart, note where it now runs and
        send it the latest weights (calls made while it restarts may be lost)."""
        actor = self.actors[index]
        while True:
            try:
                placement = self.ray.get(actor.placement.remote())
                break
            except self.ray.exceptions.ActorUnavailableError:
                time.sleep(RESTART_POLL_SECONDS)
            except self.ray.exceptions.ActorDiedError as error:
                raise RuntimeError(
                    f"actor {index} died and Ray did not restart it (max_restarts exhausted): {error}"
                ) from None
        self.restarts[index] += 1
        self.placements[index] = placement
        if self._latest_weights is not None:
            actor.set_weights.remote(*self._latest_weights)


class Learner(abc.ABC):
    """What both kinds of learner share: the actors, the step count, episodes and the actor log."""

    def __init__(self, info: RunInfo, algorithm: Algorithm, config: DistributedConfig, point: RunPoint):
        self.algorithm = algorithm
        self.config = config
        self.summary_interval = info.config.summary_interval
        self.total_steps = point.total_steps
        self.updates = 0
        self.log = ActorLog(point.run_dir, point.total_steps)
        self._finished: list[FinishedEpisode] = []
        self._clock_start, self._wall_time_before = time.perf_counter(), point.wall_time
        self._started_ray = connect(config)
        try:
            self.pool = ActorPool(info, config, point.env_seed)
        except BaseException:
            self._shutdown()
            raise
        self._log_placements("started", range(len(self.pool)))
        self._reported_restarts = list(self.pool.restarts)
        self._period = _Period(len(self.pool), point.total_steps, self._clock_start, self.updates)
        self.publish()

    @abc.abstractmethod
    def train_iteration(self) -> dict[str, float]:
        """Collect and learn a little; scalar metrics for the trainer (see the subclasses)."""

    def pop_finished_episodes(self) -> list[FinishedEpisode]:
        finished, self._finished = self._finished, []
        return finished

    def training_envs_snapshot(self) -> None:
        """None: the envs live in the actors, so a resumed run starts their episodes over."""
        return None

    def publish(self) -> None:
        self._period.broadcast_seconds.append(
            self.pool.publish(self.algorithm.policy_weights(), self.updates, self.total_steps)
        )

    def close(self) -> None:
        try:
            self.pool.close()
            self.log.write()
        finally:
            self._shutdown()

    def record(self, index: int, batch: CollectedBatch) -> None:
        """Count a batch's steps and episodes and its actor's speed and staleness."""
        self.total_steps += batch.steps
        self._finished.extend(
            FinishedEpisode(self.total_steps, total_return, length) for total_return, length in batch.episodes
        )
        self._period.add(index, batch, self.updates - batch.weights_version)

    def report(self) -> dict[str, float]:
        """Log restarts at once and every actor's figures every `summary_interval` steps; metrics."""
        restarted = [
            index for index, count in enumerate(self.pool.restarts) if count != self._reported_restarts[index]
        ]
        if restarted:
            self._reported_restarts = list(self.pool.restarts)
            self._log_placements("restarted", restarted)
            self.log.write()
        if self.total_steps - self._period.start_step < self.summary_interval:
            return {}
        now = time.perf_counter()
        period, self._period = self._period, _Period(len(self.pool), self.total_steps, now, self.updates)
        updates_per_second = (self.updates - period.start_updates) / max(now - period.start_time, 1e-9)
        for index in range(len(self.pool)):
            self.log.add(
                **self._row(index, "report"),
                steps_per_second=period.steps_per_second(index),
                weight_staleness=period.staleness(index),
                learner_updates_per_second=updates_per_second,
            )
        self.log.write()
        return {
            "actors/steps_per_second": sum(period.steps_per_second(i) or 0.0 for i in range(len(self.pool))),
            "actors/weight_staleness": period.staleness(None) or 0.0,
            "actors/weights_broadcast_seconds": float(np.mean(period.broadcast_seconds or [0.0])),
            "learner/updates_per_second": updates_per_second,
        }

    def _log_placements(self, event: str, indices: Sequence[int]) -> None:
        for index in indices:
            self.log.add(**self._row(index, event))

    def _row(self, index: int, event: str) -> dict[str, object]:
        placement = self.pool.placements[index]
        wall_time = self._wall_time_before + time.perf_counter() - self._clock_start
        return {
            "step": self.total_steps,
            "wall_time": round(wall_time, 3),
            "actor": index,
            "event": event,
            "node_id": placement.node_id,
            "pid": placement.pid,
            "restarts": self.pool.restarts[index],
        }

    def _shutdown(self) -> None:
        if self._started_ray:
            import_ray().shutdown()


class _Period:
    """Figures gathered since the last report."""

    def __init__(self, actors: int, start_step: int, start_time: float, start_updates: int):
        self.start_step, self.start_time, self.start_updates = start_step, start_time, start_updates
        self.steps = [0] * actors
        self.seconds = [0.0] * actors
        self.staleness_sums = [0.0] * actors
        self.batches = [0] * actors
        self.broadcast_seconds: list[float] = []

    def add(self, index: int, batch: CollectedBatch, staleness: int) -> None:
        self.steps[index] += batch.steps
        self.seconds[index] += batch.seconds
        self.staleness_sums[index] += staleness
        self.batches[index] += 1

    def steps_per_second(self, index: int) -> float | None:
        return self.steps[index] / self.seconds[index] if self.seconds[index] > 0 else None

    def staleness(self, index: int | None) -> float | None:
        """Mean staleness of actor `index`'s batches, or of all batches for None."""
        sums = self.staleness_sums if index is None else [self.staleness_sums[index]]
        counts = self.batches if index is None else [self.batches[index]]
        return sum(sums) / sum(counts) if sum(counts) else None


class ReplayLearner(Learner):
    """Off-policy: actors fill the replay buffer while the rate limiter paces learning against them."""

    def __init__(self, info: RunInfo, algorithm: Algorithm, config: DistributedConfig, point: RunPoint):
        super().__init__(info, algorithm, config, point)
        training = info.config
        self.samples_per_round = training.gradient_steps * training.batch_size
        ratio = config.samples_per_insert or self.samples_per_round / (
            training.train_freq * training.num_envs
        )
        self.batch_items = [config.steps_per_batch * envs for envs in self.pool.num_envs]
        self.limiter = SampleToInsertRatio(
            ratio,
            min_size_to_sample=max(training.learning_starts, 1),
            # room for one batch in flight from every actor and one round of learning: never a deadlock
            error_buffer=sum(self.batch_items) * ratio + self.samples_per_round,
            inserted=algorithm.replay.num_frames,
        )
        self._observations: np.ndarray | None = None  # where the last batch's envs act next
        self._request_allowed()

    def train_iteration(self) -> dict[str, float]:
        arrived = self.pool.wait(block=False)
        if not arrived and not self._can_learn():
            arrived = self.pool.wait(block=True)
        for index, batch in arrived:
            self._store(index, batch)
        metrics = {}
        if self._can_learn():
            metrics = self.algorithm.learn(self._observations, self.total_steps)
            self.limiter.sample(self.samples_per_round)
            self.updates += 1
            if self.updates % self.config.weight_sync_interval == 0:
                self.publish()
        self._request_allowed()
        return metrics | self.report()

    def _can_learn(self) -> bool:
        return self.algorithm.ready_to_learn() and self.limiter.can_sample(self.samples_per_round)

    def _store(self, index: int, batch: CollectedBatch) -> None:
        """Store a batch in the replay buffer, whose rows then hold the actors' batches one after
        another; the batch's last step is stored as truncated, so no n-step window runs on into
        another actor's steps (it bootstraps from that step's true next observation instead)."""
        self.algorithm.update_observation_statistics(
            np.concatenate([transition.next_observations for transition in batch.transitions])
        )
        *steps, last = batch.transitions
        for transition in steps:
            self.algorithm.store(transition)
        self.algorithm.store(dataclasses.replace(last, truncated=np.ones_like(last.truncated)))
        self._observations = batch.transitions[-1].next_observations
        self.limiter.insert(batch.steps, self.batch_items[index])
        self.record(index, batch)

    def _request_allowed(self) -> None:
        """Ask every idle actor for a batch, as far as the rate limiter allows."""
        steps = self.config.steps_per_batch
        for index in range(len(self.pool)):
            items = self.batch_items[index]
            if not self.pool.busy(index) and self.limiter.can_request(items):
                self.limiter.request(items)
                self.pool.submit(index, lambda actor: actor.collect_transitions.remote(steps))


class RolloutLearner(Learner):
    """On-policy: one rollout from every actor with the same weights, then one update."""

    def train_iteration(self) -> dict[str, float]:
        for index in range(len(self.pool)):
            self.pool.submit(index, lambda actor: actor.collect_rollout.remote())
        rollouts: dict[int, Rollout] = {}
        while len(rollouts) < len(self.pool):
            for index, batch in self.pool.wait(block=True):
                rollouts[index] = batch.rollout
                self.record(index, batch)
        # side by side on the env axis, actor by actor: the rollout of one process with num_envs envs
        rollout = Rollout(
            *(
                np.concatenate(parts, axis=1)
                for parts in zip(*(rollouts[i] for i in sorted(rollouts)), strict=True)
            )
        )
        observations = rollout.observations.reshape(-1, *rollout.observations.shape[2:])
        self.algorithm.update_observation_statistics(observations)
        metrics = self.algorithm.learn_from_rollout(rollout, self.total_steps)
        self.updates += 1
        self.publish()
        return metrics | self.report()

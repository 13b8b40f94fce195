"""The Actor: steps environments with a policy for a fixed number of steps or episodes per `run()`.

    actor = Actor("Pendulum-v1", algorithm.collect_policy, steps_per_run=1,
                  observers=[algorithm.store], metrics=collect_metrics(10), summary_dir="runs/x/collect")
    actor.run()         # one step of every env: observers see the Transition, metrics the episodes

`env` is an env id (`num_envs` envs made with it; with the training options of envs that have
them, e.g. the Atari games' clipped rewards and per-life episodes, when `training`, by default
for a collect policy only, so that an evaluation actor scores whole games), a Gymnasium env,
a list of envs or a `SyncVectorEnv` (its envs are stepped directly, reset where an episode ends,
as every gymserve runner does). `policy` is an algorithm's
`collect_policy` (it explores on the env step clock) or any gymserve policy, whose `action` is
taken for the whole batch (stateless policies only). Episodes go on across runs, as in TF-Agents.

A `Learner` given the actor owns its envs' seeding and checkpoints them: on resume it continues
them where the checkpoint left them. Alone, an actor resets env i with seed `seed + i`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gymserve.agents.training.actor_learner.collect_policy import CollectPolicy
from gymserve.agents.training.actor_learner.metrics import EpisodeAverage
from gymserve.agents.training.env_runner import EnvRunner, FinishedEpisode, Transition, make_envs

EnvSource = str | gym.Env | Sequence[gym.Env] | gym.vector.SyncVectorEnv


class Actor:
    """Collects with `policy` in `env`: `steps_per_run` steps of every env, or `episodes_per_run` episodes."""

    def __init__(
        self,
        env: EnvSource,
        policy: Any,
        steps_per_run: int | None = None,
        episodes_per_run: int | None = None,
        observers: Sequence[Callable[[Transition], Any]] = (),
        metrics: Sequence[EpisodeAverage] = (),
        summary_dir: str | Path | None = None,
        num_envs: int | None = None,
        seed: int = 0,
        training: bool | None = None,
    ):
        if (steps_per_run is None) == (episodes_per_run is None):
            raise ValueError(
                "an Actor runs either steps_per_run steps or episodes_per_run episodes: give one"
            )
        count = steps_per_run if episodes_per_run is None else episodes_per_run
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"steps_per_run / episodes_per_run must be a positive integer, got {count!r}")
        if not isinstance(policy, CollectPolicy) and not callable(getattr(policy, "action", None)):
            raise TypeError(
                "an Actor acts with an algorithm's collect_policy or a gymserve policy, "
                f"got {type(policy).__name__}"
            )
        self._collects = isinstance(policy, CollectPolicy)
        if training is None:
            training = self._collects
        self._make_envs, self.num_envs, self._owns_envs = _env_factory(env, num_envs, policy, training)
        self.policy = policy
        self.steps_per_run = steps_per_run
        self.episodes_per_run = episodes_per_run
        self.observers = list(observers)
        self.metrics = list(metrics)
        self.summary_dir = None if summary_dir is None else Path(summary_dir)
        self.seed = seed
        self.runner: EnvRunner | None = None
        self.keeps_episodes = False  # set by a Learner, which records the finished episodes
        self._finished: list[FinishedEpisode] = []
        self._summaries = None

    def start(self, seed: int, total_steps: int = 0, snapshot: bytes | None = None) -> None:
        """(Re)start the envs: reset env i with seed `seed + i`, or continue `snapshot`
        (`EnvRunner.snapshot`); the step count continues from `total_steps`. Envs the actor made
        are closed and made anew; envs given to it are reset where they are, still open."""
        self.release()
        statistics = self.policy.update_observation_statistics if self._collects else None
        if snapshot is not None:
            self.runner = EnvRunner.from_snapshot(snapshot, total_steps, statistics)
        else:
            self.runner = EnvRunner(self._make_envs(), seed, total_steps, statistics)

    @property
    def total_steps(self) -> int:
        """Env steps taken so far (continuing a resumed run's count under a Learner)."""
        return self._started().total_steps

    @property
    def observations(self) -> np.ndarray:
        """Where every env acts next."""
        return self._started().observations

    def run(self) -> None:
        """Step until `steps_per_run` steps of every env, or `episodes_per_run` episodes, are done."""
        runner = self._started()
        steps = episodes = 0
        steps_wanted, episodes_wanted = self.steps_per_run or 0, self.episodes_per_run or 0
        while steps < steps_wanted or episodes < episodes_wanted:
            transition = runner.step(self._actions(runner))
            if self._collects:
                self.policy.acted(transition)
            for observer in self.observers:
                observer(transition)
            steps += 1
            finished = runner.pop_finished_episodes()
            episodes += len(finished)
            for episode in finished:
                for metric in self.metrics:
                    metric(episode)
            if self.keeps_episodes:
                self._finished.extend(finished)
        self._write_summaries()

    def pop_finished_episodes(self) -> list[FinishedEpisode]:
        """The episodes finished since the last call (kept only while a Learner uses the actor)."""
        finished, self._finished = self._finished, []
        return finished

    def release(self) -> None:
        """Back to unstarted (a Learner that failed to start hands the actor back so): envs the
        actor made are closed, envs given to it stay open."""
        if self.runner is not None and self._owns_envs:
            self.runner.close()
        self.runner = None
        self.keeps_episodes = False

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()
        if self._summaries is not None:
            self._summaries.close()

    def _started(self) -> EnvRunner:
        if self.runner is None:
            self.start(self.seed)
        return self.runner

    def _actions(self, runner: EnvRunner) -> np.ndarray:
        if self._collects:
            return self.policy.actions(runner.observations, runner.total_steps)
        return np.asarray(self.policy.action(runner.observations).action)

    def _write_summaries(self) -> None:
        if self.summary_dir is None or not self.metrics:
            return
        import tensorflow as tf

        from gymserve.agents.training.actor_learner.summaries import write_scalar

        if self._summaries is None:
            self._summaries = tf.summary.create_file_writer(str(self.summary_dir))
        with self._summaries.as_default(step=self.total_steps):
            for metric in self.metrics:
                write_scalar(f"Metrics/{metric.name}", metric.result())


def _env_factory(
    env: EnvSource, num_envs: int | None, policy: Any, training: bool
) -> tuple[Callable[[], list[gym.Env]], int, bool]:
    """What makes the actor's envs, how many, and whether the actor made them (and so may close
    them on a restart); checked now so that a wrong `env` fails at construction."""
    if isinstance(env, str):
        count = num_envs or (policy.algorithm.config.num_envs if isinstance(policy, CollectPolicy) else 1)
        gym.spec(env)  # an unknown id fails here, not when the envs are made
        return lambda: make_envs(env, count, training), count, True
    if isinstance(env, gym.vector.SyncVectorEnv):
        envs = list(env.envs)
    elif isinstance(env, gym.Env):
        envs = [env]
    elif isinstance(env, Sequence) and env and all(isinstance(item, gym.Env) for item in env):
        envs = list(env)
    else:
        raise TypeError(
            f"an Actor steps an env id, a gymnasium Env, a list of them or a SyncVectorEnv, got {env!r}"
        )
    if num_envs is not None and num_envs != len(envs):
        raise ValueError(f"num_envs={num_envs} but {len(envs)} envs were given")
    return lambda: envs, len(envs), False

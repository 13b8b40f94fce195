"""The Learner: a run's learning side, which `gymserve train` and a user's own loop share.

    algorithm = make_algorithm("sac", "Pendulum-v1", {"max_steps": 20_000})
    actor = Actor("Pendulum-v1", algorithm.collect_policy, steps_per_run=1, observers=[algorithm.store])
    learner = Learner(algorithm, "runs/sac", actor=actor, triggers=[triggers.CheckpointTrigger()])
    for _ in range(20_000):
        actor.run()
        loss_info = learner.run(iterations=1)   # LossInfo(loss, extra): the update's losses
                                                # (every train_freq actor steps, as gymserve train)
    learner.finish()                            # the final evaluation and 'latest' checkpoint

Experience comes from exactly one source (collection.py): a user-held `actor` (off-policy
algorithms: the actor's observers store into the replay, the learner takes the gradient steps),
`collects=True` (the algorithm steps its own envs, as `gymserve train` does; every algorithm), or
`distributed=DistributedConfig(...)` (Ray actors, gymserve.agents.distributed).

A Learner on a run directory that holds a checkpoint resumes it: the algorithm's variables and
state, the step count, wall time and history, and the training envs mid-episode where they
pickle (the actor's too), so the loop goes on as the uninterrupted one would. Each iteration
records the episodes that ended (history.csv), TensorBoard summaries every `summary_interval`
steps and the progress bar; the triggers (triggers.py) do the rest: evaluations, exports,
checkpoints. `gymserve train` is this learner with `collects=True`, `triggers.default_triggers`
and the config's stop rules (trainer.py).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.training.actor_learner.actor import Actor
from gymserve.agents.training.actor_learner.collect_policy import CollectPolicy
from gymserve.agents.training.actor_learner.collection import ActorCollection, Collection, LocalCollection
from gymserve.agents.training.actor_learner.state import TrainerState
from gymserve.agents.training.actor_learner.summaries import write_scalar
from gymserve.agents.training.actor_learner.triggers import Trigger
from gymserve.agents.training.checkpoints import TRAINING_ENVS_FILE, CheckpointStore
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.agents.training.preflight import check_output_paths
from gymserve.agents.training.runs import EVAL_SEED_OFFSET, open_run_dir

if TYPE_CHECKING:
    from gymserve.agents.distributed.cluster import DistributedConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LossInfo:
    """What `Learner.run` learned: `loss`, the sum of the losses (None before the first update),
    and `extra`, every metric of the iterations by name (averaged over them)."""

    loss: float | None
    extra: dict[str, float]


class Learner:
    """Trains `algorithm` into `run_dir` from one source of experience, with `triggers` between iterations."""

    def __init__(
        self,
        algorithm: Algorithm,
        run_dir: str | Path,
        actor: Actor | None = None,
        triggers: Sequence[Trigger] = (),
        collects: bool = False,
        distributed: DistributedConfig | None = None,
        progress_bar: bool = False,
    ):
        sources = [actor is not None, bool(collects), distributed is not None]
        if sources.count(True) != 1:
            raise ValueError(
                "a Learner learns from exactly one source of experience: actor=Actor(...) that your loop "
                "runs, collects=True (the algorithm steps its own envs, as gymserve train does), or "
                "distributed=DistributedConfig(...) (Ray actors)"
            )
        if algorithm.run_info is None:
            raise ValueError(
                "the Learner needs the algorithm's env id and config: build it with "
                "make_algorithm(name, env_id, config)"
            )
        if actor is not None:
            _check_actor(algorithm, actor)
        self.algorithm = algorithm
        self.info = algorithm.run_info
        self.config = self.info.config
        self.run_dir = Path(run_dir)
        self.checkpoints = CheckpointStore(self.run_dir)
        self.evaluation_listeners: list[Callable[[TrainerState], bool]] = []
        self.stop_requested = False  # an evaluation listener returned True
        if distributed is not None:
            from gymserve.agents.distributed.learner import check_trainable_with_actors

            check_trainable_with_actors(self.info, algorithm, distributed)
        check_output_paths(self.run_dir, self.config)
        resuming = open_run_dir(self.run_dir, self.info)
        self.checkpoints.remove_unreferenced()
        self.state, self.history = TrainerState(), History(self.config.mean_return_window)
        latest = self.checkpoints.path("latest") if resuming else None
        if latest is not None:
            algorithm.restore(latest)
            self.state = TrainerState.from_checkpoint(self.checkpoints.trainer_state("latest"))
            self.history = History.read(latest / HISTORY_FILE, self.config.mean_return_window)
            logger.info(
                "resuming %s from step %d (checkpoint %s)", self.run_dir, self.state.total_steps, latest
            )
        self.started_at_step = self.state.total_steps
        self.triggers = list(triggers)
        for trigger in self.triggers:  # before any env or writer is started: a bad trigger stops here
            trigger.attach(self)
        self.collection = self._collection(actor, distributed, latest)
        try:
            self._start_session(progress_bar)
        except BaseException:
            self.collection.close()  # Ray actors or the learner's own envs, started just now
            if actor is not None:
                actor.release()  # unstarted again, for another Learner
            raise

    def run(self, iterations: int = 1) -> LossInfo:
        """`iterations` iterations of learning, each followed by the triggers. With a user's actor an
        iteration is one round of gradient steps (once the replay holds learning_starts transitions)
        after every `train_freq` steps the actor took of each env, as in `gymserve train`: a call
        before the actor has taken them learns nothing and returns LossInfo(None, {})."""
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
        if iterations > 1 and isinstance(self.collection, ActorCollection):
            raise ValueError(
                "with an Actor, call run() once after each actor.run(): the learner learns as the "
                "actor's steps complete train_freq blocks, so more iterations would find no new steps"
            )
        sums: dict[str, float] = defaultdict(float)
        counts: dict[str, int] = defaultdict(int)
        for _ in range(iterations):
            metrics = self.collection.train_iteration()
            if metrics is None:
                continue
            self._record_iteration(metrics)
            for name, value in metrics.items():
                sums[name] += float(value)
                counts[name] += 1
            for trigger in self.triggers:
                trigger(self)
            if self._checkpoint_names:
                self.save(tuple(self._checkpoint_names))
        extra = {name: total / counts[name] for name, total in sums.items()}
        losses = [value for name, value in extra.items() if name.endswith("loss")]
        return LossInfo(sum(losses) if losses else None, extra)

    def finish(self, evaluate: bool = True) -> None:
        """End the session: a greedy evaluation at the final step (unless just done, or not
        `evaluate`), the 'latest' checkpoint of that step, and the writers closed."""
        try:
            if self.collection.total_steps != self.state.total_steps:
                self._record_iteration({})  # the actor's steps since the last iteration
            names = list(self._checkpoint_names)
            if evaluate and self.state.evaluation_step != self.state.total_steps and self.evaluate():
                names.append("best")
            if self.latest_saved_at != self.state.total_steps and "latest" not in names:
                names.append("latest")
            if names:
                self.save(tuple(names))
        finally:
            self.close()

    def close(self) -> None:
        """Close the progress bar, the summary writer and the learner's own envs (not a user's actor);
        again: nothing."""
        if self._closed:
            return
        self._closed = True
        self.bar.close()
        self.summaries.close()
        self.collection.close()

    def request_checkpoint(self, name: str) -> None:
        """Save checkpoint `name` ('latest' or 'best') once this iteration's triggers have run (asked
        between iterations: after the next one's, or at `finish`)."""
        if name not in self._checkpoint_names:
            self._checkpoint_names.append(name)

    def evaluate(self) -> bool:
        """Run a greedy evaluation, log it, apply the plateau rules; True on a new best return."""
        from gymserve.policies.episodes import evaluate

        state, config = self.state, self.config
        # Minitaur's ten 1000-step episodes take tens of seconds: say why the bar stands still.
        self.bar.set_postfix_str(f"evaluating {config.eval_episodes} greedy episodes", refresh=True)
        evaluation = evaluate(
            self.algorithm.evaluation_policy(),
            self.info.env_id,
            config.eval_episodes,
            "greedy",
            seed=config.seed + EVAL_SEED_OFFSET,
        )
        state.wall_time = self._wall_time()
        state.evaluation_return = evaluation.average_return
        state.evaluation_step = state.total_steps
        self.history.add_evaluation(
            state.total_steps, state.wall_time, evaluation.average_return, evaluation.average_episode_length
        )
        with self.summaries.as_default(step=state.total_steps):
            write_scalar("eval/AverageReturn", evaluation.average_return)
            write_scalar("eval/AverageEpisodeLength", evaluation.average_episode_length)
        improved = (
            state.best_evaluation_return is None or evaluation.average_return > state.best_evaluation_return
        )
        if improved:
            state.best_evaluation_return = evaluation.average_return
            state.best_evaluation_step = state.total_steps
            state.evaluations_without_improvement = state.evaluations_since_learning_rate_change = 0
        else:
            state.evaluations_without_improvement += 1
            state.evaluations_since_learning_rate_change += 1
            self._apply_plateau_rule()
        self.history.write(self.run_dir / HISTORY_FILE)
        self._show_postfix()
        self._log_evaluation()
        for listener in self.evaluation_listeners:
            if listener(state):
                self.stop_requested = True
        return improved

    def save(self, names: tuple[str, ...]) -> None:
        """Write checkpoint `names` of the current step (with the training envs where they pickle)."""
        self.state.wall_time = self._wall_time()
        envs = self.collection.training_envs_snapshot()
        if envs is None and not self._unsaved_envs_reported:
            self._unsaved_envs_reported = True
            logger.warning(
                "the training envs (%s) are not saved in checkpoints (they do not pickle, or Ray actors "
                "run them): a resumed run starts their episodes over",
                self.info.env_id,
            )

        def write(directory: Path) -> None:
            self.algorithm.save(directory)
            self.history.write(directory / HISTORY_FILE)
            if envs is not None:
                (directory / TRAINING_ENVS_FILE).write_bytes(envs)

        self.checkpoints.save(names, self.state.total_steps, dataclasses.asdict(self.state), write)
        self._checkpoint_names = [name for name in self._checkpoint_names if name not in names]
        if "latest" in names:
            self.latest_saved_at = self.state.total_steps
        self.history.write(self.run_dir / HISTORY_FILE)

    @property
    def episodes(self) -> int:
        """Training episodes ended so far, over all sessions."""
        return self._episodes

    def _collection(
        self, actor: Actor | None, distributed: DistributedConfig | None, latest: Path | None
    ) -> Collection:
        """Experience from `actor`, Ray actors or the algorithm's own envs, continuing `latest`'s
        training envs where it saved them."""
        total_steps = self.state.total_steps
        env_seed = _env_seed(self.config.seed, total_steps)
        if distributed is not None:
            from gymserve.agents.distributed.learner import RunPoint, start_learner

            point = RunPoint(self.run_dir, total_steps, self.state.wall_time, env_seed)
            return start_learner(self.info, self.algorithm, distributed, point)
        saved_envs = None if latest is None else latest / TRAINING_ENVS_FILE
        snapshot = saved_envs.read_bytes() if saved_envs is not None and saved_envs.exists() else None
        if latest is not None and snapshot is None:
            logger.info("the checkpoint holds no training envs: their episodes start over")
        if actor is not None:
            actor.start(env_seed, total_steps, snapshot)
            actor.keeps_episodes = True
            return ActorCollection(self.algorithm, actor)
        statistics = self.algorithm.update_observation_statistics
        if snapshot is not None:
            runner = EnvRunner.from_snapshot(snapshot, total_steps, statistics)
        else:
            runner = EnvRunner.make(self.info.env_id, self.config.num_envs, env_seed, total_steps, statistics)
        return LocalCollection(self.algorithm, runner)

    def _start_session(self, progress_bar: bool) -> None:
        import tensorflow as tf
        from tqdm import tqdm

        state = self.state
        self._episodes = self.history.episodes
        self._unsaved_envs_reported = False
        self._closed = False
        self._checkpoint_names: list[str] = []
        self.started = time.perf_counter()
        self.wall_time_before = state.wall_time
        self.metric_sums: dict[str, float] = defaultdict(float)
        self.metric_counts: dict[str, int] = defaultdict(int)
        self.summary_step = state.total_steps
        self.summary_time = self.started
        self.latest_saved_at = state.total_steps if self.checkpoints.path("latest") else None
        self.summaries = tf.summary.create_file_writer(str(self.run_dir / "tensorboard"))
        self.bar = tqdm(
            total=self.config.max_steps,
            initial=min(state.total_steps, self.config.max_steps),
            unit="step",
            file=sys.stderr,
            disable=not progress_bar,
            dynamic_ncols=True,
            desc=f"{self.info.algorithm} {self.info.env_id}",
        )

    def _wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.started

    def _record_iteration(self, metrics: dict[str, float]) -> None:
        previous_steps = self.state.total_steps
        self.state.total_steps = self.collection.total_steps
        wall_time = self._wall_time()
        finished = self.collection.pop_finished_episodes()
        self._episodes += len(finished)
        for episode in finished:
            self.history.add_episode(episode.step, wall_time, episode.total_return, episode.length)
            self._accumulate(
                {"train/episode_return": episode.total_return, "train/episode_length": episode.length}
            )
        self._accumulate(metrics)
        max_steps = self.config.max_steps
        self.bar.update(min(self.state.total_steps, max_steps) - min(previous_steps, max_steps))
        if finished:
            self._show_postfix()
        if self.state.total_steps - self.summary_step >= self.config.summary_interval:
            self._write_summaries()

    def _accumulate(self, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.metric_sums[name] += float(value)
            self.metric_counts[name] += 1

    def _write_summaries(self) -> None:
        now, step = time.perf_counter(), self.state.total_steps
        scalars = {name: total / self.metric_counts[name] for name, total in self.metric_sums.items()}
        scalars["train/steps_per_second"] = (step - self.summary_step) / max(now - self.summary_time, 1e-9)
        scalars["train/learning_rate"] = self.algorithm.learning_rate
        scalars["train/learning_rate_scale"] = self.algorithm.learning_rate_scale
        if self.history.mean_return is not None:
            scalars["train/mean_return"] = self.history.mean_return
        with self.summaries.as_default(step=step):
            for name, value in scalars.items():
                write_scalar(name, value)
        self.metric_sums.clear()
        self.metric_counts.clear()
        self.summary_step, self.summary_time = step, now

    def _apply_plateau_rule(self) -> None:
        patience = self.config.lr_plateau_patience
        if patience is None or self.state.evaluations_since_learning_rate_change < patience:
            return
        self.algorithm.reduce_learning_rate(self.config.lr_plateau_factor, self.config.min_learning_rate)
        self.state.evaluations_since_learning_rate_change = 0

    def _show_postfix(self) -> None:
        postfix = {"episodes": str(self.history.episodes)}
        if self.history.mean_return is not None:
            postfix["mean_return"] = f"{self.history.mean_return:.1f}"
        if self.state.evaluation_return is not None:
            postfix["eval"] = f"{self.state.evaluation_return:.1f}"
            postfix["best"] = f"{self.state.best_evaluation_return:.1f}"
        self.bar.set_postfix(postfix, refresh=False)

    def _log_evaluation(self) -> None:
        """One line per evaluation, which stays on the console (and in logs) as the bar moves on."""
        state, history = self.state, self.history
        mean = "none yet" if history.mean_return is None else f"{history.mean_return:.2f}"
        logger.info(
            "step %d: AverageReturn %.2f, best %.2f at step %d; %d training episodes, mean return %s",
            state.total_steps,
            state.evaluation_return,
            state.best_evaluation_return,
            state.best_evaluation_step,
            history.episodes,
            mean,
        )


def _check_actor(algorithm: Algorithm, actor: Actor) -> None:
    """An actor feeds a learner only by exploring with its algorithm and storing into its replay."""
    algorithm.collect_policy  # noqa: B018 - on-policy algorithms refuse here, pointing at collects=True
    if not (isinstance(actor.policy, CollectPolicy) and actor.policy.algorithm is algorithm):
        raise ValueError(
            "the Learner's actor must act with the algorithm's exploring behaviour: "
            "Actor(env, algorithm.collect_policy, ...)"
        )
    if not any(observer == algorithm.store for observer in actor.observers):
        raise ValueError(
            "the actor's transitions never reach the replay buffer: give it observers=[algorithm.store, ...]"
        )
    if actor.runner is not None:
        raise ValueError(
            "give the actor to the Learner before running it: the Learner seeds and resumes its envs"
        )
    config = algorithm.config
    if actor.num_envs != config.num_envs:
        raise ValueError(
            f"the actor steps {actor.num_envs} envs but the algorithm's config has num_envs="
            f"{config.num_envs}: the replay stores one row per env; make them equal"
        )
    if actor.steps_per_run is None or config.train_freq % actor.steps_per_run:
        runs = f"steps_per_run={actor.steps_per_run}" if actor.steps_per_run else "episodes_per_run"
        raise ValueError(
            f"the algorithm learns every train_freq={config.train_freq} steps of each env, as gymserve "
            f"train does, which an actor with {runs} cannot match: give it a steps_per_run that "
            f"divides train_freq (steps_per_run=1 always does), or set train_freq in the config"
        )


def _env_seed(seed: int, total_steps: int) -> int:
    """Reset seeds for the training envs, distinct for each point a run resumes from."""
    return int(np.random.SeedSequence([seed, total_steps]).generate_state(1)[0])

"""The one training loop: every algorithm runs in it (algorithm.py says what an algorithm supplies).

    result = train("dqn", "gymserve/CartPole-v1", "runs/dqn")   # the same call again resumes

The loop seeds Python, numpy and TensorFlow, then alternates `algorithm.train_iteration(runner)`
with its own duties, checked between iterations against the environment step count:

- every `eval_interval` steps a greedy evaluation over `eval_episodes` episodes on separate envs
  (the same start states each time), logged as AverageReturn and AverageEpisodeLength; a new best
  return saves the 'best' checkpoint, and the plateau and early-stopping rules count evaluations
  without one;
- every `checkpoint_interval` steps the 'latest' checkpoint, which a rerun resumes from with its
  step count, wall time and history, and with everything random the run goes on to use (the
  algorithm's state, the training envs mid-episode: `EnvRunner.snapshot`), so that it continues as
  the uninterrupted run would (the README lists the runs this holds for);
- every `export_every` steps, when set, an export of the policy to `export_to` (periodic_exports.py);
- the history CSV, TensorBoard summaries and a progress bar on stderr.

With `distributed` (gymserve.agents.distributed), Ray actors collect and a learner takes the
runner's place in the loop; every duty above stays the loop's own.

It stops when an evaluation reaches `target_reward`, at `max_steps`, once `max_episodes` training
episodes have ended, by early stopping, or when the caller's `on_evaluation` callback (e.g. a
tuner's pruning rule) asks it to after an evaluation, and
always ends with an evaluation and a 'latest' checkpoint of the final step.

SIGINT or SIGTERM (run in the main thread) stops it after the current iteration with a 'latest'
checkpoint of that step and no final evaluation, so a rerun continues as if never stopped; a
second signal goes to the handler that was there before (Python's raises KeyboardInterrupt).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.training.checkpoints import TRAINING_ENVS_FILE, CheckpointStore
from gymserve.agents.training.config import ResolvedConfig, TrainingConfig
from gymserve.agents.training.env_runner import EnvRunner, FinishedEpisode
from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.agents.training.periodic_exports import PeriodicExports
from gymserve.agents.training.preflight import check_budget, check_output_paths, gradient_steps
from gymserve.agents.training.runs import (
    EVAL_SEED_OFFSET,
    RunInfo,
    build_algorithm,
    open_run_dir,
    run_config,
)

if TYPE_CHECKING:
    from gymserve.agents.distributed.cluster import DistributedConfig

STOP_REQUESTED = "requested"  # the stop reason when `on_evaluation` returned True
INTERRUPTED = "interrupted"  # the stop reason after SIGINT or SIGTERM
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger(__name__)


@dataclass
class TrainerState:
    """The loop's counters, saved in every checkpoint."""

    total_steps: int = 0
    wall_time: float = 0.0  # seconds of training and evaluation, over all sessions
    next_evaluation: int = 0
    next_checkpoint: int = 0
    evaluation_return: float | None = None  # of the latest evaluation
    evaluation_step: int | None = None
    best_evaluation_return: float | None = None
    best_evaluation_step: int | None = None
    evaluations_without_improvement: int = 0
    evaluations_since_learning_rate_change: int = 0


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended."""

    run_dir: Path
    # "target_reward", "max_steps", "max_episodes", "early_stopping", STOP_REQUESTED or INTERRUPTED
    stop_reason: str
    state: TrainerState
    history: History
    interrupt_signal: int | None = None  # the signal number behind INTERRUPTED
    started_at_step: int = 0  # where this call began: the step of the checkpoint it resumed, or 0
    gradient_steps: int = 0  # optimizer updates over the whole run; 0: the policy is untrained

    @property
    def total_steps(self) -> int:
        return self.state.total_steps

    @property
    def wall_time(self) -> float:
        return self.state.wall_time


def train(
    algorithm: str,
    env_id: str,
    run_dir: str | Path,
    config: TrainingConfig | ResolvedConfig | dict[str, Any] | None = None,
    config_file: str | Path | None = None,
    progress_bar: bool = True,
    on_evaluation: Callable[[TrainerState], bool] | None = None,
    distributed: DistributedConfig | None = None,
) -> TrainingResult:
    """Train `algorithm` on `env_id` into `run_dir`, resuming what is there.

    `config` is a full config (resolved, with its sources, by `runs.run_config`), or field
    overrides resolved as `runs.run_config` says.
    `on_evaluation` sees the state after each greedy evaluation; returning True stops the run.
    `distributed` collects with Ray actors (gymserve.agents.distributed) instead of in this process.
    """
    if isinstance(config, TrainingConfig):
        config = ResolvedConfig(config, {})
    elif not isinstance(config, ResolvedConfig):
        config = run_config(algorithm, env_id, run_dir, config_file, overrides=config)
    info = RunInfo(algorithm, env_id, config.config, config.sources)
    return Trainer(info, run_dir, progress_bar, on_evaluation, distributed).run()


class Trainer:
    """Runs one algorithm on one environment into one run directory."""

    def __init__(
        self,
        info: RunInfo,
        run_dir: str | Path,
        progress_bar: bool = True,
        on_evaluation: Callable[[TrainerState], bool] | None = None,
        distributed: DistributedConfig | None = None,
    ):
        self.info = info
        self.config = info.config
        self.run_dir = Path(run_dir)
        self.progress_bar = progress_bar
        self.on_evaluation = on_evaluation
        self.distributed = distributed
        self.checkpoints = CheckpointStore(self.run_dir)

    def run(self) -> TrainingResult:
        check_output_paths(self.run_dir, self.config)
        check_budget(self.info)
        _seed_everything(self.config)
        algorithm = build_algorithm(self.info)  # first, so a bad env or action space leaves no run dir
        if self.distributed is not None:
            from gymserve.agents.distributed.learner import check_trainable_with_actors

            check_trainable_with_actors(self.info, algorithm, self.distributed)
        resuming = open_run_dir(self.run_dir, self.info)
        self.checkpoints.remove_unreferenced()
        state, history = TrainerState(), History(self.config.mean_return_window)
        latest = self.checkpoints.path("latest") if resuming else None
        if latest is not None:
            algorithm.restore(latest)
            state = TrainerState(**self.checkpoints.trainer_state("latest"))
            history = History.read(latest / HISTORY_FILE, self.config.mean_return_window)
            logger.info("resuming %s from step %d (checkpoint %s)", self.run_dir, state.total_steps, latest)
        else:
            state.next_evaluation = self.config.eval_interval
            state.next_checkpoint = self.config.checkpoint_interval
        started_at_step = state.total_steps
        runner = self._collection(algorithm, state, latest)
        try:
            with _StopSignals() as stop_signals:
                stop_reason = _Session(self, algorithm, runner, state, history, stop_signals).run()
        finally:
            runner.close()
        interrupt_signal = stop_signals.received if stop_reason == INTERRUPTED else None
        updates = gradient_steps(algorithm)
        return TrainingResult(
            self.run_dir, stop_reason, state, history, interrupt_signal, started_at_step, updates
        )

    def _collection(self, algorithm: Algorithm, state: TrainerState, latest: Path | None) -> _Collection:
        """Where experience comes from: this process's training envs (as `latest` left them, when
        it saved them), or Ray actors' (a learner)."""
        env_seed = _env_seed(self.config.seed, state.total_steps)
        if self.distributed is not None:
            from gymserve.agents.distributed.learner import RunPoint, start_learner

            point = RunPoint(self.run_dir, state.total_steps, state.wall_time, env_seed)
            return start_learner(self.info, algorithm, self.distributed, point)
        saved_envs = None if latest is None else latest / TRAINING_ENVS_FILE
        if saved_envs is not None and saved_envs.exists():
            runner = EnvRunner.from_snapshot(
                saved_envs.read_bytes(), state.total_steps, algorithm.update_observation_statistics
            )
        else:
            if latest is not None:
                logger.info("the checkpoint holds no training envs: their episodes start over")
            runner = EnvRunner.make(
                self.info.env_id,
                self.config.num_envs,
                seed=env_seed,
                total_steps=state.total_steps,
                on_observations=algorithm.update_observation_statistics,
            )
        return _LocalCollection(algorithm, runner)


class _StopSignals:
    """SIGINT and SIGTERM recorded for the loop to stop on, while the run lasts (main thread only:
    Python sets signal handlers nowhere else); a second one goes to the handler found before."""

    def __init__(self):
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._handle) for number in STOP_SIGNALS}
        return self

    def __exit__(self, *exception: object) -> None:
        for number, handler in self._previous.items():
            # None: a handler set outside Python, which cannot be put back; the default stands in.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous = {}

    def _handle(self, number: int, frame: Any) -> None:
        if self.received is None:
            self.received = number  # the loop logs it: a handler should only record
            return
        previous = self._previous.get(number)
        self.__exit__()
        if callable(previous):
            previous(number, frame)
        elif previous != signal.SIG_IGN:
            signal.raise_signal(number)  # the default action: the process ends now


class _Collection(Protocol):
    """What the loop needs of where experience comes from: one iteration of collecting and learning,
    the run's step count and the training episodes that ended."""

    total_steps: int

    def train_iteration(self) -> dict[str, float]: ...

    def pop_finished_episodes(self) -> list[FinishedEpisode]: ...

    def training_envs_snapshot(self) -> bytes | None:
        """The training envs mid-episode for a checkpoint (EnvRunner.snapshot), or None."""

    def close(self) -> None: ...


class _LocalCollection:
    """The algorithm stepping this process's training envs."""

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


class _Session:
    """One process's share of a run: from the resumed state to a stop rule."""

    def __init__(
        self,
        trainer: Trainer,
        algorithm: Algorithm,
        runner: _Collection,
        state: TrainerState,
        history: History,
        stop_signals: _StopSignals,
    ):
        import tensorflow as tf
        from tqdm import tqdm

        self.trainer = trainer
        self.config = trainer.config
        self.algorithm = algorithm
        self.runner = runner
        self.state = state
        self.history = history
        self.episodes = history.episodes  # training episodes ended so far, over all sessions
        self.stop_requested = False
        self.stop_signals = stop_signals
        self.unsaved_envs_reported = False
        self.started = time.perf_counter()
        self.wall_time_before = state.wall_time
        self.metric_sums: dict[str, float] = defaultdict(float)
        self.metric_counts: dict[str, int] = defaultdict(int)
        self.summary_step = state.total_steps
        self.summary_time = self.started
        self.latest_saved_at = state.total_steps if trainer.checkpoints.path("latest") else None
        self.exports = PeriodicExports.for_run(
            self.config, trainer.run_dir, trainer.info.env_id, trainer.info.algorithm, state.total_steps
        )
        self.summaries = tf.summary.create_file_writer(str(trainer.run_dir / "tensorboard"))
        self.bar = tqdm(
            total=self.config.max_steps,
            initial=min(state.total_steps, self.config.max_steps),
            unit="step",
            file=sys.stderr,
            disable=not trainer.progress_bar,
            dynamic_ncols=True,
            desc=f"{trainer.info.algorithm} {trainer.info.env_id}",
        )

    def run(self) -> str:
        state = self.state
        try:
            while (stop_reason := self._stop_reason()) is None:
                metrics = self.runner.train_iteration()
                self._record_iteration(metrics)
                checkpoint_names = []
                if state.total_steps >= state.next_evaluation:
                    state.next_evaluation = _next_multiple(state.total_steps, self.config.eval_interval)
                    if self._evaluate():
                        checkpoint_names.append("best")
                if (
                    self.exports is not None
                ):  # before the checkpoint, so a crash between cannot lose the export
                    evaluated = state.evaluation_step == state.total_steps
                    evaluation_return = state.evaluation_return if evaluated else None
                    self.exports.after_steps(state.total_steps, self.algorithm.policy(), evaluation_return)
                if state.total_steps >= state.next_checkpoint:
                    state.next_checkpoint = _next_multiple(state.total_steps, self.config.checkpoint_interval)
                    checkpoint_names.append("latest")
                if checkpoint_names:
                    self._save(tuple(checkpoint_names))
            final_names = []
            # An interrupted run evaluates when it resumes, at the step the uninterrupted run would.
            evaluate = stop_reason != INTERRUPTED and state.evaluation_step != state.total_steps
            if evaluate and self._evaluate():
                final_names.append("best")
            if self.latest_saved_at != state.total_steps:
                final_names.append("latest")
            if final_names:
                self._save(tuple(final_names))
            return stop_reason
        finally:
            self.bar.close()
            self.summaries.close()

    def _stop_reason(self) -> str | None:
        state, config = self.state, self.config
        target = config.target_reward
        if target is not None and state.evaluation_return is not None and state.evaluation_return >= target:
            return "target_reward"
        if self.stop_requested:
            return STOP_REQUESTED
        if self.stop_signals.received is not None:
            name = signal.Signals(self.stop_signals.received).name
            logger.info("%s: stopping at step %d with a checkpoint", name, state.total_steps)
            return INTERRUPTED
        if state.total_steps >= config.max_steps:
            return "max_steps"
        if config.max_episodes is not None and self.episodes >= config.max_episodes:
            return "max_episodes"
        patience = config.early_stopping_patience
        if patience is not None and state.evaluations_without_improvement >= patience:
            return "early_stopping"
        return None

    def _wall_time(self) -> float:
        return self.wall_time_before + time.perf_counter() - self.started

    def _record_iteration(self, metrics: dict[str, float]) -> None:
        previous_steps = self.state.total_steps
        self.state.total_steps = self.runner.total_steps
        wall_time = self._wall_time()
        finished = self.runner.pop_finished_episodes()
        self.episodes += len(finished)
        for episode in finished:
            self.history.add_episode(episode.step, wall_time, episode.total_return, episode.length)
            self._accumulate(
                {"train/episode_return": episode.total_return, "train/episode_length": episode.length}
            )
        self._accumulate(metrics)
        self.bar.update(
            min(self.state.total_steps, self.config.max_steps) - min(previous_steps, self.config.max_steps)
        )
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
                _write_scalar(name, value)
        self.metric_sums.clear()
        self.metric_counts.clear()
        self.summary_step, self.summary_time = step, now

    def _evaluate(self) -> bool:
        """Run a greedy evaluation, log it, apply the plateau rules; True on a new best return."""
        from gymserve.policies.episodes import evaluate

        state, config = self.state, self.config
        # Minitaur's ten 1000-step episodes take tens of seconds: say why the bar stands still.
        self.bar.set_postfix_str(f"evaluating {config.eval_episodes} greedy episodes", refresh=True)
        evaluation = evaluate(
            self.algorithm.evaluation_policy(),
            self.trainer.info.env_id,
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
            _write_scalar("eval/AverageReturn", evaluation.average_return)
            _write_scalar("eval/AverageEpisodeLength", evaluation.average_episode_length)
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
        self.history.write(self.trainer.run_dir / HISTORY_FILE)
        self._show_postfix()
        self._log_evaluation()
        if self.trainer.on_evaluation is not None and self.trainer.on_evaluation(state):
            self.stop_requested = True
        return improved

    def _apply_plateau_rule(self) -> None:
        patience = self.config.lr_plateau_patience
        if patience is None or self.state.evaluations_since_learning_rate_change < patience:
            return
        self.algorithm.reduce_learning_rate(self.config.lr_plateau_factor, self.config.min_learning_rate)
        self.state.evaluations_since_learning_rate_change = 0

    def _save(self, names: tuple[str, ...]) -> None:
        self.state.wall_time = self._wall_time()

        envs = self.runner.training_envs_snapshot()
        if envs is None and not self.unsaved_envs_reported:
            self.unsaved_envs_reported = True
            logger.warning(
                "the training envs (%s) are not saved in checkpoints (they do not pickle, or Ray actors "
                "run them): a resumed run starts their episodes over",
                self.trainer.info.env_id,
            )

        def write(directory: Path) -> None:
            self.algorithm.save(directory)
            self.history.write(directory / HISTORY_FILE)
            if envs is not None:
                (directory / TRAINING_ENVS_FILE).write_bytes(envs)

        self.trainer.checkpoints.save(names, self.state.total_steps, dataclasses.asdict(self.state), write)
        if "latest" in names:
            self.latest_saved_at = self.state.total_steps
        self.history.write(self.trainer.run_dir / HISTORY_FILE)

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


def _write_scalar(name: str, value: float) -> None:
    """A TensorBoard scalar through core TensorFlow (the tensorboard package is not needed to write)."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(name, tf.constant(value, tf.float32), metadata=metadata)


def _seed_everything(config: TrainingConfig) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if config.deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def _env_seed(seed: int, total_steps: int) -> int:
    """Reset seeds for the training envs, distinct for each point a run resumes from."""
    return int(np.random.SeedSequence([seed, total_steps]).generate_state(1)[0])


def _next_multiple(step: int, interval: int) -> int:
    return (step // interval + 1) * interval

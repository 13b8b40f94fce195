"""The one training loop: every algorithm runs in it (algorithm.py says what an algorithm supplies).

    result = train("dqn", "gymserve/CartPole-v1", "runs/dqn")   # the same call again resumes

It is a user of the library pieces (actor_learner/): `make_algorithm`'s seeded algorithm, a
`Learner` that collects with the algorithm's own envs (`algorithm.train_iteration(runner)`), and
the default triggers, which do the duties below between iterations, checked against the
environment step count; this module adds the stop rules and signal handling:

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

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gymserve.agents.training.actor_learner.algorithms import build_seeded
from gymserve.agents.training.actor_learner.learner import Learner
from gymserve.agents.training.actor_learner.state import TrainerState
from gymserve.agents.training.actor_learner.triggers import default_triggers
from gymserve.agents.training.config import ResolvedConfig, TrainingConfig
from gymserve.agents.training.history import History
from gymserve.agents.training.preflight import check_budget, check_output_paths, gradient_steps
from gymserve.agents.training.runs import RunInfo, run_config

if TYPE_CHECKING:
    from gymserve.agents.distributed.cluster import DistributedConfig

__all__ = ["INTERRUPTED", "STOP_REQUESTED", "Trainer", "TrainerState", "TrainingResult", "train"]

STOP_REQUESTED = "requested"  # the stop reason when `on_evaluation` returned True
INTERRUPTED = "interrupted"  # the stop reason after SIGINT or SIGTERM
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

logger = logging.getLogger(__name__)


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

    def run(self) -> TrainingResult:
        check_output_paths(self.run_dir, self.config)
        check_budget(self.info)
        algorithm = build_seeded(self.info)  # first, so a bad env or action space leaves no run dir
        learner = Learner(
            algorithm,
            self.run_dir,
            triggers=default_triggers(self.config, self.on_evaluation),
            collects=self.distributed is None,
            distributed=self.distributed,
            progress_bar=self.progress_bar,
        )
        try:
            with _StopSignals() as stop_signals:
                while (stop_reason := _stop_reason(learner, stop_signals)) is None:
                    learner.run(iterations=1)
                # An interrupted run evaluates when it resumes, at the step the uninterrupted run would.
                learner.finish(evaluate=stop_reason != INTERRUPTED)
        finally:
            learner.close()
        interrupt_signal = stop_signals.received if stop_reason == INTERRUPTED else None
        return TrainingResult(
            self.run_dir,
            stop_reason,
            learner.state,
            learner.history,
            interrupt_signal,
            learner.started_at_step,
            gradient_steps(algorithm),
        )


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


def _stop_reason(learner: Learner, stop_signals: _StopSignals) -> str | None:
    """Which of the config's stop rules holds now, if any."""
    state, config = learner.state, learner.config
    target = config.target_reward
    if target is not None and state.evaluation_return is not None and state.evaluation_return >= target:
        return "target_reward"
    if learner.stop_requested:
        return STOP_REQUESTED
    if stop_signals.received is not None:
        name = signal.Signals(stop_signals.received).name
        logger.info("%s: stopping at step %d with a checkpoint", name, state.total_steps)
        return INTERRUPTED
    if state.total_steps >= config.max_steps:
        return "max_steps"
    if config.max_episodes is not None and learner.episodes >= config.max_episodes:
        return "max_episodes"
    patience = config.early_stopping_patience
    if patience is not None and state.evaluations_without_improvement >= patience:
        return "early_stopping"
    return None

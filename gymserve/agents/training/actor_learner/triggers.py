"""Triggers: what a Learner does between iterations, each on its own schedule of env steps.

    learner = Learner(algorithm, run_dir, actor=actor, triggers=[
        triggers.EvaluationTrigger(),                      # every eval_interval steps: greedy episodes
        triggers.PolicySavedModelTrigger("exports/sac", interval=1000),  # as --export-every
        triggers.CheckpointTrigger(),                      # every checkpoint_interval steps: 'latest'
        triggers.StepPerSecondLogTrigger(interval=1000),
        triggers.IntervalTrigger(500, lambda: print("500 more steps")),
    ])

A trigger is called with the learner after every iteration, in the order given, and fires when
the env step count crosses a multiple of its interval (counted from where the learner started,
so a resumed run fires where the uninterrupted one would). An interval left None takes the
config's field of the same duty. Checkpoints requested during one pass (a new best evaluation,
the 'latest' schedule) are written once, after the last trigger, so an export always precedes
the checkpoint of its step. `gymserve train` runs with `default_triggers(config)`.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gymserve.agents.algorithm import Algorithm
    from gymserve.agents.training.actor_learner.state import TrainerState
    from gymserve.agents.training.config import TrainingConfig
    from gymserve.agents.training.periodic_exports import PeriodicExports
    from gymserve.agents.training.run_info import RunInfo

logger = logging.getLogger(__name__)


class Learner(Protocol):
    """What a trigger sees of the learner (learner.py) it runs in."""

    algorithm: Algorithm
    info: RunInfo
    config: TrainingConfig
    run_dir: Path
    state: TrainerState
    evaluation_listeners: list[Callable[[TrainerState], bool]]

    def evaluate(self) -> bool: ...

    def request_checkpoint(self, name: str) -> None: ...


class Trigger(Protocol):
    def attach(self, learner: Learner) -> None:
        """Called once by the learner, before its first iteration."""

    def __call__(self, learner: Learner) -> None:
        """Called after every iteration."""


class ScheduledTrigger(ABC):
    """Fires each time the env step count crosses a multiple of `interval` (None: the config's)."""

    def __init__(self, interval: int | None = None):
        _check_positive("a trigger's interval", interval)
        self.interval = interval
        self.last_step = 0

    def attach(self, learner: Learner) -> None:
        if self.interval is None:
            self.interval = self.config_interval(learner.config)
        self.last_step = learner.state.total_steps

    def __call__(self, learner: Learner) -> None:
        step = learner.state.total_steps
        crossed = step // self.interval > self.last_step // self.interval
        self.last_step = step
        if crossed:
            self.fire(learner)

    @abstractmethod
    def fire(self, learner: Learner) -> None:
        """What the trigger does when its interval is crossed."""

    def config_interval(self, config: TrainingConfig) -> int:
        """The interval taken from the run's config when none was given."""
        raise ValueError(f"{type(self).__name__} needs an interval of env steps")


class IntervalTrigger(ScheduledTrigger):
    """Calls `fn()` each time the env step count crosses a multiple of `interval`."""

    def __init__(self, interval: int, fn: Callable[[], Any]):
        if interval is None:
            raise ValueError("IntervalTrigger needs an interval of env steps")
        if not callable(fn):
            raise TypeError(f"IntervalTrigger calls fn(), which must be callable, got {fn!r}")
        super().__init__(interval)
        self.fn = fn

    def fire(self, learner: Learner) -> None:
        self.fn()


class EvaluationTrigger(ScheduledTrigger):
    """A greedy evaluation (config.eval_episodes episodes); a new best return saves 'best', and
    `on_evaluation(state)` returning True asks the run to stop (`Learner.stop_requested`)."""

    def __init__(
        self, interval: int | None = None, on_evaluation: Callable[[TrainerState], bool] | None = None
    ):
        super().__init__(interval)
        self.on_evaluation = on_evaluation

    def attach(self, learner: Learner) -> None:
        super().attach(learner)
        if self.on_evaluation is not None:
            learner.evaluation_listeners.append(self.on_evaluation)

    def fire(self, learner: Learner) -> None:
        if learner.evaluate():
            learner.request_checkpoint("best")

    def config_interval(self, config: TrainingConfig) -> int:
        return config.eval_interval


class CheckpointTrigger(ScheduledTrigger):
    """The 'latest' checkpoint, which a new Learner on the same run directory resumes."""

    def fire(self, learner: Learner) -> None:
        learner.request_checkpoint("latest")

    def config_interval(self, config: TrainingConfig) -> int:
        return config.checkpoint_interval


class StepPerSecondLogTrigger(ScheduledTrigger):
    """Logs the env steps per second since it last fired."""

    def attach(self, learner: Learner) -> None:
        super().attach(learner)
        self.since = (learner.state.total_steps, time.perf_counter())

    def fire(self, learner: Learner) -> None:
        now, step = time.perf_counter(), learner.state.total_steps
        rate = (step - self.since[0]) / max(now - self.since[1], 1e-9)
        logger.info("step %d: %.1f steps/s", step, rate)
        self.since = (step, now)

    def config_interval(self, config: TrainingConfig) -> int:
        return config.summary_interval


class PolicySavedModelTrigger:
    """Exports the policy every `interval` env steps to `export_to` (REPOSITORY/NAME)/<step>/, the
    exports of `gymserve train --export-to ... --export-every ...` (periodic_exports.py), keeping
    the newest `keep`; None takes the config's export_to / export_every / export_keep."""

    def __init__(
        self, export_to: str | Path | None = None, interval: int | None = None, keep: int | None = None
    ):
        _check_positive("a trigger's interval", interval)
        _check_positive("keep", keep)
        self.export_to, self.interval, self.keep = export_to, interval, keep
        self.exports: PeriodicExports | None = None
        self.versions: list[Path] = []  # written by this trigger, oldest first

    def attach(self, learner: Learner) -> None:
        from gymserve.agents.training.periodic_exports import PeriodicExports

        config = learner.config
        update = {
            "export_to": str(self.export_to) if self.export_to is not None else config.export_to,
            "export_every": self.interval or config.export_every,
            "export_keep": self.keep or config.export_keep,
        }
        if update["export_to"] is None or update["export_every"] is None:
            raise ValueError(
                "PolicySavedModelTrigger needs where to export (export_to='REPOSITORY/NAME') and how often "
                "(interval=STEPS), as arguments or in the config"
            )
        info = learner.info
        self.exports = PeriodicExports.for_run(
            config.model_copy(update=update),
            learner.run_dir,
            info.env_id,
            info.algorithm,
            learner.state.total_steps,
        )

    def __call__(self, learner: Learner) -> None:
        state = learner.state
        evaluation_return = state.evaluation_return if state.evaluation_step == state.total_steps else None
        version = self.exports.after_steps(state.total_steps, learner.algorithm.policy(), evaluation_return)
        if version is not None:
            self.versions.append(version)


def default_triggers(
    config: TrainingConfig, on_evaluation: Callable[[TrainerState], bool] | None = None
) -> list[Trigger]:
    """What `gymserve train` does between iterations: evaluate, export (when the config asks), checkpoint."""
    exports = [PolicySavedModelTrigger()] if config.export_to and config.export_every else []
    return [EvaluationTrigger(on_evaluation=on_evaluation), *exports, CheckpointTrigger()]


def _check_positive(what: str, value: int | None) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(
            f"{what} must be a positive integer (env steps, or versions for keep), got {value!r}"
        )

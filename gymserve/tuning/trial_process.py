"""One trial, in a process of its own: `python -m gymserve.tuning` < spec.json.

A fresh process per trial because TensorFlow does not give back all the memory of a training run.
The process trains with the one training loop (trainer.py) into the trial's run directory (one
`seed-N` folder per run when the objective trains several seeds), reports the objective after every
greedy evaluation, stops when the pruner says so, and tells the study the outcome (complete or
pruned). If it dies first, the tuner that started it marks the trial failed.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from gymserve.tuning.objective import Evaluation, Objective
from gymserve.tuning.storage import open_storage

if TYPE_CHECKING:
    import optuna

    from gymserve.agents.training.config import TrainingConfig
    from gymserve.agents.training.trainer import TrainerState

PRUNERS = ("median", "none")
EVALUATIONS_AVERAGED = "evaluations_averaged"  # a trial's user attribute, set when it completes


class TrialSpec(BaseModel):
    """Everything a trial process needs, sent by the tuner as JSON on stdin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    storage_url: str
    study_name: str
    trial_id: int
    algorithm: str
    env_id: str
    run_dir: str
    config: dict[str, Any]
    objective: Objective
    pruner: Literal["median", "none"]
    warmup_trials: int


def make_pruner(name: str, warmup_trials: int) -> optuna.pruners.BasePruner:
    """The median rule after `warmup_trials` complete trials, or no pruning."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=warmup_trials)


def run_trial(spec: TrialSpec) -> None:
    import optuna

    from gymserve.agents.training.config import validate_config
    from gymserve.agents.training.registry import algorithm_class
    from gymserve.agents.training.trainer import INTERRUPTED, STOP_REQUESTED, train

    config = validate_config(algorithm_class(spec.algorithm).config_class, spec.config, source="the study")
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=open_storage(spec.storage_url),
        pruner=make_pruner(spec.pruner, spec.warmup_trials),
    )
    trial = optuna.Trial(study, spec.trial_id)
    scores: list[float] = []  # one per finished run
    averaged: list[int] = []  # evaluations each finished run's score averages
    total_steps = 0
    for index in range(spec.objective.seeds):
        seed = config.seed + index
        run_dir = Path(spec.run_dir) if spec.objective.seeds == 1 else Path(spec.run_dir) / f"seed-{seed}"
        reporter = _Reporter(trial, spec.objective, config, scores, first_step=index * config.max_steps)
        result = train(
            spec.algorithm,
            spec.env_id,
            run_dir,
            config.model_copy(update={"seed": seed}),
            progress_bar=False,
            on_evaluation=reporter,
        )
        if result.stop_reason == INTERRUPTED:  # the tuner stopping: a partial run is no score
            raise SystemExit(128 + result.interrupt_signal)
        total_steps += result.total_steps
        trial.set_user_attr("total_steps", total_steps)
        if result.stop_reason == STOP_REQUESTED:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return
        scores.append(reporter.score())
        averaged.append(spec.objective.averaged(len(reporter.evaluations)))
    if spec.objective.target_reward is None:
        trial.set_user_attr(EVALUATIONS_AVERAGED, min(averaged))
    study.tell(trial, statistics.fmean(scores))


class _Reporter:
    """Reports a run's running objective (averaged with the trial's finished runs) after each evaluation.

    Trials are compared at the same steps: evaluations fall at multiples of eval_interval, give or
    take the last rollout; the final one of a run that stops in between is not reported. The runs
    of a trial follow each other on one axis of steps, from `first_step`.
    """

    def __init__(
        self,
        trial: optuna.Trial,
        objective: Objective,
        config: TrainingConfig,
        finished_scores: list[float],
        first_step: int,
    ):
        self.trial, self.objective, self.config = trial, objective, config
        self.finished_scores, self.first_step = finished_scores, first_step
        self.evaluations: list[Evaluation] = []
        self.reported_steps: set[int] = set()

    def score(self) -> float:
        return self.objective.score(self.evaluations, self.config.max_steps)

    def __call__(self, state: TrainerState) -> bool:
        """Report, and whether the pruner stops the trial."""
        self.evaluations.append(Evaluation(state.evaluation_step, state.evaluation_return))
        interval = self.config.eval_interval
        step = self.first_step + state.evaluation_step // interval * interval
        if step not in self.reported_steps:
            self.trial.report(statistics.fmean([*self.finished_scores, self.score()]), step)
            self.reported_steps.add(step)
        return self.trial.should_prune()


def main() -> None:
    run_trial(TrialSpec.model_validate_json(sys.stdin.read()))

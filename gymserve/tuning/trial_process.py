"""One trial, in a process of its own: `python -m gymserve.tuning` < spec.json.

A fresh process per trial because TensorFlow does not give back all the memory of a training run.
The process trains with the one training loop (trainer.py) into the trial's run directory, reports
the objective after every greedy evaluation, stops when the pruner says so, and tells the study
the outcome (complete or pruned). If it dies first, the tuner that started it marks the trial failed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from gymserve.tuning.objective import Evaluation, Objective
from gymserve.tuning.storage import open_storage

if TYPE_CHECKING:
    import optuna

PRUNERS = ("median", "none")


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

    from gymserve.agents.config import validate_config
    from gymserve.agents.registry import algorithm_class
    from gymserve.agents.trainer import STOP_REQUESTED, TrainerState, train

    config = validate_config(algorithm_class(spec.algorithm).config_class, spec.config, source="the study")
    study = optuna.load_study(
        study_name=spec.study_name,
        storage=open_storage(spec.storage_url),
        pruner=make_pruner(spec.pruner, spec.warmup_trials),
    )
    trial = optuna.Trial(study, spec.trial_id)
    evaluations: list[Evaluation] = []
    reported_steps: set[int] = set()

    def report(state: TrainerState) -> bool:
        evaluations.append(Evaluation(state.evaluation_step, state.evaluation_return))
        # Trials are compared at the same steps: evaluations fall at multiples of eval_interval, give or
        # take the last rollout; the final one of a run that stops in between is not reported.
        step = state.evaluation_step // config.eval_interval * config.eval_interval
        if step not in reported_steps:
            trial.report(spec.objective.score(evaluations, config.max_steps), step)
            reported_steps.add(step)
        return trial.should_prune()

    result = train(
        spec.algorithm, spec.env_id, spec.run_dir, config, progress_bar=False, on_evaluation=report
    )
    trial.set_user_attr("total_steps", result.total_steps)
    if result.stop_reason == STOP_REQUESTED:
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        study.tell(trial, spec.objective.score(evaluations, config.max_steps))


def main() -> None:
    run_trial(TrialSpec.model_validate_json(sys.stdin.read()))

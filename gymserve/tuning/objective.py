"""What a trial scores, computed from its greedy evaluations (step, AverageReturn).

Two objectives, both reported after every evaluation, so the pruner compares trials as they train:

- return (maximised): the mean AverageReturn of the last `last_evaluations` greedy evaluations
  (all of them while there are fewer). Trials train to max_steps with no target reward, so the value
  says where a config ends up, not how lucky one evaluation was.
- steps to a target reward (minimised): the environment step of the first evaluation whose
  AverageReturn reaches `target_reward`, which also ends the trial. A trial that has not reached it
  scores between max_steps and 2 * max_steps: max_steps * (1 + shortfall), the shortfall being how
  far its best return is below the target, as a fraction of |target| (at least 1), clipped to [0, 1].

A trial may train `seeds` runs (seeds seed, seed + 1, ...) one after another and scores the mean
of their values: one seed's luck then weighs less in which config wins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class Objective(BaseModel):
    """Which objective a study optimises; stored with the study so every process scores alike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_reward: float | None = Field(
        None, description="Minimise env steps to this greedy return; None maximises the return."
    )
    last_evaluations: int = Field(3, gt=0, description="Evaluations averaged by the return objective.")
    seeds: int = Field(
        1, gt=0, description="Training runs per trial, on consecutive seeds; scored by their mean."
    )

    @property
    def direction(self) -> str:
        return "maximize" if self.target_reward is None else "minimize"

    def describe(self) -> str:
        over_seeds = f", mean over {self.seeds} seeds" if self.seeds > 1 else ""
        if self.target_reward is None:
            return (
                f"mean greedy return of the last {self.last_evaluations} evaluations{over_seeds} (maximised)"
            )
        return f"environment steps to a greedy return of {self.target_reward:g}{over_seeds} (minimised)"

    def averaged(self, evaluations: int) -> int:
        """How many of a run's `evaluations` the return objective averages."""
        return min(evaluations, self.last_evaluations)

    def shortfall(self, max_steps: int, eval_interval: int) -> str | None:
        """Why a run budgeted `max_steps` gives the return objective fewer evaluations than it
        averages (one per multiple of `eval_interval`, and a last one at the end), or None."""
        evaluations = math.ceil(max_steps / eval_interval)
        if self.target_reward is not None or evaluations >= self.last_evaluations:
            return None
        return (
            f"a trial's max_steps {max_steps} at eval_interval {eval_interval} gives {evaluations} "
            f"evaluation(s), fewer than the {self.last_evaluations} the objective averages: it will "
            f"average {evaluations}; raise --max-steps, lower eval_interval in a --config file or "
            "lower --last-evaluations"
        )

    def score(self, evaluations: Sequence[Evaluation], max_steps: int) -> float:
        """The objective's value after `evaluations` (in step order) of a run budgeted `max_steps`."""
        if not evaluations:
            raise ValueError("a trial is scored from at least one evaluation")
        if self.target_reward is None:
            recent = evaluations[-self.last_evaluations :]
            return sum(evaluation.average_return for evaluation in recent) / len(recent)
        for evaluation in evaluations:
            if evaluation.average_return >= self.target_reward:
                return float(evaluation.step)
        best = max(evaluation.average_return for evaluation in evaluations)
        shortfall = (self.target_reward - best) / max(abs(self.target_reward), 1.0)
        return max_steps * (1.0 + min(max(shortfall, 0.0), 1.0))


@dataclass(frozen=True)
class Evaluation:
    step: int
    average_return: float

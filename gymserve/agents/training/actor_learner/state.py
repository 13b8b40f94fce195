"""The learner's counters, saved in every checkpoint (trainer.json)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainerState:
    """Where a run stands: steps, time and the evaluations so far."""

    total_steps: int = 0
    wall_time: float = 0.0  # seconds of training and evaluation, over all sessions
    evaluation_return: float | None = None  # of the latest evaluation
    evaluation_step: int | None = None
    best_evaluation_return: float | None = None
    best_evaluation_step: int | None = None
    evaluations_without_improvement: int = 0
    evaluations_since_learning_rate_change: int = 0

    @classmethod
    def from_checkpoint(cls, values: dict[str, Any]) -> TrainerState:
        """The state a checkpoint's trainer.json holds; fields older versions saved and this one
        derives (the next evaluation and checkpoint steps, now the triggers') are ignored."""
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{name: value for name, value in values.items() if name in names})

"""Hyperparameter tuning: Optuna studies over an algorithm's config, one process per trial.

    from gymserve.tuning import tune
    result = tune("a2c", "gymserve/CartPole-v1", "tuning/a2c", trials=24, jobs=2)   # rerun to add trials

Optuna is an optional dependency (the `tune` extra): importing this package does not need it,
`tune` raises `MissingExtraError` (gymserve.common.extras) saying how to install it. tuner.py
describes a study's run and its output folder, objective.py the objective, search_space.py the
search-space files, reports.py the reports.
"""

from gymserve.tuning.errors import TuningError
from gymserve.tuning.objective import Objective
from gymserve.tuning.search_space import SearchSpace, SearchSpaceError
from gymserve.tuning.storage import StorageError
from gymserve.tuning.tuner import TuningResult, tune

__all__ = [
    "Objective",
    "SearchSpace",
    "SearchSpaceError",
    "StorageError",
    "TuningError",
    "TuningResult",
    "tune",
]

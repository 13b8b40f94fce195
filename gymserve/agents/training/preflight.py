"""Checks before a run trains, for mistakes that would otherwise show only once the time is spent.

- A budget that ends the run before its first gradient step: an off-policy algorithm learns only
  once its replay holds `learning_starts` transitions, so `max_steps` below that (or a replay
  smaller than it) leaves the initial network, which an export would then serve. On-policy
  algorithms end every iteration with an update, and an iteration always runs to its end, so any
  budget reaches one.
- Output folders that cannot be created: a run directory, an export repository or a study's
  folder under a file or an unwritable folder.

    check_budget(info)              # a warning on the log, naming the fields and the fix
    check_output_paths(run_dir, config)  # OutputPathError before anything is built
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.agents.training.registry import REGISTRY

if TYPE_CHECKING:
    from gymserve.agents.algorithm import Algorithm
    from gymserve.agents.training.config import TrainingConfig
    from gymserve.agents.training.runs import RunInfo

logger = logging.getLogger(__name__)


class OutputPathError(ValueError):
    """A run directory or export repository that cannot be created or written."""


def first_update_step(algorithm: str, config: TrainingConfig) -> int | None:
    """The env step count at the end of the iteration that takes a run's first gradient step:
    the first multiple of `train_freq * num_envs` with `learning_starts` transitions stored
    (one per env step). None where every iteration updates (on-policy) or where no step ever
    will (a replay smaller than `learning_starts`: `never_updates`)."""
    if not _on_replay(algorithm, config) or never_updates(algorithm, config):
        return None
    steps_per_iteration = config.train_freq * config.num_envs
    needed = max(config.learning_starts, 1)
    return math.ceil(needed / steps_per_iteration) * steps_per_iteration


def never_updates(algorithm: str, config: TrainingConfig) -> bool:
    """Whether the replay cannot hold `learning_starts` transitions (it keeps `buffer_size //
    num_envs` steps of every env), so no gradient step is ever taken."""
    if not _on_replay(algorithm, config):
        return False
    capacity = config.buffer_size // config.num_envs * config.num_envs
    return capacity < max(config.learning_starts, 1)


def _on_replay(algorithm: str, config: TrainingConfig) -> bool:
    """Whether the algorithm learns from a replay that must first hold `learning_starts`
    transitions: the off-policy skeleton's config (an off-policy algorithm of one's own may
    have another)."""
    replay_fields = ("learning_starts", "train_freq", "buffer_size")
    return REGISTRY[algorithm].family == "off-policy" and all(hasattr(config, name) for name in replay_fields)


def check_budget(info: RunInfo) -> None:
    """Warn, before training, when the run's budget cannot reach its first gradient step."""
    config = info.config
    if never_updates(info.algorithm, config):
        logger.warning(
            "%s will take no gradient step: its replay holds buffer_size %d transitions, fewer than "
            "learning_starts %d; raise buffer_size or lower learning_starts",
            info.algorithm,
            config.buffer_size,
            config.learning_starts,
        )
        return
    first = first_update_step(info.algorithm, config)
    if first is None:
        return
    steps_per_iteration = config.train_freq * config.num_envs
    last = math.ceil(config.max_steps / steps_per_iteration) * steps_per_iteration
    if last < first:
        logger.warning(
            "%s will take no gradient step, so its policy stays untrained: max_steps %d ends the run "
            "before learning starts (learning_starts %d stored transitions); raise --max-steps to at "
            "least %d or lower learning_starts in a --config file",
            info.algorithm,
            config.max_steps,
            config.learning_starts,
            first,
        )


def gradient_steps(algorithm: Algorithm) -> int:
    """Optimizer updates the algorithm has applied over the whole run (its optimizers' step
    counters, which checkpoints keep)."""
    return sum(int(optimizer.iterations.numpy()) for optimizer in algorithm.optimizers().values())


def check_output_paths(run_dir: str | Path, config: TrainingConfig) -> None:
    """Raise OutputPathError if the run directory or the export repository cannot be made."""
    check_creatable_folder(Path(run_dir), "run directory")
    if config.export_to is not None:
        check_creatable_folder(Path(config.export_to), "--export-to")


def check_creatable_folder(path: Path, what: str) -> None:
    """Raise OutputPathError unless `path` is a writable folder or can be made one (its nearest
    existing ancestor is a writable folder); `what` names it in the message."""
    if path.exists():
        if not path.is_dir():
            raise OutputPathError(f"{what} {path} is a file, not a folder; give a folder path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputPathError(f"{what} {path} is not writable")
        return
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"{what} {path} cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path} cannot be created: {ancestor} is not writable")

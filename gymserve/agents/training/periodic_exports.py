"""Exports of the policy while it trains, as numbered versions that a policy server picks up.

    exports = PeriodicExports.for_run(config, run_dir, env_id, algorithm, total_steps)  # None: off
    exports.after_steps(step, algorithm.policy(), evaluation_return)  # after each training iteration

Each time the environment step count crosses a multiple of `export_every`, the policy is exported
in full (SavedModel, ONNX, policy.json) to REPOSITORY/NAME/<step>/. The export is staged in a
hidden folder and renamed into place, so `gymserve serve --repository REPOSITORY`, which skips
hidden folders, never loads half of one. The versions this run wrote are listed in
RUN_DIR/exports.json; with `export_keep` K, the run deletes its own versions beyond the newest K
and never another writer's. An existing version is never overwritten: that export is skipped
with a warning. A failed export (a full disk, a converter error) is a warning too, leaves nothing
in the repository, and training goes on: the run's checkpoints, not its exports, are what a
run resumes and exports from, so a missed version costs nothing that the next one or
`gymserve export RUN_DIR` cannot give back. A resumed run counts
crossings from the step of the checkpoint it resumes, so its numbering continues from there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.agents.training.config import TrainingConfig
from gymserve.agents.training.runs import training_evaluation
from gymserve.common.files import remove_folder, write_text_atomically
from gymserve.policies.metadata import ExportError, TrainingInfo
from gymserve.policies.repository import split_policy_path

if TYPE_CHECKING:
    from gymserve.policies.actor_policy import ActorPolicy

LEDGER_FILE = "exports.json"  # in the run directory: export folder -> the versions this run wrote there

logger = logging.getLogger(__name__)


class PeriodicExports:
    """Exports a run's policy to `directory`/<step>/ every `every` environment steps."""

    def __init__(
        self,
        directory: Path,
        every: int,
        keep: int | None,
        ledger: Path,
        training: TrainingInfo,
        step: int,
        config: TrainingConfig,
    ):
        self.directory = directory.absolute()
        self.every = every
        self.keep = keep
        self.ledger = ledger
        self.training = training  # env id and algorithm; the step and return are filled in per export
        self.last_step = step
        self.config = config  # how the run evaluates: what an export's evaluation field says

    @classmethod
    def for_run(
        cls, config: TrainingConfig, run_dir: Path, env_id: str, algorithm: str, step: int
    ) -> PeriodicExports | None:
        """The exports `config` asks of a run now at `step`, or None when it asks for none."""
        if config.export_to is None or config.export_every is None:
            return None
        repository, name = split_policy_path(config.export_to)
        training = TrainingInfo(env_id=env_id, algorithm=algorithm)
        ledger = run_dir / LEDGER_FILE
        return cls(repository / name, config.export_every, config.export_keep, ledger, training, step, config)

    def after_steps(
        self, step: int, policy: ActorPolicy, evaluation_return: float | None = None
    ) -> Path | None:
        """Export `policy` as version `step` if a multiple of `every` was crossed since the last call.

        `evaluation_return` is the greedy evaluation at `step`, if one ran. Returns the version
        directory written, or None (no multiple crossed, or the export failed or was skipped).
        """
        crossed = step // self.every > self.last_step // self.every
        self.last_step = step
        if not crossed:
            return None
        version = self.directory / str(step)
        if version.exists():
            logger.warning(
                "not exporting the policy at step %d: %s already exists and is not overwritten", step, version
            )
            return None
        from gymserve.policies.export.policy_export import export_policy

        # A SavedModel and an ONNX conversion take seconds: say why training pauses.
        logger.info("exporting the policy at step %d to %s", step, version)
        evaluation = training_evaluation(self.config, evaluation_return)
        training = self.training.model_copy(update={"train_step": step, "evaluation": evaluation})
        try:
            export_policy(policy, version, metadata=training)
        except Exception as error:  # a full disk or a converter failure must not end the training run
            reason = error.reason if isinstance(error, ExportError) else error
            logger.warning(
                "exporting the policy at step %d to %s failed, training goes on: %s", step, version, reason
            )
            return None
        try:
            self._record_and_prune(step)
        except (OSError, ValueError) as error:
            logger.warning("exported %s, but could not record it in %s: %s", version, self.ledger, error)
        return version

    def _record_and_prune(self, step: int) -> None:
        """Add `step` to the versions this run wrote, and delete those of them beyond the newest `keep`."""
        ledger = json.loads(self.ledger.read_text()) if self.ledger.exists() else {}
        versions = sorted({*ledger.get(str(self.directory), []), step})
        deleted = set()
        for old in versions[: -self.keep] if self.keep is not None else []:
            folder = self.directory / str(old)
            try:
                if folder.exists():
                    remove_folder(folder)
                deleted.add(old)
            except OSError as error:  # kept in the ledger: the next export tries again
                logger.warning("could not delete the old export %s: %s", folder, error)
        ledger[str(self.directory)] = [version for version in versions if version not in deleted]
        write_text_atomically(self.ledger, json.dumps(ledger, indent=1))


def exported_versions(run_dir: str | Path, config: TrainingConfig) -> tuple[Path, list[int]] | None:
    """Where `config` exports to (REPOSITORY/NAME, absolute) and the versions of it the run at
    `run_dir` has written and kept, oldest first; None when the config exports nothing."""
    if config.export_to is None or config.export_every is None:
        return None
    repository, name = split_policy_path(config.export_to)
    directory = (repository / name).absolute()
    ledger = Path(run_dir) / LEDGER_FILE
    versions = json.loads(ledger.read_text()).get(str(directory), []) if ledger.exists() else []
    return directory, versions

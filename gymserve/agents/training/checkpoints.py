"""Checkpoints of a run that a SIGKILL at any moment cannot corrupt.

    RUN_DIR/checkpoints/
        latest.json, best.json        which directory each name points to (replaced atomically)
        step-000012000-3f9a1c2e/      one complete checkpoint: variables, state, trainer.json, history,
                                      training_envs.pickle (the envs mid-episode, where they pickle)

A checkpoint is written into a hidden temporary directory, renamed to its final name once
complete, and only then made current by atomically replacing the pointer file. A reader therefore
always finds complete checkpoints; directories no pointer names (from an interrupted write or
superseded) are removed at the next save.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gymserve.common.files import is_staging, staged, write_text_atomically

CHECKPOINT_NAMES = ("latest", "best")
TRAINER_STATE_FILE = "trainer.json"
TRAINING_ENVS_FILE = "training_envs.pickle"


class CheckpointStore:
    """The 'latest' and 'best' checkpoints of one run directory."""

    def __init__(self, run_dir: Path):
        self.directory = Path(run_dir) / "checkpoints"

    def save(
        self, names: tuple[str, ...], step: int, trainer_state: dict[str, Any], write: Callable[[Path], None]
    ) -> Path:
        """Write a checkpoint with `write(directory)` plus `trainer_state`, and point `names` at it."""
        unknown = set(names) - set(CHECKPOINT_NAMES)
        if unknown:
            raise ValueError(f"unknown checkpoint names {sorted(unknown)}; expected {CHECKPOINT_NAMES}")
        self.directory.mkdir(parents=True, exist_ok=True)
        final_name = f"step-{step:09d}-{uuid.uuid4().hex[:8]}"
        final = self.directory / final_name
        with staged(final) as staging:
            staging.mkdir()
            write(staging)
            (staging / TRAINER_STATE_FILE).write_text(json.dumps(trainer_state, indent=1))
        for name in names:
            write_text_atomically(self._pointer(name), json.dumps({"directory": final_name, "step": step}))
        self.remove_unreferenced()
        return final

    def path(self, name: str) -> Path | None:
        """The directory of checkpoint `name`, or None before the first save."""
        if name not in CHECKPOINT_NAMES:
            raise ValueError(f"unknown checkpoint {name!r}; expected one of {', '.join(CHECKPOINT_NAMES)}")
        pointer = self._pointer(name)
        if not pointer.exists():
            return None
        return self.directory / json.loads(pointer.read_text())["directory"]

    def trainer_state(self, name: str) -> dict[str, Any] | None:
        """The trainer state stored with checkpoint `name`, or None before the first save."""
        directory = self.path(name)
        return None if directory is None else json.loads((directory / TRAINER_STATE_FILE).read_text())

    def remove_unreferenced(self) -> None:
        """Delete checkpoint directories (and leftovers of interrupted writes) no pointer names."""
        if not self.directory.exists():
            return
        referenced = {path.name for name in CHECKPOINT_NAMES if (path := self.path(name)) is not None}
        for entry in self.directory.iterdir():
            if entry.is_dir() and entry.name not in referenced:
                shutil.rmtree(entry, ignore_errors=True)
            elif is_staging(entry):
                entry.unlink(missing_ok=True)

    def _pointer(self, name: str) -> Path:
        return self.directory / f"{name}.json"

"""Files and folders written so that a reader, or a kill at any moment, finds the old or the new.

    with staged(path) as staging:     # a hidden sibling: `.NAME.<token>.tmp.SUFFIX`
        write_everything_into(staging)
    # now renamed over `path`; on an exception the staging file or folder is removed instead
    remove_folder(path)               # renamed aside to a hidden name first, then deleted

Checkpoints, run files, histories, exports, plots and videos are all written this way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

STAGING_MARK = ".tmp"


def is_staging(path: Path) -> bool:
    """Whether `path` is a leftover of an interrupted `staged` write."""
    return path.name.startswith(".") and STAGING_MARK in path.suffixes


@contextlib.contextmanager
def staged(path: str | Path) -> Iterator[Path]:
    """A hidden sibling of `path` to write into, renamed over `path` when the block succeeds.

    An existing folder at `path` is moved aside, the new one renamed in, and the old one deleted:
    folders cannot be replaced in one rename. Nothing is created: the block makes the file or folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The staging name ends in the final suffix: some writers (ffmpeg) choose the format by it.
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{STAGING_MARK}{path.suffix}")
    try:
        yield staging
        if path.is_dir() and staging.is_dir():
            previous = _aside(path, "previous")
            path.rename(previous)
            staging.rename(path)
            shutil.rmtree(previous)
        else:
            os.replace(staging, path)
    except BaseException:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | Path, text: str) -> None:
    """Write `text` to `path` through `staged`, flushed to disk before the rename."""
    with staged(path) as staging, open(staging, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())


def remove_folder(path: str | Path) -> None:
    """Delete the folder `path` so that a reader finds it whole or not at all: hidden first, then deleted."""
    path = Path(path)
    removed = _aside(path, "removed")
    path.rename(removed)
    shutil.rmtree(removed)


def _aside(path: Path, why: str) -> Path:
    """A hidden sibling name for `path` that `is_staging` recognises."""
    return path.with_name(f".{path.name}.{why}-{uuid.uuid4().hex[:8]}{STAGING_MARK}")

"""Files and folders written so that a reader, or a kill at any moment, finds the old or the new.

    with staged(path) as staging:     # a hidden sibling: `.NAME.<token>.tmp.SUFFIX`
        write_everything_into(staging)
    # now renamed over `path`; on an exception the staging file or folder is removed instead
    remove_folder(path)               # renamed aside to a hidden name first, then deleted

Checkpoints, run files, histories, exports, plots and videos are all written this way. A write
that fails removes the parent folders `staged` created for it; a write killed outright leaves its
hidden staging name, which `remove_abandoned_staging` deletes later (exports do, after each one).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; abandoned staging is then told by its age alone
    fcntl = None

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
    created = _missing_parents(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The staging name ends in the final suffix: some writers (ffmpeg) choose the format by it.
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{STAGING_MARK}{path.suffix}")
    try:
        yield staging
        if path.is_dir() and staging.is_dir():
            previous = _aside(path, "previous")
            path.rename(previous)
            staging.rename(path)
            # The new folder is in place: a leftover of the old one is hidden, and a later
            # `remove_abandoned_staging` (which may be deleting it right now) finishes the job.
            shutil.rmtree(previous, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        if staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)
        else:
            staging.unlink(missing_ok=True)
        for folder in created:  # deepest first; a folder someone else has filled meanwhile stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


@contextlib.contextmanager
def staged_folder(path: str | Path) -> Iterator[Path]:
    """`staged` for a folder: the staging folder is created, and locked until it is renamed into
    place, so that `remove_abandoned_staging` in another process leaves it alone."""
    with contextlib.ExitStack() as held, staged(path) as staging:  # the lock is released last
        staging.mkdir()
        held.enter_context(_lock(staging))  # a folder just made: no one else knows it yet
        yield staging


def remove_abandoned_staging(folder: str | Path, older_than: float) -> list[Path]:
    """Delete the staging folders in `folder` that writes killed midway left behind; return them.

    Only folders last modified before `older_than` (a `time.time()`) and not locked by a live
    `staged_folder` write count as abandoned, so another process's write in progress is kept.
    """
    removed = []
    for entry in Path(folder).iterdir():
        if not is_staging(entry) or entry.is_symlink() or not entry.is_dir():
            continue
        with contextlib.suppress(OSError):  # gone meanwhile, or not ours to delete: leave it
            if entry.stat().st_mtime >= older_than:
                continue
            with _lock(entry) as locked:
                if locked:
                    shutil.rmtree(entry)
                    removed.append(entry)
    return removed


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


def _missing_parents(path: Path) -> list[Path]:
    """The ancestors of `path` that do not exist yet, deepest first."""
    missing = []
    for parent in path.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[bool]:
    """An exclusive advisory lock on `folder` for the block; yields False when another process holds one.

    The kernel drops the lock when its holder dies, so a killed write never keeps its folder locked.
    """
    if fcntl is None:
        yield True
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(descriptor)


def _aside(path: Path, why: str) -> Path:
    """A hidden sibling name for `path` that `is_staging` recognises."""
    return path.with_name(f".{path.name}.{why}-{uuid.uuid4().hex[:8]}{STAGING_MARK}")

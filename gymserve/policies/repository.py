"""The NAME/VERSION folder layout of a policy repository, read without loading anything.

A policy directory either holds version directories named by decimal integers (`cartpole/1/`,
`cartpole/2/`, ...) or is itself one export, which counts as version 1. A repository is a
directory of policy directories, one per name:

    repository/
        cartpole/1/policy.json ...
        cartpole/2/policy.json ...
        minitaur/policy.json ...        # a single export: minitaur version 1

A version directory name must be a decimal integer that fits in int64 (the wire's version
type). Anything else in a versioned policy directory (another name, an out-of-range number,
a second spelling of a number such as `01` beside `1`, an empty directory still being copied
in) is skipped and reported as an `IgnoredEntry`, so one stray folder never hides the others.

A policy that a program writes into a repository is named REPOSITORY/NAME (`split_policy_path`),
with a NAME that every reader accepts: letters, digits, '.', '_' and '-', not starting with '.'
(hidden entries are skipped) and not a number (which would read as a version).

Hidden entries, among them the staging folders of exports being written or killed midway, are
never versions, and a policy directory holding nothing else has no versions yet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gymserve.common.files import is_staging

UNVERSIONED = 1  # the version of a policy directory that is itself an export
MAX_VERSION = 2**63 - 1  # versions travel as int64
_DECIMAL = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() also accepts "²"
_POLICY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class VersionDirectory:
    """Where one version of a named policy is exported."""

    name: str
    version: int
    path: Path


@dataclass(frozen=True)
class IgnoredEntry:
    """A folder entry that is not a version, as `NAME/ENTRY` relative to the repository, and why."""

    entry: str
    reason: str


@dataclass(frozen=True)
class PolicyDirectory:
    """The versions found in one policy directory and the entries skipped there."""

    versions: list[VersionDirectory] = field(default_factory=list)
    ignored: list[IgnoredEntry] = field(default_factory=list)


def pretrained_repository() -> Path | None:
    """The repository of pretrained policies shipped inside the package, if this build has one."""
    directory = Path(__file__).resolve().parent.parent / "pretrained"
    return directory if directory.is_dir() else None


def scan_policy_directory(name: str, directory: Path) -> PolicyDirectory:
    """The versions of one policy directory (itself as version 1 when it has no version folders).

    A missing directory has no versions; one that cannot be listed raises the OSError.
    """
    if not directory.exists():
        return PolicyDirectory(ignored=[IgnoredEntry(name, "the policy directory does not exist")])
    if not directory.is_dir():
        return PolicyDirectory([VersionDirectory(name, UNVERSIONED, directory)])  # the loader says why
    by_number: dict[int, list[Path]] = {}
    ignored = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        reason = _version_problem(child)
        if reason is None:
            by_number.setdefault(int(child.name), []).append(child)
        elif _DECIMAL.fullmatch(child.name) or not _looks_like_export(directory):
            ignored.append(IgnoredEntry(f"{name}/{child.name}", reason))
    versions = []
    for number, paths in sorted(by_number.items()):
        canonical = [path for path in paths if path.name == str(number)]
        kept = canonical[0] if canonical else paths[0] if len(paths) == 1 else None
        if kept is not None:
            versions.append(VersionDirectory(name, number, kept))
        spellings = ", ".join(path.name for path in paths)
        ignored += [
            IgnoredEntry(f"{name}/{path.name}", f"version {number} is spelled more than once ({spellings})")
            for path in paths
            if path is not kept
        ]
    if not versions and not ignored and not _only_staging(directory):
        versions = [VersionDirectory(name, UNVERSIONED, directory)]  # the loader says what is wrong
    return PolicyDirectory(versions, ignored)


def split_policy_path(path: str) -> tuple[Path, str]:
    """REPOSITORY/NAME as (repository, name); a ValueError says what is wrong with it."""
    repository, separator, name = path.rpartition("/")
    if not separator or not repository:
        raise ValueError(f"{path!r} is not REPOSITORY/NAME, e.g. exports/cartpole")
    if not _POLICY_NAME.fullmatch(name):
        raise ValueError(
            f"{name!r} in {path!r} is not a valid policy name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    if _DECIMAL.fullmatch(name):
        raise ValueError(f"{name!r} in {path!r} is not a valid policy name: a number reads as a version")
    return Path(repository), name


def versioned_policy_name(export_dir: Path) -> str | None:
    """The NAME of an export written to REPOSITORY/NAME/VERSION, or None when `export_dir` is not
    a version directory of a validly named policy."""
    version, name = export_dir.name, export_dir.parent.name
    if not _DECIMAL.fullmatch(version) or int(version) > MAX_VERSION:
        return None
    if not _POLICY_NAME.fullmatch(name) or _DECIMAL.fullmatch(name):
        return None
    return name


def repository_directories(repository: Path) -> dict[str, Path]:
    """The policy directories of a repository, by name. Hidden folders and Python's `__pycache__`
    are not policies: the package's own pretrained repository gets one when pip compiles it."""
    if not repository.is_dir():
        raise FileNotFoundError(
            f"policy repository {repository} is not a directory; expected DIR/NAME/VERSION/"
        )
    return {
        child.name: child
        for child in sorted(repository.iterdir())
        if child.is_dir() and not child.name.startswith(".") and child.name != "__pycache__"
    }


def policy_directories(policies: Mapping[str, Path], repository: Path | None) -> dict[str, Path]:
    """Named policy directories plus those of `repository`; a name may come from one place only."""
    directories = {name: Path(path) for name, path in policies.items()}
    if repository is not None:
        for name, path in repository_directories(repository).items():
            if name in directories:
                raise ValueError(
                    f"policy {name!r} is given as {directories[name]} and also found in {repository}"
                )
            directories[name] = path
    return directories


def _version_problem(child: Path) -> str | None:
    """Why the directory `child` is not a usable version, or None when it is one."""
    if not _DECIMAL.fullmatch(child.name):
        return "not a version: version directories are named by decimal integers"
    if int(child.name) > MAX_VERSION:
        return f"version {child.name} is larger than {MAX_VERSION}, the largest int64"
    try:
        empty = not any(child.iterdir())
    except OSError:
        return None  # unreadable: a version whose loading says why, not a stray folder
    if empty:
        return "empty version directory (an export still being copied in?)"
    return None


def _only_staging(directory: Path) -> bool:
    """Whether `directory` holds nothing but staging folders: its first export is being written, or
    was killed midway. Not a policy yet, so not one that failed to load."""
    entries = list(directory.iterdir())
    return bool(entries) and all(is_staging(entry) for entry in entries)


def _looks_like_export(directory: Path) -> bool:
    """A policy directory that is itself an export: its other entries are the export's own files."""
    return (directory / "policy.json").exists()

"""Loading a policy repository into `ServedPolicies`, and keeping it in step with the disk.

    reloader = PolicyReloader(directories, settings, export_loader("onnx"), served)
    reloader.sync()                  # load what the version policies ask for; once at start
    reloader.start(poll_interval=1)  # then rescan every second (and at once on `rescan()`)

A version is loaded (the export checks its files against their hashes), warmed up with a few
observations, and only then swapped into the catalog, so no request waits for a cold model.
A version that fails shows FAILED with the reason, logged once, and is retried when its files
change (any file added, removed or rewritten, seen by size, times and inode), so a version copied
in file by file is served once complete and a broken one repaired in place is served once
repaired. A failure never replaces a working version: `latest N` keeps older available versions
serving until N newer ones have loaded. Versions that leave the disk or the version policy are
dropped from the catalog; calls already holding them finish on them, and Python frees them
afterwards.

Every version of a name has the observation and action spaces of the version the name serves by
default when it loads; one that differs is FAILED naming both, unless `allow_space_changes`,
since clients built for the old spaces would get INVALID_ARGUMENT from it.

One unreadable directory or broken version never stops the others: a policy directory that
cannot be listed keeps its loaded versions and is reported among the ignored entries, and a
repository that cannot be listed keeps its policies as they are, each problem logged once.
Failure reasons name files relative to the version (`cartpole/3: policy.onnx: ...`), never
server paths, because clients read them.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies.metadata import PolicyLoadError
from gymserve.policies.repository import (
    IgnoredEntry,
    VersionDirectory,
    policy_directories,
    scan_policy_directory,
)
from gymserve.policies.signatures import observation_dtype
from gymserve.serving.server.config import (
    LatestVersions,
    PolicySettings,
    ServerConfigError,
    SpecificVersions,
    UnservablePolicyError,
)
from gymserve.serving.server.logs import log_event
from gymserve.serving.server.served_policies import ServedPolicies, ServedVersion

if TYPE_CHECKING:
    import gymnasium as gym

    from gymserve.policies import Policy

PolicyLoader = Callable[[Path], "Policy"]
WARM_UP_OBSERVATIONS = 4
_Fingerprint = tuple[tuple[str, int, int, int, int], ...]
_Spaces = tuple["gym.Space", "gym.Space"]


@dataclass(frozen=True)
class _Failure:
    """What a failed attempt saw: retried only when the files, or the spaces it was held to, change."""

    fingerprint: _Fingerprint
    spaces: _Spaces | None  # the default version's spaces it differed from; None when it did not load


def export_loader(backend: str) -> PolicyLoader:
    """A loader reading exports with `gymserve.policies.load` on `backend`."""
    from gymserve.policies import load

    return functools.partial(load, backend=backend)


class PolicyReloader:
    """Keeps `served` equal to what the version policies select from the policy directories."""

    def __init__(
        self,
        policies: Mapping[str, Path],
        repository: Path | None,
        settings: Mapping[str, PolicySettings],
        loader: PolicyLoader,
        served: ServedPolicies,
        on_change: Callable[[], None] = lambda: None,
        allow_space_changes: bool = False,
    ):
        self._policies = {name: Path(path) for name, path in policies.items()}
        self._repository = repository
        self._settings = settings
        self._loader = loader
        self.served = served
        self.on_change = on_change  # called after every scan, e.g. to update health
        self._allow_space_changes = allow_space_changes
        self._failures: dict[tuple[str, int], _Failure] = {}
        self._reported: set[tuple[str, str]] = set()
        self._repository_problem = ""
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def first_sync(self) -> None:
        """The start-up scan: refuses a name given twice, a repository that is not a directory, and
        a policy named explicitly whose path is missing or has no version that loads
        (`UnservablePolicyError`); a repository may be empty and fill later."""
        try:
            policy_directories(self._policies, self._repository)
        except (OSError, ValueError) as error:  # an unreadable repository, a name given twice
            raise ServerConfigError(str(error)) from None
        for name, path in self._policies.items():
            if not path.exists():
                raise UnservablePolicyError(f"policy {name!r}: {path} does not exist")
        self.sync()
        for name, path in self._policies.items():
            if not self.served.is_serving(name):
                raise UnservablePolicyError(
                    f"policy {name!r}: {path} has no version that loads ({self._why(name)})"
                )

    def sync(self) -> None:
        """Scan the directories once; load, retry and drop versions as the version policies say."""
        directories = self._directories()
        ignored = []
        for name, directory in directories.items():
            try:
                scan = scan_policy_directory(name, directory)
            except OSError as error:  # its loaded versions keep serving until it can be read again
                ignored.append(IgnoredEntry(name, f"cannot read the policy directory: {error.strerror}"))
                continue
            ignored += scan.ignored
            self._sync_policy(name, {v.version: v for v in scan.versions})
        if not self._repository_problem:
            for name in set(self.served.names()) - set(directories):
                for served in self.served.versions(name):
                    self._unload(name, served.version, "its directory is gone")
        for entry in ignored:
            if (entry.entry, entry.reason) not in self._reported:
                log_event(logging.WARNING, "repository_entry_ignored", entry=entry.entry, reason=entry.reason)
        self._reported = {(entry.entry, entry.reason) for entry in ignored}
        self.served.set_ignored(ignored)
        self.on_change()

    def start(self, poll_interval: float) -> None:
        """Rescan every `poll_interval` seconds (never when 0) and whenever `rescan` is called."""
        self._thread = threading.Thread(
            target=self._run, args=(poll_interval or None,), name="gymserve-reloader", daemon=True
        )
        self._thread.start()

    def rescan(self) -> None:
        """Scan at once (a call before `start` makes the first scan happen as soon as it starts)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, poll_interval: float | None) -> None:
        failure = ""
        while True:
            self._wake.wait(poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.sync()
                failure = ""
            except Exception as error:  # a bug must not end reloading; logged once while it repeats
                if str(error) != failure:
                    log_event(logging.ERROR, "repository_scan_failed", error=str(error), exc_info=error)
                failure = str(error)

    def _directories(self) -> dict[str, Path]:
        """The policy directories by name; only the named ones when the repository cannot be listed
        (its policies then stay as they are)."""
        try:
            directories = policy_directories(self._policies, self._repository)
            problem = ""
        except (OSError, ValueError) as error:
            problem = str(error)
            directories = dict(self._policies)
        if problem and problem != self._repository_problem:
            log_event(logging.ERROR, "repository_unreadable", error=problem)
        elif self._repository_problem and not problem:
            log_event(logging.INFO, "repository_readable")
        self._repository_problem = problem
        return directories

    def _sync_policy(self, name: str, found: dict[int, VersionDirectory]) -> None:
        settings = self._settings.get(name, PolicySettings())
        self.served.set_labels(name, settings.labels)
        labelled = set(settings.labels.values()) & found.keys()
        keep = set(labelled)
        for number in sorted(labelled):
            self._ensure_loaded(found[number])
        policy = settings.versions
        if isinstance(policy, LatestVersions):
            available = 0
            for rank, number in enumerate(sorted(found, reverse=True)):
                if rank >= policy.latest and available >= policy.latest:
                    break  # the newest N are tried; older ones only until N are available
                keep.add(number)
                available += self._ensure_loaded(found[number])
        else:
            chosen = (
                found.keys() & set(policy.specific) if isinstance(policy, SpecificVersions) else found.keys()
            )
            for number in sorted(chosen):
                keep.add(number)
                self._ensure_loaded(found[number])
        for served in self.served.versions(name):
            if served.version not in keep:
                gone = served.version not in found
                self._unload(name, served.version, "its directory is gone" if gone else "the version policy")

    def _ensure_loaded(self, directory: VersionDirectory) -> bool:
        """Load `directory` unless it is loaded, or failed and nothing it depends on changed since;
        True when available."""
        key = (directory.name, directory.version)
        current = self.served.catalog.versions.get(directory.name, {}).get(directory.version)
        if current is not None and current.available:
            return True
        fingerprint = _fingerprint(directory.path)
        default_spaces = self._default_spaces(directory)
        failure = self._failures.get(key)
        if (
            current is not None
            and failure is not None
            and failure.fingerprint == fingerprint
            and (failure.spaces is None or _same_spaces(failure.spaces, default_spaces))
        ):
            return False
        where = {"policy": directory.name, "version": directory.version, "path": str(directory.path)}
        try:
            policy = self._loader(directory.path)
            _warm_up(policy)
        except Exception as error:  # any broken export must leave the other versions serving
            self._fail(directory, _failure_reason(error, directory), _Failure(fingerprint, None), where)
            return False
        spaces = (policy.observation_space, policy.action_space)
        if default_spaces is not None and not _same_spaces(spaces, default_spaces):
            reason = _space_change(
                directory, spaces, default_spaces, self.served.catalog.latest(directory.name)
            )
            self._fail(directory, reason, _Failure(fingerprint, default_spaces), where)
            return False
        self._failures.pop(key, None)
        self.served.add(directory.name, directory.version, policy, _metadata_json(policy))
        described = {"observation_space": str(spaces[0]), "action_space": str(spaces[1])}
        log_event(logging.INFO, "policy_loaded", **where, **described)
        return True

    def _default_spaces(self, directory: VersionDirectory) -> _Spaces | None:
        """The spaces every version of the name must have: those of the version it serves by default."""
        if self._allow_space_changes:
            return None
        default = self.served.catalog.latest(directory.name)
        if default is None or default.version == directory.version:
            return None
        return default.policy.observation_space, default.policy.action_space

    def _fail(self, directory: VersionDirectory, reason: str, failure: _Failure, where: dict) -> None:
        self._failures[(directory.name, directory.version)] = failure
        self.served.add_failure(directory.name, directory.version, reason)
        log_event(logging.ERROR, "policy_load_failed", **where, error=reason)

    def _why(self, name: str) -> str:
        """Why `name` serves nothing, in one line: its versions' errors, or its directory's problems."""
        reasons = [f"version {v.version}: {v.error}" for v in self.served.versions(name)]
        reasons += [
            entry.reason for entry in self.served.catalog.ignored if entry.entry.split("/")[0] == name
        ]
        return " ".join("; ".join(reasons or ["no versions"]).split())

    def _unload(self, name: str, version: int, why: str) -> None:
        self.served.remove(name, version)
        self._failures.pop((name, version), None)
        log_event(logging.INFO, "policy_unloaded", policy=name, version=version, reason=why)


def _warm_up(policy: Policy) -> None:
    """Run a few observations through every path a request can take, before any request does."""
    space = policy.observation_space
    rng = np.random.default_rng(0)
    observations = np.clip(rng.standard_normal((WARM_UP_OBSERVATIONS, *space.shape)), space.low, space.high)
    observations = observations.astype(observation_dtype(space.dtype))  # uint8 frames stay uint8
    policy.action(observations, policy.get_initial_state(WARM_UP_OBSERVATIONS))
    policy.distribution(observations, policy.get_initial_state(WARM_UP_OBSERVATIONS))


def _failure_reason(error: Exception, directory: VersionDirectory) -> str:
    """Why a version failed, naming files relative to the version so no server path leaks."""
    version = f"{directory.name}/{directory.version}"
    if isinstance(error, PolicyLoadError):
        try:
            relative = error.path.relative_to(directory.path).as_posix()
        except ValueError:
            relative = error.path.name
        where = version if relative == "." else f"{version}/{relative}"
        return f"{where}: {error.problem}"
    return f"{type(error).__name__}: {error}".replace(str(directory.path), version)


def _fingerprint(directory: Path) -> _Fingerprint:
    """Every entry under `directory` with its size, change and modification times and inode.

    Cheap (stat only, no reading) and changed by any copy, rewrite, rename or chmod, even by
    tools that keep modification times; an entry that cannot be read counts as its name alone.
    """
    entries = []
    for root, folders, files in os.walk(directory):  # os.walk skips what it cannot list
        for entry in sorted([*folders, *files]):
            path = Path(root, entry)
            try:
                stat = path.stat()
                signature = (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
            except OSError:
                signature = (-1, -1, -1, -1)
            entries.append((path.relative_to(directory).as_posix(), *signature))
    return tuple(sorted(entries))


def _same_spaces(spaces: _Spaces, other: _Spaces | None) -> bool:
    return other is not None and spaces[0] == other[0] and spaces[1] == other[1]


def _space_change(
    directory: VersionDirectory, spaces: _Spaces, default_spaces: _Spaces, default: ServedVersion | None
) -> str:
    """Why a version whose spaces differ from the default version's is not served, naming both."""
    differences = [
        f"{kind} space {new} differs from {old}"
        for kind, new, old in zip(("observation", "action"), spaces, default_spaces, strict=True)
        if new != old
    ]
    served = f"version {default.version}'s" if default is not None else "the served version's"
    return (
        f"{directory.name}/{directory.version}: {' and '.join(differences)} ({served}); "
        "start the server with --allow-space-changes to serve it"
    )


def _metadata_json(policy: Policy) -> str:
    """The export's policy.json contents without file hashes; "{}" for a policy built in process."""
    from pydantic import BaseModel

    metadata = getattr(policy, "metadata", None)
    return metadata.model_dump_json(exclude={"files"}) if isinstance(metadata, BaseModel) else "{}"

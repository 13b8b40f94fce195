"""Loading a policy repository into `ServedPolicies`, and keeping it in step with the disk.

    reloader = PolicyReloader(directories, settings, export_loader("onnx"), served)
    reloader.sync()                  # load what the version policies ask for; once at start
    reloader.start(poll_interval=1)  # then rescan every second (and at once on `rescan()`)

A version is loaded (the export checks its files against their hashes), warmed up with a few
observations, and only then swapped into the catalog, so no request waits for a cold model.
A version that fails shows FAILED with the reason and is retried when its files change; it
never replaces a working version: `latest N` keeps older available versions serving until N
newer ones have loaded. Versions that leave the disk or the version policy are dropped from
the catalog; calls already holding them finish on them, and Python frees them afterwards.
Failure reasons name files relative to the version (`cartpole/3: policy.onnx: ...`), never
server paths, because clients read them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies.metadata import PolicyLoadError
from gymserve.policies.repository import (
    VersionDirectory,
    policy_directories,
    scan_policy_directory,
)
from gymserve.serving.server.config import LatestVersions, PolicySettings, SpecificVersions
from gymserve.serving.server.logs import log_event
from gymserve.serving.server.served_policies import ServedPolicies

if TYPE_CHECKING:
    from gymserve.policies import Policy

PolicyLoader = Callable[[Path], "Policy"]
WARM_UP_OBSERVATIONS = 4
_Fingerprint = tuple[tuple[str, int, int], ...]


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
    ):
        self._policies = dict(policies)
        self._repository = repository
        self._settings = settings
        self._loader = loader
        self.served = served
        self.on_change = on_change  # called after every scan, e.g. to update health
        self._fingerprints: dict[tuple[str, int], _Fingerprint] = {}
        self._reported: set[tuple[str, str]] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> None:
        """Scan the directories once; load, retry and drop versions as the version policies say."""
        directories = policy_directories(self._policies, self._repository)
        ignored = []
        for name, directory in directories.items():
            scan = scan_policy_directory(name, directory)
            ignored += scan.ignored
            self._sync_policy(name, {v.version: v for v in scan.versions})
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
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self, poll_interval: float | None) -> None:
        while True:
            self._wake.wait(poll_interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.sync()
            except Exception as error:  # a vanished or unreadable directory must not end reloading
                log_event(logging.ERROR, "repository_scan_failed", error=str(error), exc_info=error)

    def _sync_policy(self, name: str, found: dict[int, VersionDirectory]) -> None:
        settings = self._settings.get(name, PolicySettings())
        self.served.set_labels(name, settings.labels)
        labelled = set(settings.labels.values()) & found.keys()
        keep = set(labelled)
        for number in labelled:
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
            for number in chosen:
                keep.add(number)
                self._ensure_loaded(found[number])
        for served in self.served.versions(name):
            if served.version not in keep:
                gone = served.version not in found
                self._unload(name, served.version, "its directory is gone" if gone else "the version policy")

    def _ensure_loaded(self, directory: VersionDirectory) -> bool:
        """Load `directory` unless it is loaded, or failed and is unchanged since; True when available."""
        key = (directory.name, directory.version)
        current = self.served.catalog.versions.get(directory.name, {}).get(directory.version)
        fingerprint = _fingerprint(directory.path)
        if current is not None and (current.available or self._fingerprints.get(key) == fingerprint):
            return current.available
        self._fingerprints[key] = fingerprint
        where = {"policy": directory.name, "version": directory.version, "path": str(directory.path)}
        try:
            policy = self._loader(directory.path)
            _warm_up(policy)
        except Exception as error:  # any broken export must leave the other versions serving
            reason = _failure_reason(error, directory)
            self.served.add_failure(directory.name, directory.version, reason)
            log_event(logging.ERROR, "policy_load_failed", **where, error=reason)
            return False
        self.served.add(directory.name, directory.version, policy, _metadata_json(policy))
        spaces = {
            "observation_space": str(policy.observation_space),
            "action_space": str(policy.action_space),
        }
        log_event(logging.INFO, "policy_loaded", **where, **spaces)
        return True

    def _unload(self, name: str, version: int, why: str) -> None:
        self.served.remove(name, version)
        self._fingerprints.pop((name, version), None)
        log_event(logging.INFO, "policy_unloaded", policy=name, version=version, reason=why)


def _warm_up(policy: Policy) -> None:
    """Run a few observations through every path a request can take, before any request does."""
    space = policy.observation_space
    rng = np.random.default_rng(0)
    observations = np.clip(rng.standard_normal((WARM_UP_OBSERVATIONS, *space.shape)), space.low, space.high)
    observations = observations.astype(np.float32)
    policy.action(observations, policy.get_initial_state(WARM_UP_OBSERVATIONS))
    policy.distribution(observations, policy.get_initial_state(WARM_UP_OBSERVATIONS))


def _failure_reason(error: Exception, directory: VersionDirectory) -> str:
    """Why a version failed, naming files relative to the version so no server path leaks."""
    version = f"{directory.name}/{directory.version}"
    if isinstance(error, PolicyLoadError):
        try:
            where = f"{version}/{error.path.relative_to(directory.path).as_posix()}"
        except ValueError:
            where = f"{version}/{error.path.name}"
        return f"{where}: {error.problem}"
    return f"{type(error).__name__}: {error}".replace(str(directory.path), version)


def _fingerprint(directory: Path) -> _Fingerprint:
    """Size and modification time of every file under `directory`: changes when files are copied in."""
    if not directory.is_dir():
        return ()
    return tuple(
        (path.relative_to(directory).as_posix(), stat.st_size, stat.st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and (stat := path.stat())
    )


def _metadata_json(policy: Policy) -> str:
    """The export's policy.json contents without file hashes; "{}" for a policy built in process."""
    from pydantic import BaseModel

    metadata = getattr(policy, "metadata", None)
    return metadata.model_dump_json(exclude={"files"}) if isinstance(metadata, BaseModel) else "{}"

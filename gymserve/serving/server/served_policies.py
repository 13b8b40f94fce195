"""The policies a server answers for: name -> integer version -> a Policy, or why it failed to load.

A request names a version by number, by label (`stable`, `canary`, ...) or not at all, which
means the latest version that loaded, so a broken new export leaves the previous one serving.
A name is healthy while at least one of its versions is available.

Every change (a version added, failed or removed, labels set) builds a new immutable `Catalog`
and swaps it in with one assignment: a call resolves its version from the catalog it read and
finishes on that version even when a reload replaces or removes it meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from gymserve.serving.server.echo import echo

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.policies.repository import IgnoredEntry


class PolicyNotFoundError(LookupError):
    """No policy of that name, or no version of that number or label."""


class PolicyUnavailableError(LookupError):
    """The policy or version exists but failed to load."""


@dataclass(frozen=True)
class ServedVersion:
    """One version of a policy: the loaded policy, or the error that kept it from loading."""

    name: str
    version: int
    policy: Policy | None
    metadata_json: str = "{}"
    error: str = ""

    @property
    def available(self) -> bool:
        return self.policy is not None


@dataclass(frozen=True)
class Catalog:
    """One consistent view of every policy version, label and ignored repository entry."""

    versions: Mapping[str, Mapping[int, ServedVersion]] = field(default_factory=dict)
    labels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    ignored: Sequence[IgnoredEntry] = ()
    _latest: Mapping[str, ServedVersion] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        latest = {}  # found once per catalog, not once per call
        for name, versions in self.versions.items():
            available = [v for v in versions.values() if v.available]
            if available:
                latest[name] = max(available, key=lambda v: v.version)
        object.__setattr__(self, "_latest", latest)

    def latest(self, name: str) -> ServedVersion | None:
        return self._latest.get(name)


class ServedPolicies:
    """Every version of every policy a server knows; changes are atomic swaps of the catalog."""

    def __init__(self) -> None:
        self._catalog = Catalog()
        self._change_lock = threading.Lock()

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def add(self, name: str, version: int, policy: Policy, metadata_json: str = "{}") -> ServedVersion:
        return self._store(ServedVersion(name, version, policy, metadata_json))

    def add_failure(self, name: str, version: int, error: str) -> ServedVersion:
        return self._store(ServedVersion(name, version, None, error=error))

    def remove(self, name: str, version: int) -> None:
        """Stop answering with `version`; calls already using it finish on it."""
        with self._change_lock:
            versions = {n: dict(v) for n, v in self._catalog.versions.items()}
            versions.get(name, {}).pop(version, None)
            if not versions.get(name):
                versions.pop(name, None)
            self._catalog = replace(self._catalog, versions=versions)

    def set_labels(self, name: str, labels: Mapping[str, int]) -> None:
        with self._change_lock:
            self._catalog = replace(self._catalog, labels={**self._catalog.labels, name: dict(labels)})

    def set_ignored(self, ignored: Sequence[IgnoredEntry]) -> None:
        with self._change_lock:
            self._catalog = replace(self._catalog, ignored=tuple(ignored))

    def names(self) -> list[str]:
        return sorted(self._catalog.versions)

    def versions(self, name: str) -> list[ServedVersion]:
        versions = self._catalog.versions.get(name, {})
        return [versions[number] for number in sorted(versions)]

    def labels_of(self, name: str, version: int) -> list[str]:
        return sorted(
            label for label, number in self._catalog.labels.get(name, {}).items() if number == version
        )

    def is_serving(self, name: str) -> bool:
        return self._catalog.latest(name) is not None

    def resolve(self, name: str, version: int | None = None, label: str = "") -> ServedVersion:
        """The version to answer with: `version`, the one `label` names, or the latest available one."""
        catalog = self._catalog
        versions = catalog.versions.get(name)
        if versions is None:
            raise PolicyNotFoundError(
                f"no policy named {echo(name)}; serving: {', '.join(self.names()) or 'none'}"
            )
        if label:
            if version is not None:
                raise ValueError("give policy_version or version_label, not both")
            version = catalog.labels.get(name, {}).get(label)
            if version is None:
                known = ", ".join(sorted(catalog.labels.get(name, {}))) or "none"
                raise PolicyNotFoundError(f"policy {name!r} has no label {echo(label)}; labels: {known}")
        if version is None:
            served = catalog.latest(name)
            if served is None:
                errors = "; ".join(f"version {v.version}: {v.error}" for v in self.versions(name))
                raise PolicyUnavailableError(f"policy {name!r} has no version that loaded ({errors})")
            return served
        served = versions.get(version)
        if served is None:
            known = ", ".join(str(number) for number in sorted(versions))
            raise PolicyNotFoundError(f"policy {name!r} has no version {version}; versions: {known}")
        if not served.available:
            raise PolicyUnavailableError(f"policy {name!r} version {version} failed to load: {served.error}")
        return served

    def _store(self, served: ServedVersion) -> ServedVersion:
        if not served.name:
            raise ValueError("policy names must not be empty")
        if served.version < 0:
            raise ValueError(
                f"policy {served.name!r} has version {served.version}; versions are integers >= 0"
            )
        with self._change_lock:
            versions = {name: dict(numbers) for name, numbers in self._catalog.versions.items()}
            versions.setdefault(served.name, {})[served.version] = served
            self._catalog = replace(self._catalog, versions=versions)
        return served

"""The policies a server answers for: name -> integer version -> a Policy, or why it failed to load.

A request without a version gets the latest version that loaded, so a broken new export leaves
the previous one serving. A name is healthy while at least one of its versions is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gymserve.policies import Policy


class PolicyNotFoundError(LookupError):
    """No policy of that name, or no version of that number."""


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


class ServedPolicies:
    """Every version of every policy a server knows, and the default version of each name."""

    def __init__(self) -> None:
        self._versions: dict[str, dict[int, ServedVersion]] = {}
        self._latest: dict[str, ServedVersion] = {}

    def add(self, name: str, version: int, policy: Policy, metadata_json: str = "{}") -> ServedVersion:
        return self._store(ServedVersion(name, version, policy, metadata_json))

    def add_failure(self, name: str, version: int, error: str) -> ServedVersion:
        return self._store(ServedVersion(name, version, None, error=error))

    def names(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, name: str) -> list[ServedVersion]:
        return [self._versions[name][number] for number in sorted(self._versions[name])]

    def is_serving(self, name: str) -> bool:
        return name in self._latest

    def resolve(self, name: str, version: int | None = None) -> ServedVersion:
        """The version to answer with: `version`, or the latest available one when None."""
        versions = self._versions.get(name)
        if versions is None:
            raise PolicyNotFoundError(
                f"no policy named {name!r}; serving: {', '.join(self.names()) or 'none'}"
            )
        if version is None:
            served = self._latest.get(name)
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
        versions = self._versions.setdefault(served.name, {})
        if served.version in versions:
            raise ValueError(f"policy {served.name!r} version {served.version} is given twice")
        versions[served.version] = served
        latest = self._latest.get(served.name)
        if served.available and (latest is None or served.version > latest.version):
            self._latest[served.name] = served
        return served

"""Finding exported policies on disk and loading them into `ServedPolicies`.

A policy directory either holds integer-named version directories (`cartpole/1/`,
`cartpole/2/`, ...) or is itself one export, served as version 1. A repository is a directory
of policy directories, one per name:

    repository/
        cartpole/1/policy.json ...
        cartpole/2/policy.json ...
        minitaur/policy.json ...        # a single export: minitaur version 1

Every version is loaded at start; one that fails is logged and reported, and the others serve.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.serving.logs import log_event
from gymserve.serving.served_policies import ServedPolicies

if TYPE_CHECKING:
    from gymserve.policies import Policy

UNVERSIONED = 1  # the version of a policy directory that is itself an export

PolicyLoader = Callable[[Path], "Policy"]


@dataclass(frozen=True)
class PolicySource:
    """Where one version of a named policy is exported."""

    name: str
    version: int
    path: Path


def pretrained_repository() -> Path | None:
    """The repository of pretrained policies shipped inside the package, if this build has one."""
    directory = Path(__file__).resolve().parent.parent / "pretrained"
    return directory if directory.is_dir() else None


def policy_sources(name: str, directory: Path) -> list[PolicySource]:
    """The versions found in one policy directory (itself as version 1 when it has none)."""
    if not directory.is_dir():
        return [PolicySource(name, UNVERSIONED, directory)]  # the loader says what is wrong with it
    versions = sorted((int(child.name), child) for child in directory.iterdir() if child.name.isdigit())
    sources = [PolicySource(name, version, path) for version, path in versions if path.is_dir()]
    return sources or [PolicySource(name, UNVERSIONED, directory)]


def repository_directories(repository: Path) -> dict[str, Path]:
    """The policy directories of a repository, by name."""
    if not repository.is_dir():
        raise FileNotFoundError(
            f"policy repository {repository} is not a directory; expected DIR/NAME/VERSION/"
        )
    return {
        child.name: child
        for child in sorted(repository.iterdir())
        if child.is_dir() and not child.name.startswith(".")
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


def load_policies(directories: Mapping[str, Path], loader: PolicyLoader) -> ServedPolicies:
    """Load every version of every named policy directory; failures are recorded, not raised."""
    served = ServedPolicies()
    sources = [source for name, path in directories.items() for source in policy_sources(name, path)]
    for source in sources:
        where = {"policy": source.name, "version": source.version, "path": str(source.path)}
        try:
            policy = loader(source.path)
        except Exception as error:  # any broken export must leave the other policies serving
            served.add_failure(source.name, source.version, f"{type(error).__name__}: {error}")
            log_event(logging.ERROR, "policy_load_failed", **where, error=str(error))
            continue
        served.add(source.name, source.version, policy, _metadata_json(policy))
        spaces = {
            "observation_space": str(policy.observation_space),
            "action_space": str(policy.action_space),
        }
        log_event(logging.INFO, "policy_loaded", **where, **spaces)
    return served


def export_loader(backend: str) -> PolicyLoader:
    """A loader reading exports with `gymserve.policies.load` on `backend`."""
    from gymserve.policies import load

    return functools.partial(load, backend=backend)


def _metadata_json(policy: Policy) -> str:
    """The export's policy.json contents without file hashes; "{}" for a policy built in process."""
    from pydantic import BaseModel

    metadata = getattr(policy, "metadata", None)
    return metadata.model_dump_json(exclude={"files"}) if isinstance(metadata, BaseModel) else "{}"

"""The pretrained policies shipped inside the package, found by name or by environment id.

    gymserve/pretrained/
        cartpole/policy.json, policy.onnx, saved_model/, TRAINING.md
        minitaur/...

Each directory is a policy export (or a directory of integer versions, whose latest counts) named
after the policy it serves; its TRAINING.md says how it was trained. `gymserve serve` without
policies, `gymserve demo` and `gymserve play --policy pretrained` all read them from here.
`BundledPolicy`, `bundled_policies` and `bundled_policy_for_env` are the old names, kept working.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gymserve.policies.metadata import PolicyMetadata, read_metadata
from gymserve.policies.repository import pretrained_repository, repository_directories, scan_policy_directory


@dataclass(frozen=True)
class PretrainedPolicy:
    """One pretrained policy: its served name, its export directory and its policy.json."""

    name: str
    path: Path
    metadata: PolicyMetadata

    @property
    def env_id(self) -> str | None:
        return self.metadata.env_id


def pretrained_policies(repository: Path | None = None) -> list[PretrainedPolicy]:
    """The policies of `repository` (default: the package's own) by name; none if it has none."""
    repository = pretrained_repository() if repository is None else repository
    if repository is None:
        return []
    policies = []
    for name, directory in repository_directories(repository).items():
        export_dir = scan_policy_directory(name, directory).versions[-1].path
        policies.append(PretrainedPolicy(name, export_dir, read_metadata(export_dir)))
    return policies


def pretrained_policy_for_env(env_id: str, repository: Path | None = None) -> PretrainedPolicy:
    """The pretrained policy trained on `env_id`; LookupError names the environments that have one."""
    policies = pretrained_policies(repository)
    for policy in policies:
        if policy.env_id == env_id:
            return policy
    available = ", ".join(f"{policy.name} ({policy.env_id})" for policy in policies) or "none"
    raise LookupError(f"no pretrained policy for {env_id}; pretrained policies: {available}")


_OLD_NAMES = {
    "BundledPolicy": "PretrainedPolicy",
    "bundled_policies": "pretrained_policies",
    "bundled_policy_for_env": "pretrained_policy_for_env",
}


def __getattr__(name: str) -> Any:
    new_name = _OLD_NAMES.get(name)
    if new_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"gymserve.pretrained.{name} is deprecated; use gymserve.pretrained.{new_name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return globals()[new_name]

"""Import paths of modules that moved, kept working for code written against an older gymserve.

Importing an old path warns once (`DeprecationWarning`, naming the new path) and gives the very
module object that lives at the new path, so classes and isinstance checks are the same. A
module whose names did not survive the move (`REPLACED_MODULES`) fails to import with an
`ImportError` that says what replaces it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

MOVED_MODULES: dict[str, str] = {
    "gymserve.agents.a2c": "gymserve.agents.on_policy.a2c",
    "gymserve.agents.a3c": "gymserve.agents.on_policy.a3c",
    "gymserve.agents.acer": "gymserve.agents.on_policy.acer",
    "gymserve.agents.checkpoints": "gymserve.agents.training.checkpoints",
    "gymserve.agents.config": "gymserve.agents.training.config",
    "gymserve.agents.env_runner": "gymserve.agents.training.env_runner",
    "gymserve.agents.gae": "gymserve.agents.on_policy.gae",
    "gymserve.agents.graph_envs": "gymserve.agents.on_policy.graph_envs",
    "gymserve.agents.history": "gymserve.agents.training.history",
    "gymserve.agents.periodic_exports": "gymserve.agents.training.periodic_exports",
    "gymserve.agents.plots": "gymserve.agents.training.plots",
    "gymserve.agents.ppo": "gymserve.agents.on_policy.ppo",
    "gymserve.agents.recurrent_ppo": "gymserve.agents.on_policy.recurrent_ppo",
    "gymserve.agents.registry": "gymserve.agents.training.registry",
    "gymserve.agents.runs": "gymserve.agents.training.runs",
    "gymserve.agents.saved_policies": "gymserve.agents.training.saved_policies",
    "gymserve.agents.schedules": "gymserve.agents.training.schedules",
    "gymserve.agents.trainer": "gymserve.agents.training.trainer",
    "gymserve.agents.trajectory_replay": "gymserve.agents.on_policy.trajectory_replay",
    "gymserve.agents.trpo": "gymserve.agents.on_policy.trpo",
    "gymserve.bundled": "gymserve.pretrained",
    "gymserve.demo": "gymserve.cli.demo",
    "gymserve.driver_metrics": "gymserve.tf_agents.driver_metrics",
    "gymserve.drivers": "gymserve.tf_agents.drivers",
    "gymserve.episodes": "gymserve.policies.episodes",
    "gymserve.files": "gymserve.common.files",
    "gymserve.nests": "gymserve.tf_agents.nests",
    "gymserve.policies.onnx_export": "gymserve.policies.export.onnx_export",
    "gymserve.policies.onnx_runner": "gymserve.policies.backends.onnx_runner",
    "gymserve.policies.savedmodel": "gymserve.policies.export.savedmodel",
    "gymserve.policies.savedmodel_runner": "gymserve.policies.backends.savedmodel_runner",
    "gymserve.serving.action_modes": "gymserve.serving.client.action_modes",
    "gymserve.serving.auth": "gymserve.serving.server.auth",
    "gymserve.serving.batching": "gymserve.serving.server.batching",
    "gymserve.serving.config": "gymserve.serving.server.config",
    "gymserve.serving.echo": "gymserve.serving.server.echo",
    "gymserve.serving.handlers": "gymserve.serving.server.handlers",
    "gymserve.serving.logs": "gymserve.serving.server.logs",
    "gymserve.serving.policy_calls": "gymserve.serving.server.policy_calls",
    "gymserve.serving.protos": "gymserve.serving.client.protos",
    "gymserve.serving.queued_metrics": "gymserve.serving.metrics.queued_metrics",
    "gymserve.serving.raw_requests": "gymserve.serving.server.raw_requests",
    "gymserve.serving.reloader": "gymserve.serving.server.reloader",
    "gymserve.serving.remote_policy": "gymserve.serving.client.remote_policy",
    "gymserve.serving.rpc_metrics": "gymserve.serving.metrics.rpc_metrics",
    "gymserve.serving.rpc_threads": "gymserve.serving.server.rpc_threads",
    "gymserve.serving.served_policies": "gymserve.serving.server.served_policies",
    "gymserve.serving.service": "gymserve.serving.apis.policy_service",
    "gymserve.serving.spaces": "gymserve.serving.client.spaces",
    "gymserve.serving.step_metrics": "gymserve.serving.metrics.step_metrics",
    "gymserve.serving.stream_limits": "gymserve.serving.server.stream_limits",
    "gymserve.serving.tensor_protos": "gymserve.serving.apis.tf_serving.tensor_protos",
    "gymserve.serving.tensors": "gymserve.serving.client.tensors",
    "gymserve.serving.tf_prediction_service": "gymserve.serving.apis.tf_serving.prediction_service",
    "gymserve.serving.tf_serving": "gymserve.serving.apis.tf_serving.grpc_protocol",
    "gymserve.validation_errors": "gymserve.common.validation_errors",
}

REPLACED_MODULES: dict[str, str] = {
    "gymserve.agents.action_distributions": (
        "the training distributions are the `Graph` forms of the classes in gymserve.policies.distributions: "
        "CategoricalActions is Categorical.Graph, SquashedGaussianActions is SquashedGaussian.Graph, "
        "action_distribution(space) is distribution_graph(space)"
    ),
    "gymserve.policies.policy_graph": (
        "the exported graph ops are methods of the distribution kinds' `Graph` forms in "
        "gymserve.policies.distributions (distribution_graph(space, kind).parameters, .greedy_action, "
        ".stochastic_action); the next-state helpers are in gymserve.policies.export.savedmodel"
    ),
}


class _ReplacedModuleLoader(importlib.abc.Loader):
    def __init__(self, replacement: str):
        self.replacement = replacement

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        raise ImportError(f"{spec.name} was removed; {self.replacement}", name=spec.name)

    def exec_module(self, module: ModuleType) -> None:
        """Never reached: `create_module` raises."""


class _MovedModuleLoader(importlib.abc.Loader):
    def __init__(self, new_name: str):
        self.new_name = new_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new_name}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new_name)
        self.new_spec = module.__spec__  # importlib gives the module the old path's spec next
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The module at the new path is already executed: only its own spec is put back."""
        module.__spec__ = self.new_spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds the old path of a moved module and hands out the module at its new path."""

    def find_spec(self, fullname: str, path: object = None, target: object = None):
        if fullname in REPLACED_MODULES:
            return importlib.machinery.ModuleSpec(fullname, _ReplacedModuleLoader(REPLACED_MODULES[fullname]))
        new_name = MOVED_MODULES.get(fullname)
        if new_name is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedModuleLoader(new_name))


def install() -> None:
    """Put the finder first on `sys.meta_path` (once), before a stale folder of an old path (left
    by an upgrade in place, holding only `__pycache__`) could be found as a namespace package."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def moved_names(package: str, new_module: str, names: frozenset[str] | None = None) -> Callable[[str], Any]:
    """The `__getattr__` of a package that replaced a module of the same path: the old module's
    `names` (every public name of `new_module` when None) warn and come from `new_module`."""

    def __getattr__(name: str) -> Any:
        if name.startswith("_") or (names is not None and name not in names):
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(new_module), name, _MISSING)
        if value is _MISSING:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        warnings.warn(f"{package}.{name} moved to {new_module}.{name}", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__


_MISSING = object()

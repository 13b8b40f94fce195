"""Policies: the interface, the acting wrappers, and export to / loading from SavedModel, ONNX and LiteRT.

Nothing here imports serving code. Importing this package does not import TensorFlow or
onnxruntime: the names that need them (`ActorPolicy`, `export_policy`, `convert_export`) are
loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from gymserve.policies.base import ActionMode, Policy, PolicyStep, uniform_actions
from gymserve.policies.distributions import (
    Categorical,
    Deterministic,
    Distribution,
    Normal,
    SquashedGaussian,
    Uniform,
)
from gymserve.policies.loading import LoadedPolicy, load
from gymserve.policies.metadata import ExportError, PolicyLoadError, PolicyMetadata, TrainingInfo
from gymserve.policies.noise_wrappers import GaussianPolicy, OUNoisePolicy
from gymserve.policies.random_policy import RandomPolicy
from gymserve.policies.scripted_policy import ScriptedPolicy
from gymserve.policies.wrappers import EpsilonGreedyPolicy, GreedyPolicy, StochasticPolicy

# Names whose modules import TensorFlow, resolved by `__getattr__` when first used; they stay out
# of `__all__` so `from gymserve.policies import *` does not import TensorFlow.
_LAZY_NAMES = {
    "ActorPolicy": "gymserve.policies.actor_policy",
    "export_policy": "gymserve.policies.export",
    "convert_export": "gymserve.policies.export",
}

__all__ = [
    "ActionMode",
    "Categorical",
    "Deterministic",
    "Distribution",
    "EpsilonGreedyPolicy",
    "ExportError",
    "GaussianPolicy",
    "GreedyPolicy",
    "LoadedPolicy",
    "Normal",
    "OUNoisePolicy",
    "Policy",
    "PolicyLoadError",
    "PolicyMetadata",
    "PolicyStep",
    "RandomPolicy",
    "ScriptedPolicy",
    "SquashedGaussian",
    "StochasticPolicy",
    "TrainingInfo",
    "Uniform",
    "load",
    "uniform_actions",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = getattr(importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

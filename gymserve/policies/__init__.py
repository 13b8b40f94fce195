"""Policies: the interface, the acting wrappers, and export to / loading from SavedModel, ONNX and LiteRT.

Nothing here imports serving code. Importing this package does not import TensorFlow or
onnxruntime: the names that need them (`ActorPolicy`, `export_policy`, `convert_export`) are
loaded on first use.

base.py, wrappers.py, noise_wrappers.py, random_policy.py, scripted_policy.py, mixture_policy.py
                    the Policy interface and the policies and wrappers built on it;
                    actor_policy.py: a Keras network's; time_step.py: TF-Agents' TimeStep
distributions/      one module per action distribution kind, numpy and TensorFlow forms
export/             writing an export: SavedModel, ONNX, LiteRT, policy.json, Triton's config
loading.py          loading an export back, on one of the runtimes in backends/
metadata.py, signatures.py, repository.py   policy.json, the models' names, the NAME/VERSION layout
episodes.py         running a policy in an environment: episodes, evaluations, videos
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
from gymserve.policies.mixture_policy import MixturePolicy
from gymserve.policies.noise_wrappers import GaussianPolicy, OUNoisePolicy
from gymserve.policies.random_policy import RandomPolicy
from gymserve.policies.scripted_policy import ScriptedPolicy
from gymserve.policies.time_step import StepType, TimeStep
from gymserve.policies.wrappers import EpsilonGreedyPolicy, GreedyPolicy, StochasticPolicy

# Names whose modules import TensorFlow, resolved by `__getattr__` when first used; they stay out
# of `__all__` so `from gymserve.policies import *` does not import TensorFlow.
_LAZY_NAMES = {
    "ActorPolicy": "gymserve.policies.actor_policy",
    "export_policy": "gymserve.policies.export.policy_export",
    "convert_export": "gymserve.policies.export.policy_export",
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
    "MixturePolicy",
    "Normal",
    "OUNoisePolicy",
    "Policy",
    "PolicyLoadError",
    "PolicyMetadata",
    "PolicyStep",
    "RandomPolicy",
    "ScriptedPolicy",
    "SquashedGaussian",
    "StepType",
    "StochasticPolicy",
    "TimeStep",
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

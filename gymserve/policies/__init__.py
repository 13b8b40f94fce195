"""Policies: the interface, the acting wrappers, and export to / loading from SavedModel and ONNX.

Nothing here imports serving code; TensorFlow and onnxruntime are imported only by the modules
that build, export or load models.
"""

from gymserve.policies.base import ActionMode, Policy, PolicyStep, uniform_actions
from gymserve.policies.distributions import Categorical, Distribution, SquashedGaussian, Uniform
from gymserve.policies.random_policy import RandomPolicy

__all__ = [
    "ActionMode",
    "Categorical",
    "Distribution",
    "Policy",
    "PolicyStep",
    "RandomPolicy",
    "SquashedGaussian",
    "Uniform",
    "uniform_actions",
]

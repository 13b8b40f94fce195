"""The distribution kinds by name, and reading network outputs or exported parameters with them.

Adding a kind is one module with its class (numpy form and `Graph`) and one line in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import gymnasium as gym
import numpy as np

from gymserve.policies.distributions.base import (
    ActorDistributionKind,
    Distribution,
    DistributionGraph,
    DistributionKind,
)
from gymserve.policies.distributions.categorical import Categorical
from gymserve.policies.distributions.deterministic import Deterministic
from gymserve.policies.distributions.noisy_deterministic import NoisyDeterministic
from gymserve.policies.distributions.normal import Normal
from gymserve.policies.distributions.squashed_gaussian import SquashedGaussian

KINDS: dict[str, type[Distribution]] = {
    cls.kind: cls for cls in (Categorical, SquashedGaussian, NoisyDeterministic, Deterministic, Normal)
}


def default_distribution_kind(action_space: gym.spaces.Space) -> DistributionKind:
    """How outputs are read when nothing says otherwise: logits, or a squashed Gaussian for a Box."""
    return "categorical" if isinstance(action_space, gym.spaces.Discrete) else "squashed_gaussian"


def distribution_class(
    action_space: gym.spaces.Space, kind: ActorDistributionKind | None = None
) -> type[Distribution]:
    """The class reading a network's outputs for `action_space`: logits for a Discrete space, `kind`
    (default: squashed Gaussian) for a Box."""
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical
    if not isinstance(action_space, gym.spaces.Box):
        raise TypeError(f"action distributions are over Discrete or Box action spaces, got {action_space}")
    kind = kind or default_distribution_kind(action_space)
    cls = KINDS.get(kind)
    if cls is None or not issubclass(gym.spaces.Box, cls.space_type):
        fitting = [
            name for name, candidate in KINDS.items() if issubclass(gym.spaces.Box, candidate.space_type)
        ]
        raise ValueError(f"distribution {kind!r} does not fit {action_space}; expected one of {fitting}")
    return cls


def distribution_graph(
    action_space: gym.spaces.Space, kind: ActorDistributionKind | None = None
) -> DistributionGraph:
    """The TensorFlow form of `distribution_class(action_space, kind)`, for `action_space`."""
    return distribution_class(action_space, kind).Graph(action_space)


def distribution_from_outputs(
    outputs: np.ndarray, action_space: gym.spaces.Space, kind: ActorDistributionKind | None = None
) -> Distribution:
    """Interpret a policy network's raw outputs for `action_space` (see `distribution_class`)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    cls = distribution_class(action_space, kind)
    expected = (cls.output_size(action_space),)
    if outputs.shape[1:] != expected:
        raise ValueError(
            f"network outputs {outputs.shape[1:]} per observation; expected {cls.outputs_meaning} {expected}"
        )
    return cls.from_outputs(outputs, action_space)


def distribution_from_parameters(
    parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Space
) -> Distribution:
    """The distribution whose `parameters()` are `parameters` (as exported or served)."""
    # The kind with the most matching parameters wins: `loc` and `scale` is a Normal, `loc` alone a point.
    for cls in sorted(KINDS.values(), key=lambda candidate: -len(candidate.parameter_names)):
        if isinstance(action_space, cls.space_type) and set(cls.parameter_names) <= parameters.keys():
            return cls.from_parameters(parameters, action_space)
    raise ValueError(
        f"distribution parameters {sorted(parameters)} do not describe an action distribution over "
        f"{action_space}; expected logits (Discrete), mean and log_std, mean and noise_std, loc and scale "
        f"(Box), or loc"
    )

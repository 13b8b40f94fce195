"""The algorithms `gymserve train` knows, as lazy "module:Class" entry points.

Importing this table is cheap; an algorithm's module (and TensorFlow) is imported only when the
algorithm is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gymserve.agents.algorithm import Algorithm

ALGORITHMS: dict[str, str] = {
    "dqn": "gymserve.agents.off_policy.dqn:DQN",
    "ppo": "gymserve.agents.on_policy.ppo:PPO",
    "a2c": "gymserve.agents.on_policy.a2c:A2C",
    "a3c": "gymserve.agents.on_policy.a3c:A3C",
    "sac": "gymserve.agents.off_policy.sac:SAC",
    "td3": "gymserve.agents.off_policy.td3:TD3",
    "ddpg": "gymserve.agents.off_policy.ddpg:DDPG",
    "trpo": "gymserve.agents.on_policy.trpo:TRPO",
    "acer": "gymserve.agents.on_policy.acer:ACER",
}


class UnknownAlgorithmError(ValueError):
    """The name is not in ALGORITHMS, or its implementation is not installed."""


def algorithm_class(name: str) -> type[Algorithm]:
    """The Algorithm subclass registered as `name`."""
    try:
        module_name, class_name = ALGORITHMS[name].split(":")
    except KeyError:
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}; expected one of: {', '.join(ALGORITHMS)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise UnknownAlgorithmError(
            f"algorithm {name!r} is not available in this version of gymserve ({module_name} is missing)"
        ) from None
    return getattr(module, class_name)

"""Whether a policy can act in an environment: the same kind, shape and number of actions.

Bounds and dtypes may differ (a policy clips its actions to its own bounds); a different shape
or number of actions means the policy was made for another environment.
"""

from __future__ import annotations

import gymnasium as gym

from gymserve.policies.base import Policy


class SpaceMismatchError(ValueError):
    """A policy's observation or action space does not fit an environment's."""


def space_layout(space: gym.spaces.Space) -> str:
    """What a policy must share with an environment's space, as text: kind, shape, number of actions."""
    if isinstance(space, gym.spaces.Discrete):
        return f"Discrete({space.n}, start={space.start})"
    return f"{type(space).__name__} of shape {space.shape}"


def check_space_match(
    policy: Policy,
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
    policy_name: str,
    env_name: str,
) -> None:
    """Raise SpaceMismatchError, naming both sides, unless `policy` fits the environment's spaces."""
    for kind, own, expected in (
        ("observation", policy.observation_space, observation_space),
        ("action", policy.action_space, action_space),
    ):
        if own is None:  # a policy that ignores its observations fits any
            continue
        if space_layout(own) != space_layout(expected):
            raise SpaceMismatchError(
                f"{policy_name} takes {kind}s {space_layout(own)}; {env_name}'s are {space_layout(expected)}"
            )

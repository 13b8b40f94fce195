"""TF-Agents' `TimeStep`: an observation with where it lies in its episode and what led to it.

    from gymserve.policies import time_step as ts

    step = ts.restart(observation)                 # FIRST, reward 0, discount 1
    step = ts.transition(observation, reward=1.0)  # MID
    step = ts.termination(observation, reward=1.0) # LAST, discount 0
    policy.action(step)                            # the policy acts on step.observation

gymserve policies take plain observations; every policy also takes a `TimeStep` (or any named
tuple with `step_type` and `observation` fields) and acts on its observation. A `TimeStep` whose
`step_type` is FIRST starts its row's policy state afresh, as TF-Agents' recurrent networks do.
The batch is the observation's leading dimension, as for a plain observation; the functions here
give `step_type`, `reward` and `discount` that batch's shape (a scalar for a single observation).
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np


class StepType(enum.IntEnum):
    """Where an observation lies in its episode."""

    FIRST = 0
    MID = 1
    LAST = 2


class TimeStep(NamedTuple):
    """An observation and the step that produced it, with TF-Agents' field names and order."""

    step_type: Any
    reward: Any
    discount: Any
    observation: Any

    def is_first(self) -> np.ndarray:
        return np.asarray(self.step_type) == StepType.FIRST

    def is_mid(self) -> np.ndarray:
        return np.asarray(self.step_type) == StepType.MID

    def is_last(self) -> np.ndarray:
        return np.asarray(self.step_type) == StepType.LAST


def is_time_step(value: Any) -> bool:
    """A TimeStep, or any named tuple shaped like one (TF-Agents' own, for instance)."""
    if not isinstance(value, tuple):  # the usual case, an array: decided without an attribute lookup
        return False
    fields = getattr(value, "_fields", ())
    return "step_type" in fields and "observation" in fields


def time_step_spec(observation_spec: Any = None, reward_spec: Any = None) -> TimeStep:
    """The spec of a `TimeStep` for `observation_spec` (a Gymnasium space or a `(shape, dtype)` pair).

    `step_type` is a scalar int32, `reward` a scalar float32 unless `reward_spec` says otherwise,
    `discount` a float32 in [0, 1]; `ReplayBuffer` takes the result as a data spec.
    """
    return TimeStep(
        step_type=((), np.dtype(np.int32)),
        reward=((), np.dtype(np.float32)) if reward_spec is None else reward_spec,
        discount=gym.spaces.Box(0.0, 1.0, (), np.float32),
        observation=observation_spec,
    )


def restart(observation: Any, batch_size: int | None = None) -> TimeStep:
    """The first step of an episode: reward 0, discount 1. `batch_size` says the observation is a
    batch of that many (TF-Agents' argument); without it a single observation is assumed."""
    return _time_step(StepType.FIRST, observation, 0.0, 1.0, batch_size)


def transition(observation: Any, reward: Any, discount: Any = 1.0) -> TimeStep:
    """A step inside an episode; a batch of rewards gives a batch of step types."""
    return _time_step(StepType.MID, observation, reward, discount, _batch_of(reward))


def termination(observation: Any, reward: Any) -> TimeStep:
    """The last step of an episode that ended (discount 0)."""
    return _time_step(StepType.LAST, observation, reward, 0.0, _batch_of(reward))


def truncation(observation: Any, reward: Any, discount: Any = 1.0) -> TimeStep:
    """The last step of an episode cut short (a time limit): LAST, but the future still counts."""
    return _time_step(StepType.LAST, observation, reward, discount, _batch_of(reward))


def _batch_of(reward: Any) -> int | None:
    shape = np.shape(reward)
    return shape[0] if shape else None


def _time_step(
    step_type: StepType, observation: Any, reward: Any, discount: Any, batch_size: int | None
) -> TimeStep:
    shape = () if batch_size is None else (batch_size,)
    return TimeStep(
        step_type=np.full(shape, step_type, np.int32),
        reward=_filled(reward, shape),
        discount=_filled(discount, shape),
        observation=observation,
    )


def _filled(value: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as float32, a scalar repeated over the batch."""
    array = np.asarray(value, np.float32)
    return np.full(shape, array, np.float32) if array.ndim == 0 else array

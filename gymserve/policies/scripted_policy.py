"""A policy that replays a fixed sequence of actions, whatever it observes.

Useful to drive an environment through a known trajectory (tests, demos, hand-made baselines).
The script is a list of `(repeats, action)` pairs played in order; a pair with 0 repeats is
skipped. Once the script is exhausted, acting raises ValueError, as TF-Agents' scripted policy
does; with `on_exhausted="repeat_last"` the last action is repeated forever instead, so an
episode that outlives its script keeps a defined action.

Progress lives in the policy state, one step counter per batch row, so several episodes can
replay the script side by side through `get_initial_state` / `action(observation, state)`.
A caller that passes no state (`state=()`) uses one counter kept by the policy, advanced once
per call and restarted by `reset()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep
from gymserve.policies.distributions import Categorical, Deterministic, Distribution
from gymserve.policies.time_step import TimeStep


class ScriptedPolicy(Policy):
    """Replays `script`, a list of `(repeats, action)` pairs, one action per step."""

    def __init__(
        self,
        observation_space: gym.spaces.Space | TimeStep | None,
        action_space: gym.spaces.Space,
        script: Sequence[tuple[int, Any]],
        *,
        on_exhausted: Literal["raise", "repeat_last"] = "raise",
        seed: int | None = None,
        emit_log_probability: bool = False,
        emit_distribution_parameters: bool = False,
    ):
        """`observation_space` may be None: the script ignores observations (see `Policy`)."""
        super().__init__(
            observation_space,
            action_space,
            seed,
            emit_log_probability=emit_log_probability,
            emit_distribution_parameters=emit_distribution_parameters,
        )
        if on_exhausted not in ("raise", "repeat_last"):
            raise ValueError(f"on_exhausted is {on_exhausted!r}; expected 'raise' or 'repeat_last'")
        self.on_exhausted = on_exhausted
        played = [(int(repeats), action) for repeats, action in _check_repeats(script) if repeats > 0]
        if not played:
            raise ValueError(
                "the script plays no action; expected at least one (repeats, action) with repeats > 0"
            )
        self._actions = np.stack([_check_action(action, action_space) for _, action in played])
        # _ends[i] is the first step after action i; searchsorted maps a step to its action.
        self._ends = np.cumsum([repeats for repeats, _ in played])
        self._calls = 0

    @property
    def script_length(self) -> int:
        """The number of steps the script plays before it is exhausted."""
        return int(self._ends[-1])

    def get_initial_state(self, batch_size: int | None = None) -> PolicyState:
        return (np.zeros(1 if batch_size is None else batch_size, np.int64),)

    def reset(self) -> None:
        self._calls = 0

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        steps = self._steps(len(observations), state)
        actions = self._actions_at(steps)
        if state:
            return PolicyStep(actions, (steps + 1,))
        self._calls += 1
        return PolicyStep(actions, ())

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        """A point mass on the scripted action (the state is not advanced)."""
        actions = self._actions_at(self._steps(len(observations), state))
        if isinstance(self.action_space, gym.spaces.Discrete):
            chosen = np.arange(int(self.action_space.n)) == (actions - self.action_space.start)[:, None]
            return Categorical(
                np.where(chosen, 0.0, -np.inf).astype(np.float32), int(self.action_space.start)
            )
        return Deterministic(actions)

    def _steps(self, batch_size: int, state: PolicyState) -> np.ndarray:
        if not state:
            return np.full(batch_size, self._calls, np.int64)
        steps = np.asarray(state[0], np.int64)
        if steps.shape != (batch_size,):
            raise ValueError(
                f"scripted policy state has shape {steps.shape}; expected ({batch_size},), "
                f"one step counter per observation (use get_initial_state({batch_size}))"
            )
        return steps

    def _actions_at(self, steps: np.ndarray) -> np.ndarray:
        if self.on_exhausted == "raise" and (steps >= self.script_length).any():
            raise ValueError(
                f"the script is exhausted: it plays {self.script_length} steps and step "
                f"{int(steps.max())} was asked for; reset() or get_initial_state() starts it again, "
                f"on_exhausted='repeat_last' keeps playing its last action"
            )
        indices = np.searchsorted(self._ends, steps, side="right")
        return self._actions[np.minimum(indices, len(self._actions) - 1)]


def _check_repeats(script: Sequence[tuple[int, Any]]) -> Sequence[tuple[int, Any]]:
    for position, entry in enumerate(script):
        if len(entry) != 2:
            raise ValueError(f"script entry {position} is {entry!r}; expected a (repeats, action) pair")
        repeats = entry[0]
        if isinstance(repeats, bool) or not isinstance(repeats, int | np.integer) or repeats < 0:
            raise ValueError(f"script entry {position} repeats {repeats!r} times; expected an integer >= 0")
    return script


def _check_action(action: Any, space: gym.spaces.Box | gym.spaces.Discrete) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        value = np.asarray(action)
        if value.shape != () or value.dtype.kind not in "iu" or not space.contains(value.astype(np.int64)):
            raise ValueError(f"scripted action {action!r} is not in {space}; expected an integer action")
        return value.astype(np.int64)
    value = np.asarray(action, dtype=space.dtype)
    if value.shape != space.shape or not space.contains(value):
        raise ValueError(
            f"scripted action {action!r} is not in {space}; expected shape {space.shape} within bounds"
        )
    return value

"""Wrappers that fix how a policy picks its action, for code that calls `policy.action(obs)`.

A base policy picks its mode per call. Collection loops, evaluation and the server often want
one behaviour baked in instead: `GreedyPolicy`, `StochasticPolicy` and `EpsilonGreedyPolicy`
act in their own mode and ignore the `mode` a caller passes. They share the wrapped policy's
spaces and state, and the wrapped policy's distribution (the greedy one's is a point mass
on the wrapped mode, as in TF-Agents), and draw random choices from their own seeded generator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep
from gymserve.policies.distributions import Deterministic, Distribution


class PolicyWrapper(Policy):
    """A policy on the spaces of `policy`, sharing its state and its `reset`."""

    def __init__(
        self,
        policy: Policy,
        seed: int | None = None,
        *,
        emit_log_probability: bool = False,
        emit_distribution_parameters: bool = False,
    ):
        super().__init__(
            policy.observation_space,
            policy.action_space,
            seed,
            emit_log_probability=emit_log_probability,
            emit_distribution_parameters=emit_distribution_parameters,
        )
        self._policy = policy

    @property
    def wrapped(self) -> Policy:
        return self._policy

    def get_initial_state(self, batch_size: int | None = None) -> PolicyState:
        return self._policy.get_initial_state(batch_size)

    def reset(self) -> None:
        self._policy.reset()


class _FixedModePolicy(PolicyWrapper):
    """Acts like `policy` in one mode; subclasses set `mode`."""

    mode: ActionMode

    def action(
        self,
        observation: Any,
        state: PolicyState = (),
        mode: ActionMode | str | None = None,
        *,
        epsilon: float | None = None,
        seed: int | None = None,
    ) -> PolicyStep:
        """The action in this wrapper's mode; `mode` is ignored (see the class)."""
        return super().action(observation, state, self.mode, epsilon=epsilon, seed=seed)

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        return self._policy._action(observations, state, mode, rng)

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return self._policy._distribution(observations, state)


class GreedyPolicy(_FixedModePolicy):
    """Always the wrapped policy's most likely action; its distribution is a point mass on it."""

    mode = ActionMode.GREEDY

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return Deterministic(self._policy._distribution(observations, state).mode())


class StochasticPolicy(_FixedModePolicy):
    """Always a sample from the wrapped policy's distribution, reproducible with `seed`."""

    mode = ActionMode.STOCHASTIC


class EpsilonGreedyPolicy(_FixedModePolicy):
    """Greedy, except with probability epsilon a uniformly random action.

    `epsilon` is a number or a schedule `epsilon(step) -> float`. The step is the `step`
    argument of `action` when given (e.g. the training step), else the number of earlier calls
    to `action`. `reset()` does not restart that count: a schedule spans episodes.
    """

    mode = ActionMode.EPSILON_GREEDY

    def __init__(self, policy: Policy, epsilon: float | Callable[[int], float], seed: int | None = None):
        super().__init__(policy, seed)
        self._epsilon = epsilon
        self._calls = 0
        self.epsilon_at(0)  # a bad constant or schedule fails here, not at the first action

    def epsilon_at(self, step: int) -> float:
        """The exploration probability at `step`."""
        epsilon = self._epsilon(step) if callable(self._epsilon) else self._epsilon
        if not isinstance(epsilon, float | int | np.floating | np.integer) or not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon at step {step} is {epsilon!r}; expected a number in [0, 1]")
        return float(epsilon)

    def action(
        self,
        observation: Any,
        state: PolicyState = (),
        mode: ActionMode | str | None = None,
        *,
        epsilon: float | None = None,
        seed: int | None = None,
        step: int | None = None,
    ) -> PolicyStep:
        """The epsilon-greedy action; `mode` and `epsilon` are ignored in favour of the schedule."""
        epsilon = self.epsilon_at(self._calls if step is None else step)
        self._calls += 1
        return super().action(observation, state, epsilon=epsilon, seed=seed)

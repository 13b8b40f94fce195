"""Exploration noise around a continuous policy, as TF-Agents' GaussianPolicy and OUNoisePolicy.

    noisy = GaussianPolicy(actor, scale=0.1, seed=0)       # action + N(0, scale^2), clipped
    noisy = OUNoisePolicy(actor, ou_stddev=0.2, ou_damping=0.15)

The wrapped policy acts in the mode the caller asks for (greedy by default) and the noise is
added to its action, then clipped to the action bounds unless `clip=False`. Ornstein-Uhlenbeck
noise is one process per batch row and action dimension, x <- (1 - damping) x + stddev N(0, 1),
kept by the wrapper (not in the policy state) and set to 0 by `reset()` or a change of batch
size. Each wrapper's `distribution` is the Normal its next action is drawn from when the wrapped
policy is deterministic: centred on the wrapped greedy action (plus the decayed process).
"""

from __future__ import annotations

import abc

import gymnasium as gym
import numpy as np

from gymserve.policies.base import ActionMode, Policy, PolicyState, PolicyStep
from gymserve.policies.distributions import Distribution, Normal
from gymserve.policies.wrappers import PolicyWrapper


class _NoisePolicy(PolicyWrapper):
    def __init__(self, policy: Policy, clip: bool, seed: int | None):
        if not isinstance(policy.action_space, gym.spaces.Box):
            raise ValueError(f"exploration noise needs a Box action space, got {policy.action_space}")
        super().__init__(policy, seed)
        self._clip_actions = clip

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        step = self._policy._action(observations, state, mode, rng)
        return PolicyStep(step.action + self._noise(step.action.shape, rng), step.state, step.info)

    def _clip(self, actions: np.ndarray) -> np.ndarray:
        if self._clip_actions:
            return super()._clip(actions)
        return actions.astype(self.action_space.dtype, copy=False)

    @abc.abstractmethod
    def _noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """The noise to add to a batch of actions of `shape`."""


class GaussianPolicy(_NoisePolicy):
    """The wrapped policy's action plus independent Gaussian noise of standard deviation `scale`."""

    def __init__(self, policy: Policy, scale: float = 1.0, clip: bool = True, seed: int | None = None):
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive number, got {scale!r}")
        super().__init__(policy, clip, seed)
        self.scale = float(scale)

    def _noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        return (self.scale * rng.standard_normal(shape)).astype(np.float32)

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return Normal(self._policy._distribution(observations, state).mode(), self.scale)


class OUNoisePolicy(_NoisePolicy):
    """The wrapped policy's action plus temporally correlated Ornstein-Uhlenbeck noise."""

    def __init__(
        self,
        policy: Policy,
        ou_stddev: float = 1.0,
        ou_damping: float = 1.0,
        clip: bool = True,
        seed: int | None = None,
    ):
        if not np.isfinite(ou_stddev) or ou_stddev <= 0 or not 0 < ou_damping <= 1:
            raise ValueError(
                f"need ou_stddev > 0 and 0 < ou_damping <= 1, got {ou_stddev!r} and {ou_damping!r}"
            )
        super().__init__(policy, clip, seed)
        self.ou_stddev, self.ou_damping = float(ou_stddev), float(ou_damping)
        self.values = np.zeros(0, np.float32)

    def reset(self) -> None:
        self.values = np.zeros(0, np.float32)
        super().reset()

    def _noise(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        self.values = (self._decayed(shape) + self.ou_stddev * rng.standard_normal(shape)).astype(np.float32)
        return self.values

    def _decayed(self, shape: tuple[int, ...]) -> np.ndarray:
        values = self.values if self.values.shape == shape else np.zeros(shape, np.float32)
        return (1.0 - self.ou_damping) * values

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        mode = self._policy._distribution(observations, state).mode()
        return Normal(mode + self._decayed(mode.shape), self.ou_stddev)

"""Action distributions in numpy: what a policy network's outputs mean.

A network for a Discrete action space outputs `logits` (batch, n) ("categorical"). A network for
a Box action space outputs (batch, 2 * d), read one of two ways:

- "squashed_gaussian" (stochastic actors: SAC, PPO, A2C): the pre-squash `mean` then `log_std`.
  Actions are `low + (tanh(u) + 1) / 2 * (high - low)` with u ~ Normal(mean, exp(log_std)), so
  the greedy action is the squashed mean and every sample lies inside the bounds.
- "noisy_deterministic" (deterministic actors: TD3, DDPG): the pre-squash action u then the
  exploration noise's standard deviation in action units. The greedy action is the squashed u
  (the distribution's `mean`); a sample adds Gaussian noise of that `noise_std` and is clipped
  to the bounds, as the actor explored while training.

The same formulas are
built into exported SavedModel and ONNX graphs; sampling stays here, driven by a seeded numpy
generator, so every backend draws the same actions for the same seed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Literal

import gymnasium as gym
import numpy as np

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0

DistributionKind = Literal["categorical", "squashed_gaussian", "noisy_deterministic"]


def default_distribution_kind(action_space: gym.spaces.Space) -> DistributionKind:
    """How outputs are read when nothing says otherwise: logits, or a squashed Gaussian for a Box."""
    return "categorical" if isinstance(action_space, gym.spaces.Discrete) else "squashed_gaussian"


def squash(pre_squash: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map unbounded values into [low, high] through tanh."""
    unit = (np.tanh(pre_squash) + 1.0) * 0.5
    return (low + unit * (high - low)).astype(np.float32)


class Distribution(abc.ABC):
    """A batch of action distributions."""

    @abc.abstractmethod
    def mode(self) -> np.ndarray:
        """The most likely action of each distribution (the greedy action)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per distribution, drawn with `rng`."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """The named parameter arrays, as exported and served."""


class Categorical(Distribution):
    """Categorical distributions over `start, ..., start + n - 1` given unnormalised logits."""

    def __init__(self, logits: np.ndarray, start: int = 0):
        self.logits = np.asarray(logits, dtype=np.float32)
        self.start = start

    def probabilities(self) -> np.ndarray:
        shifted = self.logits - self.logits.max(axis=-1, keepdims=True)
        weights = np.exp(shifted.astype(np.float64))
        return weights / weights.sum(axis=-1, keepdims=True)

    def mode(self) -> np.ndarray:
        return self.start + np.argmax(self.logits, axis=-1).astype(np.int64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        # Inverse-CDF sampling: one uniform number per row, so draws depend only on the seed.
        cumulative = np.cumsum(self.probabilities(), axis=-1)
        uniforms = rng.random((len(cumulative), 1))
        indices = (uniforms > cumulative).sum(axis=-1)
        return self.start + np.minimum(indices, cumulative.shape[-1] - 1).astype(np.int64)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"logits": self.logits}


class SquashedGaussian(Distribution):
    """Diagonal Gaussians squashed by tanh and scaled to the bounds [low, high]."""

    def __init__(self, mean: np.ndarray, log_std: np.ndarray, low: np.ndarray, high: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.log_std = np.clip(np.asarray(log_std, dtype=np.float32), LOG_STD_MIN, LOG_STD_MAX)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def squash(self, pre_squash: np.ndarray) -> np.ndarray:
        """Map unbounded values into [low, high] through tanh."""
        return squash(pre_squash, self.low, self.high)

    def mode(self) -> np.ndarray:
        return self.squash(self.mean)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.mean.shape).astype(np.float32)
        return self.squash(self.mean + np.exp(self.log_std) * noise)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "log_std": self.log_std}


class NoisyDeterministic(Distribution):
    """A deterministic action plus Gaussian exploration noise, clipped to the bounds [low, high]."""

    def __init__(self, mean: np.ndarray, noise_std: np.ndarray, low: np.ndarray, high: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.noise_std = np.asarray(noise_std, dtype=np.float32)
        self.low = np.asarray(low, dtype=np.float32)
        self.high = np.asarray(high, dtype=np.float32)

    def mode(self) -> np.ndarray:
        return self.mean

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.mean.shape).astype(np.float32)
        return np.clip(self.mean + self.noise_std * noise, self.low, self.high)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "noise_std": self.noise_std}


class Uniform(Distribution):
    """Uniform distributions over the box [low, high]; the mode is taken as the centre."""

    def __init__(self, low: np.ndarray, high: np.ndarray, batch_size: int):
        self.low = np.broadcast_to(np.asarray(low, dtype=np.float32), (batch_size, *np.shape(low)))
        self.high = np.broadcast_to(np.asarray(high, dtype=np.float32), (batch_size, *np.shape(high)))

    def mode(self) -> np.ndarray:
        return (self.low + self.high) * np.float32(0.5)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high).astype(np.float32)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"low": self.low, "high": self.high}


def distribution_from_outputs(
    outputs: np.ndarray, action_space: gym.spaces.Space, kind: DistributionKind | None = None
) -> Distribution:
    """Interpret a policy network's raw outputs for `action_space` (see the module docstring)."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if isinstance(action_space, gym.spaces.Discrete):
        expected = (int(action_space.n),)
        if outputs.shape[1:] != expected:
            raise ValueError(
                f"network outputs {outputs.shape[1:]} per observation; expected logits {expected}"
            )
        return Categorical(outputs, int(action_space.start))
    size = int(np.prod(action_space.shape))
    kind = kind or default_distribution_kind(action_space)
    if outputs.shape[1:] != (2 * size,):
        meaning = "action and noise_std" if kind == "noisy_deterministic" else "mean and log_std"
        raise ValueError(
            f"network outputs {outputs.shape[1:]} per observation; expected {meaning} ({2 * size},)"
        )
    batch = len(outputs)
    first = outputs[:, :size].reshape(batch, *action_space.shape)
    second = outputs[:, size:].reshape(batch, *action_space.shape)
    if kind == "noisy_deterministic":
        low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)
        return NoisyDeterministic(squash(first, low, high), second, low, high)
    return SquashedGaussian(first, second, action_space.low, action_space.high)


def distribution_from_parameters(
    parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Space
) -> Distribution:
    """The distribution whose `parameters()` are `parameters` (as exported or served)."""
    if isinstance(action_space, gym.spaces.Discrete) and "logits" in parameters:
        return Categorical(parameters["logits"], int(action_space.start))
    if isinstance(action_space, gym.spaces.Box):
        low, high = action_space.low, action_space.high
        if {"mean", "log_std"} <= parameters.keys():
            return SquashedGaussian(parameters["mean"], parameters["log_std"], low, high)
        if {"mean", "noise_std"} <= parameters.keys():
            return NoisyDeterministic(parameters["mean"], parameters["noise_std"], low, high)
    raise ValueError(
        f"distribution parameters {sorted(parameters)} do not describe an action distribution over "
        f"{action_space}; expected logits (Discrete), mean and log_std, or mean and noise_std (Box)"
    )

"""Action distributions in numpy: what a policy network's outputs mean.

A network for a Discrete action space outputs `logits` (batch, n). A network for a Box action
space outputs (batch, 2 * d): the pre-squash `mean` then `log_std`. Actions are
`low + (tanh(u) + 1) / 2 * (high - low)` with u ~ Normal(mean, exp(log_std)), so the greedy
action is the squashed mean and every sample lies inside the bounds. The same formulas are
built into exported SavedModel and ONNX graphs; sampling stays here, driven by a seeded numpy
generator, so every backend draws the same actions for the same seed.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping

import gymnasium as gym
import numpy as np

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0


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
        unit = (np.tanh(pre_squash) + 1.0) * 0.5
        return (self.low + unit * (self.high - self.low)).astype(np.float32)

    def mode(self) -> np.ndarray:
        return self.squash(self.mean)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.standard_normal(self.mean.shape).astype(np.float32)
        return self.squash(self.mean + np.exp(self.log_std) * noise)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "log_std": self.log_std}


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


def distribution_from_outputs(outputs: np.ndarray, action_space: gym.spaces.Space) -> Distribution:
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
    if outputs.shape[1:] != (2 * size,):
        raise ValueError(
            f"network outputs {outputs.shape[1:]} per observation; expected mean and log_std ({2 * size},)"
        )
    batch = len(outputs)
    mean = outputs[:, :size].reshape(batch, *action_space.shape)
    log_std = outputs[:, size:].reshape(batch, *action_space.shape)
    return SquashedGaussian(mean, log_std, action_space.low, action_space.high)


def distribution_from_parameters(
    parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Space
) -> Distribution:
    """The distribution named by its parameters (`Distribution.parameters()`): logits, or mean and log_std."""
    if isinstance(action_space, gym.spaces.Discrete) and "logits" in parameters:
        return Categorical(parameters["logits"], int(action_space.start))
    if isinstance(action_space, gym.spaces.Box) and {"mean", "log_std"} <= parameters.keys():
        return SquashedGaussian(
            parameters["mean"], parameters["log_std"], action_space.low, action_space.high
        )
    raise ValueError(
        f"distribution parameters {sorted(parameters)} do not fit {action_space}; "
        "expected logits (discrete) or mean and log_std (box)"
    )

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

Two more kinds serve networks written for TF-Agents' `ActorPolicy` and are not exported:
"deterministic" (the network outputs the action itself, (batch, d)) and "gaussian" (an
unsquashed Normal, `[mean | log_std]`, for unbounded or clipped Box actions).

Every distribution has `mode`, `sample`, `log_prob` and, where it has a closed form, `entropy`.
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

DistributionKind = Literal["categorical", "squashed_gaussian", "noisy_deterministic"]  # the exported kinds
ActorDistributionKind = Literal[DistributionKind, "deterministic", "gaussian"]
_HALF_LOG_TWO_PI = 0.5 * np.log(2 * np.pi)


def default_distribution_kind(action_space: gym.spaces.Space) -> DistributionKind:
    """How outputs are read when nothing says otherwise: logits, or a squashed Gaussian for a Box."""
    return "categorical" if isinstance(action_space, gym.spaces.Discrete) else "squashed_gaussian"


def squash(pre_squash: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map unbounded values into [low, high] through tanh."""
    unit = (np.tanh(pre_squash) + 1.0) * 0.5
    return (low + unit * (high - low)).astype(np.float32)


class Distribution(abc.ABC):
    """A batch of action distributions.

    `log_prob` and `entropy` exist only where the distribution has them: clipped exploration
    noise puts point masses at the bounds (no density), and a squashed Gaussian has no
    closed-form entropy. Those kinds raise `NotImplementedError` naming themselves.
    """

    @abc.abstractmethod
    def mode(self) -> np.ndarray:
        """The most likely action of each distribution (the greedy action)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per distribution, drawn with `rng`."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """The named parameter arrays, as exported and served."""

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        """The log density (or log probability) of one action per distribution, shape (batch,)."""
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def entropy(self) -> np.ndarray:
        """The entropy of each distribution, shape (batch,)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy")


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

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        indices = np.asarray(actions) - self.start
        count = self.logits.shape[-1]
        if indices.shape != self.logits.shape[:-1] or not np.isin(indices, np.arange(count)).all():
            raise ValueError(
                f"actions {np.asarray(actions).tolist()} are not one of {self.start}.."
                f"{self.start + count - 1} per distribution (batch {self.logits.shape[:-1]})"
            )
        log_probabilities = np.log(self.probabilities())
        return np.take_along_axis(log_probabilities, indices[..., None], axis=-1)[..., 0]

    def entropy(self) -> np.ndarray:
        probabilities = self.probabilities()
        logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
        return -(probabilities * logs).sum(axis=-1)


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

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        """The density of the squashed actions: the Gaussian's at atanh of the action in unit
        coordinates, divided by the squash's derivative (actions at the bounds get -inf)."""
        half_range = (self.high - self.low).astype(np.float64) / 2
        unit = (np.asarray(actions, np.float64) - self.low) / half_range - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            pre_squash = np.arctanh(unit)
            log_derivative = np.log(half_range) + np.log1p(-(unit**2))
            gaussian = _normal_log_density(pre_squash, self.mean, self.log_std)
            return _sum_event(np.where(np.abs(unit) < 1, gaussian - log_derivative, -np.inf))


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

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        inside = _all_event((actions >= self.low) & (actions <= self.high))
        return np.where(inside, -self.entropy(), -np.inf)

    def entropy(self) -> np.ndarray:
        return _sum_event(np.log((self.high - self.low).astype(np.float64)))


class Deterministic(Distribution):
    """A point mass on `loc`, one action per row: what a greedy policy or a deterministic actor does."""

    def __init__(self, loc: np.ndarray):
        self.loc = np.asarray(loc)

    def mode(self) -> np.ndarray:
        return self.loc

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.loc

    def parameters(self) -> dict[str, np.ndarray]:
        return {"loc": self.loc}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        return np.where(_all_event(np.asarray(actions) == self.loc), 0.0, -np.inf)

    def entropy(self) -> np.ndarray:
        return np.zeros(len(self.loc))


class Normal(Distribution):
    """Diagonal Gaussians with mean `loc` and standard deviation `scale`, not squashed."""

    def __init__(self, loc: np.ndarray, scale: np.ndarray):
        self.loc = np.asarray(loc, dtype=np.float32)
        self.scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), self.loc.shape)
        if not (self.scale > 0).all():
            raise ValueError(f"a Normal needs positive scales, got {self.scale.tolist()}")

    def mode(self) -> np.ndarray:
        return self.loc

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.loc + self.scale * rng.standard_normal(self.loc.shape).astype(np.float32)

    def parameters(self) -> dict[str, np.ndarray]:
        return {"loc": self.loc, "scale": self.scale}

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        return _sum_event(_normal_log_density(np.asarray(actions, np.float64), self.loc, np.log(self.scale)))

    def entropy(self) -> np.ndarray:
        return _sum_event(0.5 + _HALF_LOG_TWO_PI + np.log(self.scale.astype(np.float64)))


def _normal_log_density(values: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    log_std = np.asarray(log_std, np.float64)
    return -0.5 * ((values - mean) / np.exp(log_std)) ** 2 - log_std - _HALF_LOG_TWO_PI


def _sum_event(values: np.ndarray) -> np.ndarray:
    """Sum over every axis but the batch axis."""
    return values.reshape(len(values), -1).sum(axis=1)


def _all_event(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).all(axis=1)


def distribution_from_outputs(
    outputs: np.ndarray, action_space: gym.spaces.Space, kind: ActorDistributionKind | None = None
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
    if kind == "deterministic":
        if outputs.shape[1:] != (size,):
            raise ValueError(
                f"network outputs {outputs.shape[1:]} per observation; expected actions ({size},)"
            )
        return Deterministic(outputs.reshape(len(outputs), *action_space.shape))
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
    if kind == "gaussian":
        return Normal(first, np.exp(np.clip(second, LOG_STD_MIN, LOG_STD_MAX)))
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
        if {"loc", "scale"} <= parameters.keys():
            return Normal(parameters["loc"], parameters["scale"])
    if "loc" in parameters:
        return Deterministic(parameters["loc"])
    raise ValueError(
        f"distribution parameters {sorted(parameters)} do not describe an action distribution over "
        f"{action_space}; expected logits (Discrete), mean and log_std, mean and noise_std, loc and scale "
        f"(Box), or loc"
    )

"""Uniform distributions over a box: what a random policy draws from. Not read from network outputs."""

from __future__ import annotations

import numpy as np

from gymserve.policies.distributions.base import Distribution, all_event, sum_event


class Uniform(Distribution):
    """Uniform distributions over the box [low, high]; the mode is taken as the centre."""

    parameter_names = ("low", "high")

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
        inside = all_event((actions >= self.low) & (actions <= self.high))
        return np.where(inside, -self.entropy(), -np.inf)

    def entropy(self) -> np.ndarray:
        return sum_event(np.log((self.high - self.low).astype(np.float64)))

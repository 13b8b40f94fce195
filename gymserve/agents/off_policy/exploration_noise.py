"""Temporally correlated exploration noise: the Ornstein-Uhlenbeck process DDPG explores with.

    x <- x + theta (0 - x) dt + sigma sqrt(dt) N(0, 1)      (one process per env and action dim)

It is reset to 0 when an env's episode ends. Its stationary distribution is Gaussian with
standard deviation sigma sqrt(dt / (1 - (1 - theta dt)^2)), which is what an exported policy's
stateless stochastic mode adds instead (the same spread, without the correlation in time).
"""

from __future__ import annotations

import math

import numpy as np


class OrnsteinUhlenbeckNoise:
    """Mean-reverting noise of shape (num_envs, *action_shape), drawn with the caller's generator."""

    def __init__(self, shape: tuple[int, ...], sigma: float, theta: float = 0.15, dt: float = 1e-2):
        if sigma < 0 or theta <= 0 or dt <= 0 or theta * dt >= 2:
            raise ValueError(
                f"need sigma >= 0, theta > 0, dt > 0 and theta * dt < 2; got {sigma}, {theta}, {dt}"
            )
        self.sigma, self.theta, self.dt = sigma, theta, dt
        self.values = np.zeros(shape, np.float32)

    @property
    def stationary_std(self) -> float:
        """The standard deviation the process settles to."""
        return self.sigma * math.sqrt(self.dt / (1.0 - (1.0 - self.theta * self.dt) ** 2))

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Advance every process one step and return the new values."""
        shock = rng.standard_normal(self.values.shape).astype(np.float32)
        self.values = (
            self.values - self.theta * self.values * self.dt + self.sigma * math.sqrt(self.dt) * shock
        ).astype(np.float32)
        return self.values

    def reset(self, rows: np.ndarray) -> None:
        """Restart the processes of the env rows where `rows` is True."""
        self.values[np.asarray(rows, bool)] = 0.0

"""Spaces, networks and statistics shared by the policy tests."""

from __future__ import annotations

import math

from tensorflow_threads import limit_tensorflow_threads

limit_tensorflow_threads()

import gymnasium as gym  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

CARTPOLE_OBSERVATIONS = gym.spaces.Box(
    np.array([-4.8, -np.inf, -0.418, -np.inf], np.float32),
    np.array([4.8, np.inf, 0.418, np.inf], np.float32),
    dtype=np.float32,
)
MINITAUR_OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (28,), np.float32)
# Uneven bounds, so scaling from tanh to the box is exercised, not just the identity on [-1, 1].
MINITAUR_ACTIONS = gym.spaces.Box(
    -1.0 - 0.1 * np.arange(8, dtype=np.float32), 1.0 + 0.2 * np.arange(8, dtype=np.float32), dtype=np.float32
)


def mlp(inputs: int, outputs: int, seed: int, hidden: int = 64) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((inputs,)),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(hidden, activation="tanh"),
            keras.layers.Dense(outputs),
        ]
    )


def observations_for(space: gym.spaces.Box, count: int, seed: int = 0) -> np.ndarray:
    """`count` observations spread over a range the networks respond to."""
    return np.random.default_rng(seed).normal(0.0, 2.0, (count, *space.shape)).astype(np.float32)


def assert_frequencies_match(samples: np.ndarray, probabilities: np.ndarray) -> None:
    """Chi-square goodness of fit at the 0.1% level (critical value by Wilson-Hilferty)."""
    expected = probabilities * len(samples)
    observed = np.bincount(samples, minlength=len(probabilities))
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    dof = len(probabilities) - 1
    z_999 = 3.0902
    critical = dof * (1 - 2 / (9 * dof) + z_999 * math.sqrt(2 / (9 * dof))) ** 3
    assert statistic < critical, (
        f"observed {observed} for expected {expected.round(1)} (chi2 {statistic:.1f})"
    )

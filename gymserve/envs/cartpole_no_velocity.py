"""CartPole without velocity sensors: a partially observed task that needs memory.

The observation is (cart position, pole angle) of `gymserve/CartPole-v1`; dynamics, rewards,
starting states, limits and seeding are unchanged, so for the same seed and actions the
observations are CartPole-v1's with the two velocities left out. A policy that sees one
observation cannot tell which way the pole is falling; one that remembers the previous
observations can.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from gymserve.envs.cartpole import CartPoleEnv, CartPoleVectorEnv, observation_space

OBSERVED = [0, 2]  # cart position, pole angle; velocities (1, 3) are masked


def masked_observation_space() -> spaces.Box:
    full = observation_space()
    return spaces.Box(full.low[OBSERVED], full.high[OBSERVED], dtype=np.float32)


class CartPoleNoVelocityEnv(CartPoleEnv):
    """CartPoleEnv observing only the cart position and the pole angle."""

    def __init__(self, sutton_barto_reward: bool = False, render_mode: str | None = None):
        super().__init__(sutton_barto_reward, render_mode)
        self.observation_space = masked_observation_space()

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        return observation[OBSERVED], reward, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = super().reset(seed=seed, options=options)
        return observation[OBSERVED], info


class CartPoleNoVelocityVectorEnv(CartPoleVectorEnv):
    """CartPoleVectorEnv observing only the cart positions and the pole angles."""

    def __init__(
        self, num_envs: int = 1, max_episode_steps: int = 500, render_mode: str | None = None, **kwargs
    ):
        super().__init__(num_envs, max_episode_steps, render_mode, **kwargs)
        self.single_observation_space = masked_observation_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        observations, rewards, terminated, truncated, info = super().step(actions)
        return observations[:, OBSERVED], rewards, terminated, truncated, info

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        observations, info = super().reset(seed=seed, options=options)
        return observations[:, OBSERVED], info

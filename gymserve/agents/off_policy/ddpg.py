"""Deep Deterministic Policy Gradient (Lillicrap et al., 2016) for bounded Box actions.

One critic Q(s, a) learns y = R + gamma^n (1 - terminated) Qtarget(s', tanh(target_actor(s')));
after every critic step the actor ascends Q(s, tanh(actor(s))) and the target networks move tau
of the way. It is TD3 (td3.py) with one critic, no target smoothing and no delay.

Exploration adds Gaussian noise, or, as in the paper, an Ornstein-Uhlenbeck process per env
(exploration_noise.py, reset at each episode's end), to the actor's action. An exported policy
is stateless, so its stochastic mode adds Gaussian noise with the process's stationary standard
deviation: the same spread per step, without the correlation in time.

Differences from the paper: no batch normalization, no L2 penalty on the critic, actions enter
the critic at its first layer, Adam at 1e-3 for both networks, tau 0.005 and uniform random
actions for the first `learning_starts` steps (Stable-Baselines3's defaults); noise scales are
relative to half the action range.
"""

from __future__ import annotations

from typing import Literal

import gymnasium as gym
import numpy as np
from pydantic import Field

from gymserve.agents.off_policy.exploration_noise import OrnsteinUhlenbeckNoise
from gymserve.agents.off_policy.td3 import TD3, DeterministicActorConfig
from gymserve.agents.training.env_runner import Transition
from gymserve.policies.distributions import NoisyDeterministic

_NOISE_STATE = "ornstein_uhlenbeck_noise"


class DDPGConfig(DeterministicActorConfig):
    """DDPG hyperparameters."""

    exploration_noise: Literal["gaussian", "ornstein_uhlenbeck"] = Field(
        "gaussian", description="Independent Gaussian noise per step, or an Ornstein-Uhlenbeck process."
    )
    ou_theta: float = Field(0.15, gt=0, description="Mean reversion rate of the Ornstein-Uhlenbeck process.")
    ou_dt: float = Field(1e-2, gt=0, description="Time step of the Ornstein-Uhlenbeck process.")


class DDPG(TD3):
    """DDPG: TD3's machinery with one critic, no target smoothing and an actor step per critic step."""

    name = "ddpg"
    config_class = DDPGConfig

    def __init__(self, config: DDPGConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box):
        self._ou_noise: OrnsteinUhlenbeckNoise | None = None
        if config.exploration_noise == "ornstein_uhlenbeck":
            self._ou_noise = OrnsteinUhlenbeckNoise(
                (config.num_envs, *action_space.shape),
                config.exploration_noise_std,
                config.ou_theta,
                config.ou_dt,
            )
        super().__init__(config, observation_space, action_space)

    def target_rules(self) -> tuple[int, int, float, float]:
        return 1, 1, 0.0, 0.0

    def acting_noise_scale(self) -> float:
        if self._ou_noise is None:
            return self.config.exploration_noise_std
        return self._ou_noise.stationary_std

    def noisy_actions(self, distribution: NoisyDeterministic) -> np.ndarray:
        if self._ou_noise is None:
            return super().noisy_actions(distribution)
        actions = distribution.mean + self._ou_noise.sample(self.rng) * self.half_range
        return np.clip(actions, distribution.low, distribution.high)

    def acted(self, transition: Transition) -> None:
        if self._ou_noise is not None:
            self._ou_noise.reset(transition.dones)

    def state(self) -> dict[str, np.ndarray]:
        state = super().state()
        if self._ou_noise is not None:
            state[_NOISE_STATE] = self._ou_noise.values
        return state

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state(arrays)
        if self._ou_noise is not None and _NOISE_STATE in arrays:
            self._ou_noise.values = np.asarray(arrays[_NOISE_STATE], np.float32)

"""Gymnasium environments of gymserve, registered under the `gymserve/` namespace.

All registrations live in the table below with string entry points, so `import gymserve` stays
cheap (pybullet is imported only when a Bullet environment is made). The registry owns the time
limits; bump the `-vN` suffix whenever an environment's behaviour changes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from gymserve.envs.atari import GAMES, atari_env_id

NAMESPACE = "gymserve"

ENVIRONMENTS: tuple[dict[str, Any], ...] = (
    {
        "id": "gymserve/CartPole-v1",
        "entry_point": "gymserve.envs.cartpole:CartPoleEnv",
        "vector_entry_point": "gymserve.envs.cartpole:CartPoleVectorEnv",
        "max_episode_steps": 500,
        "reward_threshold": 475.0,
    },
    {
        "id": "gymserve/CartPoleNoVelocity-v1",
        "entry_point": "gymserve.envs.cartpole_no_velocity:CartPoleNoVelocityEnv",
        "vector_entry_point": "gymserve.envs.cartpole_no_velocity:CartPoleNoVelocityVectorEnv",
        "max_episode_steps": 500,
        "reward_threshold": 475.0,
    },
    {
        "id": "gymserve/CartPoleBullet-v1",
        "entry_point": "gymserve.envs.cartpole_bullet:CartPoleBulletEnv",
        "max_episode_steps": 200,
        "reward_threshold": 190.0,
    },
    {
        "id": "gymserve/CartPoleContinuousBullet-v0",
        "entry_point": "gymserve.envs.cartpole_bullet:CartPoleContinuousBulletEnv",
        "max_episode_steps": 200,
        "reward_threshold": 190.0,
    },
    {
        "id": "gymserve/Minitaur-v0",
        "entry_point": "gymserve.envs.minitaur:MinitaurEnv",
        "max_episode_steps": 1000,
        "reward_threshold": 15.0,
    },
    {
        "id": "gymserve/BrightSide-v0",
        "entry_point": "gymserve.envs.bright_side:BrightSideEnv",
        "reward_threshold": 7.0,
    },
    *(
        {
            "id": atari_env_id(game),
            "entry_point": "gymserve.envs.atari:make_atari_env",
            "vector_entry_point": "gymserve.envs.atari:make_atari_vector_env",
            "kwargs": {"game": game, "training": False},
            "max_episode_steps": 27_000,  # 108,000 frames at 4 frames per step
        }
        for game in GAMES
    ),
)


def register_envs() -> None:
    """Register every gymserve environment; calling it again is harmless."""
    for spec in ENVIRONMENTS:
        if spec["id"] not in gym.registry:
            gym.register(**spec)


def training_options(env_id: str) -> dict[str, Any]:
    """The `gym.make` options of a training env: `training=True` for envs that take it (the Atari
    games: lost-life terminals, clipped rewards); evaluation envs are made without them."""
    spec = gym.spec(env_id)
    return {"training": True} if "training" in spec.kwargs else {}


def env_ids() -> list[str]:
    """The ids of all gymserve environments, in registration order."""
    return [spec["id"] for spec in ENVIRONMENTS]

"""Shared policies and exports: small random-init Keras networks, exported once per session."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, MINITAUR_ACTIONS, MINITAUR_OBSERVATIONS, mlp

from gymserve.policies import ActorPolicy, export_policy


@pytest.fixture(scope="session")
def discrete_policy() -> ActorPolicy:
    """A CartPole-shaped policy: 4 observations, logits over 2 actions."""
    return ActorPolicy(mlp(4, 2, seed=1), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2), seed=0)


@pytest.fixture(scope="session")
def continuous_policy() -> ActorPolicy:
    """An SAC-style Minitaur policy: 28 observations, mean and log_std for 8 motors."""
    return ActorPolicy(mlp(28, 16, seed=2), MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS, seed=0)


@pytest.fixture(scope="session")
def discrete_export(discrete_policy: ActorPolicy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("exports") / "cartpole"
    info = {
        "env_id": "gymserve/CartPole-v1",
        "algorithm": "dqn",
        "train_step": 1200,
        "evaluation": {"average_return": 500.0, "episodes": 20, "seed": 1_000_000, "during_training": True},
    }
    export_policy(discrete_policy, out_dir, metadata=info)
    return out_dir


@pytest.fixture(scope="session")
def continuous_export(continuous_policy: ActorPolicy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("exports") / "minitaur"
    export_policy(continuous_policy, out_dir, metadata={"env_id": "gymserve/Minitaur-v0", "algorithm": "sac"})
    return out_dir

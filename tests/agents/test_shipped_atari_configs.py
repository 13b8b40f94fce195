"""The shipped Atari configs (SB3 zoo hyperparameters, orthogonal starts included; DQN and PPO on
Pong their own 1M- and 3M-step ones) build their networks on the real games, and a short run
trains on clipped, per-life episodes but evaluates full games."""

from __future__ import annotations

import importlib.util
import os

import gymnasium as gym
import keras
import numpy as np
import pytest

import gymserve  # noqa: F401  (registers the environments)
from gymserve.agents import train
from gymserve.agents.training.config import read_config_file, resolve_config, shipped_config_path
from gymserve.agents.training.registry import algorithm_class
from gymserve.envs.atari import atari_env_id

GAMES = ("Pong", "Breakout")


def _require_ale() -> None:
    if importlib.util.find_spec("ale_py") is None:
        reason = 'ale-py is not installed (pip install "gymserve[atari]")'
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the Atari tests must run")
        pytest.skip(reason)


@pytest.mark.parametrize("game", GAMES)
@pytest.mark.parametrize("algorithm", ["dqn", "ppo", "a2c"])
def test_a_shipped_atari_config_builds_its_network_on_the_game(algorithm, game):
    _require_ale()
    env_id = atari_env_id(game)
    path = shipped_config_path(algorithm, env_id)
    assert path.exists()
    config_class = algorithm_class(algorithm).config_class
    resolved = resolve_config(config_class, algorithm, env_id)
    assert all(resolved.source(name) == f"shipped {path.name}" for name in read_config_file(path))
    config = resolved.config
    env = gym.make(env_id)
    agent = algorithm_class(algorithm, config)(config, env.observation_space, env.action_space)
    network = agent.policy_network()
    assert network.inputs[0].dtype == "uint8" and tuple(network.inputs[0].shape) == (None, 4, 84, 84)
    if algorithm != "dqn":  # SB3's actor-critic policies start orthogonal, gain sqrt(2)
        first_conv = next(layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D))
        kernel = first_conv.kernel.numpy().reshape(-1, first_conv.kernel.shape[-1])
        np.testing.assert_allclose(kernel.T @ kernel, 2 * np.eye(kernel.shape[1]), atol=1e-4)


@pytest.mark.slow  # about 4 s: one full game of Pong in the evaluation
def test_a_short_pong_run_evaluates_full_games(tmp_path):
    _require_ale()
    overrides = {
        "max_steps": 256,
        "num_envs": 2,
        "n_steps": 64,
        "batch_size": 64,
        "n_epochs": 1,
        "eval_episodes": 1,
        "linear_decay_steps": None,
    }
    result = train("ppo", atari_env_id("Pong"), tmp_path / "run", overrides, progress_bar=False)
    (evaluation,) = result.history.evaluations()
    # an untrained policy loses a whole game: 21 points against it, hundreds of steps
    assert -21 <= evaluation["eval_return"] <= -15
    assert evaluation["eval_episode_length"] > 500

"""DQN and PPO with the Nature DQN encoder learn gymserve/BrightSide-v0 from its pixels.

Random play, measured here, is right half of the time (about 4 of 8); the optimum is 8. The
shipped configs train until a greedy evaluation reaches 7.5 (about 10 s for PPO, 20 s for DQN on
2 cores), in float32 and with bfloat16 gradient steps, and the trained policy is judged again on
40 episodes it never saw.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents import load_trained_policy, train
from gymserve.agents.off_policy.dqn import DQN, DQNConfig
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.policies.episodes import evaluate
from gymserve.policies.random_policy import RandomPolicy

BRIGHT_SIDE = "gymserve/BrightSide-v0"
TARGET = 7.5  # of 8 steps right; random play is right on half
EPISODES = 40


@pytest.fixture(scope="module")
def random_return() -> float:
    env = gym.make(BRIGHT_SIDE)
    policy = RandomPolicy(env.observation_space, env.action_space, seed=0)
    return evaluate(policy, BRIGHT_SIDE, EPISODES, "stochastic", seed=777).average_return


def test_random_play_is_right_about_half_of_the_time(random_return):
    assert 3.0 <= random_return <= 5.0
    assert random_return + 2.0 < TARGET < 8.0


@pytest.mark.slow  # 10-25 s each on 2 cores
@pytest.mark.parametrize("algorithm", ["dqn", "ppo"])
@pytest.mark.parametrize("mixed_precision", [False, True], ids=["float32", "mixed_bfloat16"])
def test_a_cnn_policy_learns_which_side_is_bright(algorithm, mixed_precision, random_return, tmp_path):
    result = train(
        algorithm, BRIGHT_SIDE, tmp_path / "run", {"mixed_precision": mixed_precision}, progress_bar=False
    )
    assert result.stop_reason == "target_reward"
    trained = load_trained_policy(tmp_path / "run").policy
    fresh = evaluate(trained, BRIGHT_SIDE, EPISODES, "greedy", seed=12345).average_return
    assert fresh >= TARGET > random_return + 2.0


def test_dqn_replays_uint8_frames_at_one_byte_per_pixel():
    """Observation and next observation are kept as the env's uint8 frames, not float32 (4x)."""
    env = gym.make(BRIGHT_SIDE)
    config = DQNConfig(image_encoder="nature_cnn", hidden_sizes=(16,), buffer_size=100)
    dqn = DQN(config, env.observation_space, env.action_space)
    runner = EnvRunner.make(BRIGHT_SIDE, 2, seed=0)
    for _ in range(50):
        dqn.store(runner.step(np.zeros(2, np.int64)))
    batch = dqn.replay.sample(100, np.random.default_rng(0))
    for field in ("observation", "next_observation"):
        assert batch[field].dtype == np.uint8 and batch[field].shape == (100, 1, 36, 36)
        assert batch[field].max() == 255  # real frames, with their bright square

"""The configs `gymserve train` ships for CartPole solve it: a fresh greedy evaluation reaches 475.

(PPO's, which solves fastest, is tested with its step budget in test_ppo.py; DQN's in test_dqn.py.)
"""

import pytest

from gymserve.agents import load_trained_policy, train
from gymserve.episodes import evaluate

CARTPOLE = "gymserve/CartPole-v1"


@pytest.mark.slow  # trains until solved: 3-50 s each here (acer: 30-80 s), at most 2 min in benchmark runs
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("algorithm", ["a2c", "a3c", "acer"])
def test_shipped_config_solves_cartpole(algorithm, seed, tmp_path):
    """Greedy AverageReturn >= 475 over 20 episodes the run never evaluated on, on each of 5 seeds."""
    result = train(algorithm, CARTPOLE, tmp_path / "run", {"seed": seed}, progress_bar=False)
    assert result.stop_reason == "target_reward"
    trained = load_trained_policy(tmp_path / "run")
    assert evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=12345).average_return >= 475

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents import load_trained_policy, train
from gymserve.agents.env_runner import EnvRunner
from gymserve.agents.on_policy import clipped_surrogate_loss
from gymserve.agents.ppo import PPO, PPOConfig
from gymserve.rollout import evaluate

CARTPOLE = "gymserve/CartPole-v1"


def test_clipped_surrogate_loss_by_hand():
    ratios = np.array([0.5, 1.0, 1.5, 0.5])
    advantages = tf.constant([1.0, -1.0, 2.0, -1.0])
    old_log_probs = tf.constant([-1.0, -2.0, -0.5, -1.5])
    log_probs = tf.Variable(old_log_probs + np.log(ratios).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = clipped_surrogate_loss(log_probs, old_log_probs, advantages, clip_coef=0.2)
    # min(r A, clip(r, 0.8, 1.2) A): 0.5 (unclipped), -1, 1.2 * 2 = 2.4 (clipped), 0.8 * -1 = -0.8 (clipped)
    assert float(loss) == pytest.approx(-(0.5 - 1.0 + 2.4 - 0.8) / 4, rel=1e-6)
    # d/dlog_prob of -r A / 4 where unclipped; clipped terms pass no gradient
    np.testing.assert_allclose(
        tape.gradient(loss, log_probs), [-0.5 / 4, 1.0 / 4, 0.0, 0.0], rtol=1e-6, atol=1e-8
    )


def test_batch_size_must_tile_the_rollout():
    with pytest.raises(
        ValueError, match=r"batch_size 100 does not divide the rollout of n_steps \* num_envs = 256"
    ):
        PPOConfig(num_envs=8, n_steps=32, batch_size=100)


def test_learning_rate_and_clip_decay_linearly_with_the_run_steps():
    config = PPOConfig(
        num_envs=2, n_steps=8, batch_size=16, n_epochs=1, hidden_sizes=(8,), linear_decay_steps=64
    )
    env = gym.make(CARTPOLE)
    ppo = PPO(config, env.observation_space, env.action_space)
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    fractions = []
    for _ in range(3):
        fractions.append(ppo.decay_fraction(runner.total_steps))
        ppo.train_iteration(runner)
        assert ppo.learning_rate == pytest.approx(config.learning_rate * fractions[-1], rel=1e-6)
    assert fractions == pytest.approx([1.0, 0.75, 0.5])
    assert runner.total_steps == 48, "in-graph steps are counted on the trainer's runner"


@pytest.mark.slow
def test_shipped_config_solves_cartpole(tmp_path):
    """Greedy AverageReturn >= 475 over 20 episodes, with the defaults `gymserve train` ships."""
    result = train("ppo", CARTPOLE, tmp_path / "run", progress_bar=False)
    assert result.stop_reason == "target_reward"
    assert result.state.best_evaluation_return >= 475
    assert result.total_steps <= 50_000
    trained = load_trained_policy(tmp_path / "run")
    assert evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=12345).average_return >= 475

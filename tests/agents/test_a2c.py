import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.on_policy.a2c import A2C, A2CConfig
from gymserve.agents.on_policy.algorithm import policy_gradient_loss
from gymserve.agents.training.env_runner import EnvRunner

CARTPOLE = "gymserve/CartPole-v1"


def test_policy_gradient_loss_by_hand():
    log_probs = tf.Variable([-1.0, -0.5])
    advantages = tf.constant([2.0, 1.0])
    with tf.GradientTape() as tape:
        loss = policy_gradient_loss(log_probs, advantages)
    assert float(loss) == pytest.approx(-(2.0 * -1.0 + 1.0 * -0.5) / 2)
    np.testing.assert_allclose(tape.gradient(loss, log_probs), [-1.0, -0.5])


def test_each_iteration_is_one_gradient_step_on_the_whole_rollout():
    env = gym.make(CARTPOLE)
    a2c = A2C(A2CConfig(num_envs=4, n_steps=5, hidden_sizes=(8,)), env.observation_space, env.action_space)
    runner = EnvRunner.make(CARTPOLE, 4, seed=0)
    before = [weight.numpy() for weight in a2c.actor_critic.actor.weights]
    metrics = [a2c.train_iteration(runner) for _ in range(3)]
    assert int(a2c.optimizer.iterations.numpy()) == 3
    assert runner.total_steps == 3 * 4 * 5
    assert set(metrics[0]) == {"a2c/policy_loss", "a2c/value_loss", "a2c/entropy", "a2c/approx_kl"}
    assert all(value == pytest.approx(0.0, abs=1e-6) for value in (m["a2c/approx_kl"] for m in metrics)), (
        "the loss is taken under the acting policy"
    )
    assert any(
        not np.array_equal(b, w.numpy()) for b, w in zip(before, a2c.actor_critic.actor.weights, strict=True)
    )

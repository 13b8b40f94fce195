import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from cli_learning import assert_cli_run_beats_random_play_and_exports_exactly

from gymserve.agents.algorithm import UnsupportedActionSpaceError
from gymserve.agents.on_policy.acer import (
    ACER,
    ACERConfig,
    bias_correction_objective,
    retrace_targets,
    trust_region_projection,
)
from gymserve.agents.training.config import ConfigError, resolve_config
from gymserve.agents.training.env_runner import EnvRunner

CARTPOLE = "gymserve/CartPole-v1"


def test_retrace_targets_by_hand_on_a_tiny_trajectory():
    """Two envs, three steps; gamma 0.9. Env 0 runs on; env 1 is truncated at t=0, terminated at t=2."""
    rewards = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    taken_q_values = [[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]]
    next_values = [[4.0, 4.0], [5.0, 5.0], [6.0, 6.0]]
    weights = [[0.9, 0.9], [0.5, 0.5], [0.2, 0.2]]
    terminated = [[False, False], [False, False], [False, True]]
    truncated = [[False, True], [False, False], [False, False]]
    targets = retrace_targets(
        *(tf.constant(value) for value in (rewards, taken_q_values, next_values, weights)),
        tf.constant(terminated),
        tf.constant(truncated),
        gamma=0.9,
    ).numpy()

    # Env 0: the last step bootstraps from V(s'); earlier ones add c_t+1 * (Q_ret_t+1 - Q_t+1).
    last = 3.0 + 0.9 * 6.0  # 8.4
    middle = 2.0 + 0.9 * (5.0 + 0.2 * (last - 1.5))  # 7.742
    first = 1.0 + 0.9 * (4.0 + 0.5 * (middle - 1.0))  # 7.6339
    np.testing.assert_allclose(targets[:, 0], [first, middle, last], rtol=1e-6)
    # Env 1: terminated at t=2 (no bootstrap); t=1 continues; truncated at t=0 bootstraps from V(s'_0) only.
    last, middle = 3.0, 2.0 + 0.9 * (5.0 + 0.2 * (3.0 - 1.5))
    np.testing.assert_allclose(targets[:, 1], [1.0 + 0.9 * 4.0, middle, last], rtol=1e-6)


def test_truncated_importance_weight_caps_the_ratio_at_truncation_clip():
    env = gym.make(CARTPOLE)
    acer = ACER(ACERConfig(hidden_sizes=(4,), truncation_clip=10.0), env.observation_space, env.action_space)
    log_probs = tf.constant(np.log([0.8, 0.4]), tf.float32)
    behaviour_log_probs = tf.constant(np.log([0.05, 0.5]), tf.float32)  # ratios 16 and 0.8
    advantages = tf.constant([2.0, -1.0])
    loss = float(acer.policy_loss(log_probs, behaviour_log_probs, advantages, 1.0))
    expected = -(10.0 * 2.0 * math.log(0.8) + 0.8 * -1.0 * math.log(0.4)) / 2
    assert loss == pytest.approx(expected, rel=1e-6)


def test_bias_correction_weighs_only_actions_whose_ratio_exceeds_the_clip():
    """pi = [0.8, 0.2], mu = [0.05, 0.95], c = 2: ratios 16 (weight 1 - 2/16) and 0.21 (weight 0)."""
    logits = tf.constant(np.log([[0.8, 0.2]]), tf.float32)
    behaviour = tf.constant([[0.05, 0.95]])
    q_values = tf.constant([[1.0, 3.0]])
    values = tf.constant([0.8 * 1.0 + 0.2 * 3.0])  # 1.4
    with tf.GradientTape() as tape:
        tape.watch(logits)
        objective = bias_correction_objective(tf.nn.log_softmax(logits), behaviour, q_values, values, 2.0)
    coefficient = (1.0 - 2.0 / 16.0) * 0.8 * (1.0 - 1.4)  # the constant weight of log pi(a0)
    assert float(objective[0]) == pytest.approx(coefficient * math.log(0.8), rel=1e-5)
    # d log pi(a0) / d logits = onehot(a0) - pi
    np.testing.assert_allclose(
        tape.gradient(objective, logits), [[coefficient * 0.2, -coefficient * 0.2]], rtol=1e-5
    )


def test_trust_region_projection_by_hand():
    gradient = tf.constant([[3.0, 1.0], [1.0, 0.1], [2.0, 2.0]])
    kl_gradient = tf.constant([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    projected = trust_region_projection(gradient, kl_gradient, delta=1.0).numpy()
    # Row 0: k.g = 3 > 1, so z = g - (3 - 1) / 1 * k, which lands on k.z = delta.
    # Row 1: k.g = 0.2 <= 1, inside; row 2: k = 0 (pi equals the average), nothing to project.
    np.testing.assert_allclose(projected, [[1.0, 1.0], [1.0, 0.1], [2.0, 2.0]])


def test_trust_region_projection_is_the_closest_point_within_delta():
    rng = np.random.default_rng(0)
    gradient, kl_gradient = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    projected = trust_region_projection(tf.constant(gradient), tf.constant(kl_gradient), 0.5).numpy()
    along_k = (projected * kl_gradient).sum(axis=1)
    assert np.all(along_k <= 0.5 + 1e-9)
    moved = ~np.all(np.isclose(projected, gradient), axis=1)
    assert 0 < moved.sum() < 200, "some rows lie outside, some inside"
    np.testing.assert_allclose(along_k[moved], 0.5, err_msg="a moved row lands on the boundary")
    residual = gradient[moved] - projected[moved]
    cross = np.cross(residual, kl_gradient[moved])
    np.testing.assert_allclose(cross, 0.0, atol=1e-9, err_msg="the move is along k, the shortest way")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"gae_lambda": 0.9}, "gae_lambda does not apply to acer"),
        ({"buffer_size": 100}, "buffer_size 100 holds no rollout of n_steps * num_envs = 160 steps"),
        ({"average_decay": 1.0}, "average_decay: Input should be less than 1"),
    ],
)
def test_unusable_configs_are_refused_with_the_reason(fields, message):
    """Over the shipped CartPole config (8 envs x 20 steps)."""
    with pytest.raises(ConfigError) as error:
        resolve_config(ACERConfig, "acer", CARTPOLE, overrides=fields)
    assert message in str(error.value)


def test_box_actions_are_refused():
    box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    with pytest.raises(UnsupportedActionSpaceError, match="acer acts only in Discrete action spaces"):
        ACER(ACERConfig(), gym.spaces.Box(-1.0, 1.0, (4,), np.float32), box)


def small_acer(**fields) -> ACER:
    env = gym.make(CARTPOLE)
    config = ACERConfig(num_envs=2, n_steps=8, hidden_sizes=(8,), buffer_size=64, **fields)
    return ACER(config, env.observation_space, env.action_space)


def test_an_iteration_stores_its_rollout_and_the_average_policy_follows_the_actor():
    acer = small_acer(learning_starts=10_000)
    average_before = [weight.numpy() for weight in acer.average_actor.trainable_weights]
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    metrics = acer.train_iteration(runner)
    assert runner.total_steps == 16 and int(acer.replay.size.numpy()) == 1
    assert acer.actor_critic.critic(np.zeros((3, 4), np.float32)).shape == (3, 2), "one Q per action"
    assert metrics["acer/replayed_rollouts"] == 0.0, "learning_starts not reached"
    assert metrics["acer/average_kl"] == pytest.approx(0.0, abs=1e-7), "the average starts as the actor"
    for average, before, weight in zip(
        acer.average_actor.trainable_weights, average_before, acer.actor.trainable_weights, strict=True
    ):
        np.testing.assert_allclose(
            average.numpy(), 0.99 * before + 0.01 * weight.numpy(), rtol=1e-5, atol=1e-7
        )
    slots = {name: slot.numpy()[0] for name, slot in acer.replay.slots.items()}
    log_probabilities = tf.nn.log_softmax(slots["policy_outputs"]).numpy()
    taken = np.take_along_axis(log_probabilities, slots["raw_actions"][..., np.newaxis], axis=-1)[..., 0]
    np.testing.assert_allclose(
        taken, slots["log_probs"], rtol=1e-5, err_msg="the stored outputs are the acting policy's"
    )


def test_replayed_updates_follow_the_replay_ratio_once_learning_starts():
    acer = small_acer(learning_starts=16, replay_ratio=3.0)
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    replayed = [acer.train_iteration(runner)["acer/replayed_rollouts"] for _ in range(30)]
    assert int(acer.replay.size.numpy()) == 4, "a full replay of 64 steps holds 4 rollouts of 16"
    assert int(acer.optimizer.iterations.numpy()) == 30 + sum(replayed), (
        "one step per fresh or replayed rollout"
    )
    assert 2.0 < np.mean(replayed) < 4.0, "Poisson with mean 3"


def test_the_replay_is_checkpointed(tmp_path):
    acer = small_acer(learning_starts=16, replay_ratio=1.0)
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    for _ in range(5):
        acer.train_iteration(runner)
    acer.save(tmp_path)
    restored = small_acer(learning_starts=16, replay_ratio=1.0)
    restored.restore(tmp_path)
    assert int(restored.replay.position.numpy()) == 1 and int(restored.replay.size.numpy()) == 4
    for name, slot in acer.replay.slots.items():
        np.testing.assert_array_equal(restored.replay.slots[name].numpy(), slot.numpy(), err_msg=name)
    for network, restored_network in zip(acer.networks().values(), restored.networks().values(), strict=True):
        for weight, restored_weight in zip(network.weights, restored_network.weights, strict=True):
            np.testing.assert_array_equal(restored_weight.numpy(), weight.numpy())


@pytest.mark.slow
def test_cli_trains_cartpole_far_beyond_random_play_and_exports_it_exactly(tmp_path, capsys):
    """The shipped config, 8,192 steps."""
    config = {"eval_interval": 4096}
    assert_cli_run_beats_random_play_and_exports_exactly("acer", config, 8192, tmp_path, capsys)

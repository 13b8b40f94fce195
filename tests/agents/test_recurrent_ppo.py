"""Recurrent PPO: sequences for truncated backpropagation, state resets, and learning with memory."""

import json

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents import load_trained_policy, train
from gymserve.agents.networks import recurrent_actor_critic
from gymserve.agents.on_policy.graph_envs import InGraphCartPole
from gymserve.agents.on_policy.ppo import PPO, PPOConfig
from gymserve.agents.on_policy.recurrent_ppo import (
    RecurrentPPO,
    RecurrentRollout,
    collect_recurrent_rollout,
    sequence_batch,
)
from gymserve.agents.training.config import shipped_config_path
from gymserve.agents.training.registry import algorithm_class
from gymserve.agents.training.runs import RunInfo, build_algorithm
from gymserve.policies.distributions import Categorical
from gymserve.policies.episodes import evaluate
from gymserve.policies.random_policy import RandomPolicy

NO_VELOCITY = "gymserve/CartPoleNoVelocity-v1"


def spaces() -> tuple[gym.spaces.Box, gym.spaces.Discrete]:
    env = gym.make(NO_VELOCITY)
    return env.observation_space, env.action_space


def test_lstm_units_make_ppo_recurrent_and_sequences_must_tile_rollouts_and_minibatches():
    observation_space, action_space = spaces()
    config = PPOConfig(num_envs=2, n_steps=8, batch_size=8, bptt_length=4, lstm_units=3)
    assert algorithm_class("ppo", config) is RecurrentPPO
    assert type(build_algorithm(RunInfo("ppo", NO_VELOCITY, config))) is RecurrentPPO
    feed_forward = PPOConfig(num_envs=2, n_steps=8, batch_size=8)
    assert algorithm_class("ppo", feed_forward) is PPO
    assert type(build_algorithm(RunInfo("ppo", NO_VELOCITY, feed_forward))) is PPO
    with pytest.raises(ValueError, match=r"^PPO is feed-forward but the config's lstm_units is 3; "):
        PPO(config, observation_space, action_space)
    with pytest.raises(ValueError, match=r"^RecurrentPPO is recurrent but the config's lstm_units is None; "):
        RecurrentPPO(feed_forward, observation_space, action_space)
    with pytest.raises(ValueError, match=r"n_steps 8 is not a multiple of bptt_length 3"):
        PPOConfig(num_envs=2, n_steps=8, batch_size=8, bptt_length=3, lstm_units=3)
    with pytest.raises(ValueError, match=r"batch_size 4 is not a multiple of bptt_length 8"):
        PPOConfig(num_envs=2, n_steps=8, batch_size=4, bptt_length=8, lstm_units=3)


def test_sequences_are_each_envs_consecutive_steps_with_the_state_at_their_first_step():
    steps, envs = 6, 2
    step_numbers = 10 * np.arange(steps, dtype=np.float32)[:, None] + np.arange(envs, dtype=np.float32)
    zeros = tf.zeros((steps, envs))
    rollout = RecurrentRollout(
        observations=tf.constant(step_numbers[..., None]),
        raw_actions=tf.zeros((steps, envs), tf.int64),
        log_probs=zeros,
        rewards=zeros,
        terminated=tf.zeros((steps, envs), tf.bool),
        truncated=tf.zeros((steps, envs), tf.bool),
        values=zeros,
        next_values=zeros,
        episode_starts=zeros,
        states=(tf.constant(step_numbers[..., None]), tf.constant(-step_numbers[..., None])),
    )
    batch = sequence_batch(rollout, gamma=0.9, gae_lambda=0.9, sequence_length=3)
    # Sequence i is env i % 2, steps 0-2 for i < 2 and 3-5 after.
    np.testing.assert_array_equal(
        batch["observations"].numpy()[..., 0], [[0, 10, 20], [1, 11, 21], [30, 40, 50], [31, 41, 51]]
    )
    np.testing.assert_array_equal(batch["state_0"].numpy()[:, 0], [0, 1, 30, 31])
    np.testing.assert_array_equal(batch["state_1"].numpy()[:, 0], [0, -1, -30, -31])
    assert batch["advantages"].shape == (4, 3) and batch["raw_actions"].shape == (4, 3)
    assert batch["state_0"].shape == (4, 1)


def test_the_rollout_carries_the_state_and_zeroes_it_where_an_episode_starts():
    observation_space, action_space = spaces()
    networks = recurrent_actor_critic(observation_space, action_space, lstm_units=4)
    env = InGraphCartPole(3, max_episode_steps=500, seed=0, observed=[0, 2])
    memory = [
        tf.Variable(tf.fill((3, 4), 0.5)),
        tf.Variable(tf.fill((3, 4), 0.5)),
        tf.Variable([1.0, 0.0, 0.0]),
    ]
    generator = tf.random.Generator.from_seed(1)
    rollout = collect_recurrent_rollout(env, networks, Categorical.Graph(action_space), generator, 40, memory)
    states, starts = rollout.states[0].numpy(), rollout.episode_starts.numpy()
    ended = (rollout.terminated | rollout.truncated).numpy()
    assert ended[:-1].any(), "random play ends episodes within 40 steps"
    np.testing.assert_array_equal(starts[1:], ended[:-1])
    assert np.all(states[starts == 1] == 0), "an episode starts from the zero state"
    np.testing.assert_array_equal(states[0, 1:], 0.5)  # running episodes keep the carried state
    for t in range(39):
        _, _, next_hidden, _ = networks.both(
            [rollout.observations[t], rollout.states[0][t], rollout.states[1][t]], training=False
        )
        running = starts[t + 1] == 0
        np.testing.assert_allclose(states[t + 1][running], next_hidden.numpy()[running], rtol=1e-6)
    np.testing.assert_array_equal(memory[2].numpy(), ended[-1].astype(np.float32))


def random_play_return() -> float:
    """Random play on the partially observed cart-pole, 20 episodes (about 22)."""
    return evaluate(RandomPolicy(*spaces(), seed=0), NO_VELOCITY, 20, seed=12345).average_return


@pytest.mark.slow
def test_recurrent_ppo_balances_without_velocities_where_feed_forward_ppo_cannot(tmp_path):
    """The shipped config (an LSTM) reaches a greedy 20-episode AverageReturn >= 475; PPO without
    memory, with CartPole-v1's shipped config, stays near random play (benchmarks/recurrent_ppo.py
    runs seeds 0-2 of both)."""
    result = train("ppo", NO_VELOCITY, tmp_path / "lstm", config={"seed": 1}, progress_bar=False)
    assert result.stop_reason == "target_reward"
    trained = load_trained_policy(tmp_path / "lstm")
    assert evaluate(trained.policy, NO_VELOCITY, 20, "greedy", seed=12345).average_return >= 475

    feed_forward = json.loads(shipped_config_path("ppo", "gymserve/CartPole-v1").read_text())
    feed_forward.update(seed=1, max_steps=30_000, linear_decay_steps=30_000, lstm_units=None)
    train("ppo", NO_VELOCITY, tmp_path / "mlp", config=feed_forward, progress_bar=False)
    memoryless = load_trained_policy(tmp_path / "mlp")
    assert memoryless.policy.policy_state_spec == ()
    feed_forward_return = evaluate(memoryless.policy, NO_VELOCITY, 20, "greedy", seed=12345).average_return
    assert feed_forward_return < 5 * random_play_return() < 475 / 3

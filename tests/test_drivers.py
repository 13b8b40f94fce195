import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.policies import RandomPolicy
from gymserve.tf_agents.driver_metrics import AverageEpisodeLength, AverageReturn
from gymserve.tf_agents.drivers import Driver, StepType, Trajectory, trajectory_spec

FIRST, MID, LAST = StepType.FIRST, StepType.MID, StepType.LAST


def collect(driver):
    trajectories = []
    driver.observers.append(trajectories.append)
    driver.run()
    driver.observers.remove(trajectories.append)
    return trajectories


def test_a_single_env_episode_replays_exactly_in_a_fresh_env():
    env = gym.make("gymserve/CartPole-v1")
    policy = RandomPolicy(env.observation_space, env.action_space, seed=0)
    average_return, average_length = AverageReturn(), AverageEpisodeLength()
    driver = Driver(env, policy, observers=[average_return, average_length], num_episodes=3, seed=5)
    items = collect(driver)
    replay = gym.make("gymserve/CartPole-v1")
    observation, _ = replay.reset(seed=5)
    returns, total = [], 0.0
    for item in items:
        assert all(len(field) == 1 for field in item)  # a batch of one
        if item.step_type[0] == LAST:  # boundary: the env restarts, the action is not executed
            assert item.next_step_type[0] == FIRST and item.reward[0] == 0
            observation, _ = replay.reset()
            continue
        np.testing.assert_array_equal(item.observation[0], observation)
        observation, reward, terminated, truncated, _ = replay.step(int(item.action[0]))
        total += reward
        assert item.reward[0] == reward and item.discount[0] == (0.0 if terminated else 1.0)
        assert item.next_step_type[0] == (LAST if terminated or truncated else MID)
        if terminated or truncated:
            returns.append(total)
            total = 0.0
    assert len(returns) == 3 and items[-1].next_step_type[0] == LAST
    assert average_return.result() == pytest.approx(np.mean(returns))
    assert average_length.result() == pytest.approx(np.mean(returns))  # CartPole pays 1 per step


def test_vector_envs_step_together_with_boundaries_between_episodes_and_fill_a_buffer():
    envs = gym.make_vec("gymserve/CartPole-v1", num_envs=3, vectorization_mode="vector_entry_point")
    policy = RandomPolicy(envs.single_observation_space, envs.single_action_space, seed=1)
    buffer = ReplayBuffer(
        trajectory_spec(envs.single_observation_space, envs.single_action_space), batch_size=3, max_length=400
    )
    driver = Driver(envs, policy, observers=[buffer.add_batch], num_steps=200, seed=0)
    items = collect(driver)
    not_boundaries = sum(int((item.step_type != LAST).sum()) for item in items)
    assert 200 <= not_boundaries < 203
    history = buffer.gather_all()
    assert isinstance(history, Trajectory) and history.observation.shape == (3, len(items), 4)
    for row in range(3):
        step_types, next_types = history.step_type[row], history.next_step_type[row]
        np.testing.assert_array_equal(step_types[1:], next_types[:-1])  # items chain in time
        assert step_types[0] == FIRST
        assert (history.reward[row][step_types == LAST] == 0).all()
        assert (next_types[step_types == LAST] == FIRST).all()
    assert (history.step_type == LAST).sum() >= 3  # random CartPole episodes last about 20 steps


def test_a_driver_continues_its_episodes_across_runs():
    env = gym.make("gymserve/CartPole-v1")
    policy = RandomPolicy(env.observation_space, env.action_space, seed=2)
    driver = Driver(env, policy, num_steps=4, seed=0)
    first, second = collect(driver), collect(driver)
    assert len(first) == len(second) == 4
    np.testing.assert_array_equal(second[0].step_type, first[-1].next_step_type)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give num_steps or num_episodes, not both nor neither"),
        ({"num_steps": 1, "num_episodes": 1}, "not both"),
        ({"num_steps": 0}, "num_steps must be a positive integer, got 0"),
    ],
)
def test_bad_driver_arguments_are_rejected(kwargs, message):
    env = gym.make("gymserve/CartPole-v1")
    with pytest.raises(ValueError, match=message):
        Driver(env, RandomPolicy(env.observation_space, env.action_space), **kwargs)


def test_metrics_are_zero_before_an_episode_ends_and_reject_a_bad_buffer_size():
    assert AverageReturn().result() == 0.0
    with pytest.raises(ValueError, match="buffer_size must be a positive integer"):
        AverageEpisodeLength(buffer_size=0)

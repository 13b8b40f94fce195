import gymnasium as gym
import numpy as np

import gymserve  # noqa: F401  (registers the environments)


def test_observations_are_cartpoles_positions_for_the_same_seed_and_actions():
    full, masked = gym.make("gymserve/CartPole-v1"), gym.make("gymserve/CartPoleNoVelocity-v1")
    assert masked.observation_space.shape == (2,)
    expected, _ = full.reset(seed=4)
    observation, _ = masked.reset(seed=4)
    actions = np.random.default_rng(0).integers(2, size=300)
    for action in actions:
        np.testing.assert_array_equal(observation, expected[[0, 2]])
        expected, reward, terminated, truncated, _ = full.step(int(action))
        observation, masked_reward, masked_terminated, masked_truncated, _ = masked.step(int(action))
        assert (masked_reward, masked_terminated, masked_truncated) == (reward, terminated, truncated)
        if terminated or truncated:
            expected, _ = full.reset()
            observation, _ = masked.reset()


def test_the_vector_env_masks_the_same_way():
    kwargs = {"num_envs": 3, "vectorization_mode": "vector_entry_point"}
    full = gym.make_vec("gymserve/CartPole-v1", **kwargs)
    masked = gym.make_vec("gymserve/CartPoleNoVelocity-v1", **kwargs)
    assert masked.single_observation_space.shape == (2,) and masked.observation_space.shape == (3, 2)
    expected, _ = full.reset(seed=1)
    observation, _ = masked.reset(seed=1)
    for _ in range(60):
        np.testing.assert_array_equal(observation, expected[:, [0, 2]])
        actions = np.array([0, 1, 1])
        expected, rewards, terminated, _, _ = full.step(actions)
        observation, masked_rewards, masked_terminated, _, _ = masked.step(actions)
        np.testing.assert_array_equal(masked_rewards, rewards)
        np.testing.assert_array_equal(masked_terminated, terminated)

"""The Bullet cart-poles: reference physics, balancing, falling, errors and rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from pybullet_envs_reference import load_bullet_module

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs.cartpole_bullet import CartPoleBulletEnv, CartPoleContinuousBulletEnv
from gymserve.envs.errors import ResetNeededError

DISCRETE_ID = "gymserve/CartPoleBullet-v1"
CONTINUOUS_ID = "gymserve/CartPoleContinuousBullet-v0"
UPRIGHT = {"low": 0.0, "high": 0.0}  # reset options: pole upright, everything at rest


def balancing_action(observation: np.ndarray) -> int:
    """Push towards the side the pole leans to, anticipating with the velocities."""
    theta, theta_dot, x, x_dot = observation
    return int(10 * theta + theta_dot + 0.5 * x + x_dot > 0)


@pytest.mark.filterwarnings("ignore:.*precision lowered:UserWarning", "ignore:pkg_resources:UserWarning")
def test_discrete_physics_match_the_pybullet_envs_reference():
    reference = load_bullet_module("cartpole_bullet").CartPoleBulletEnv()
    env = CartPoleBulletEnv()
    rng = np.random.default_rng(0)
    steps = 0
    for episode in range(10):
        reference.np_random = np.random.default_rng(episode)  # the reset state from the same generator
        reference_observation = reference.reset()
        observation, _ = env.reset(seed=episode)
        assert observation.tobytes() == reference_observation.astype(np.float32).tobytes()
        done = False
        while not done:
            action = int(rng.integers(2))
            reference_observation, reference_reward, done, _ = reference.step(action)
            observation, reward, terminated, _, _ = env.step(action)
            assert observation.tobytes() == reference_observation.astype(np.float32).tobytes()
            assert (reward, terminated) == (reference_reward, done)
            steps += 1
    reference.close()
    env.close()
    assert steps > 100


def test_upright_pole_without_force_earns_one_per_step_until_the_time_limit():
    env = gym.make(CONTINUOUS_ID)
    observation, _ = env.reset(seed=0, options=UPRIGHT)
    rewards = []
    truncated = terminated = False
    while not (terminated or truncated):
        observation, reward, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        rewards.append(reward)
    assert rewards == [1.0] * 200 and truncated and not terminated
    assert np.array_equal(observation, np.zeros(4, dtype=np.float32))
    env.close()


def test_balancing_controller_earns_one_per_step_until_the_time_limit():
    env = gym.make(DISCRETE_ID)
    observation, _ = env.reset(seed=3)
    rewards = []
    truncated = terminated = False
    while not (terminated or truncated):
        observation, reward, terminated, truncated, _ = env.step(balancing_action(observation))
        rewards.append(reward)
    assert rewards == [1.0] * 200 and truncated and not terminated
    env.close()


@pytest.mark.parametrize(
    ("env_class", "push_right"),
    [(CartPoleBulletEnv, 1), (CartPoleContinuousBulletEnv, np.ones(1, np.float32))],
)
def test_pole_pushed_over_terminates_and_then_needs_a_reset(env_class, push_right):
    env = env_class()
    env.reset(seed=0, options=UPRIGHT)
    steps, terminated = 0, False
    while not terminated and steps < 50:
        observation, reward, terminated, truncated, _ = env.step(push_right)
        steps += 1
        assert reward == 1.0 and not truncated
    assert terminated and steps < 20
    assert observation[0] < -np.radians(12)  # pushed right, the pole falls to the left
    assert env.observation_space.contains(observation)
    with pytest.raises(ResetNeededError, match=r"terminated: call reset\(\)"):
        env.step(push_right)
    env.reset(seed=0)
    env.step(push_right)
    env.close()


def test_the_same_seed_replays_the_same_episode_in_one_physics_server():
    env = CartPoleContinuousBulletEnv()
    env.action_space.seed(1)
    actions = [env.action_space.sample() for _ in range(60)]

    def rollout() -> list[bytes]:
        observations = [env.reset(seed=7)[0].tobytes()]
        for action in actions:
            observation, _, terminated, _, _ = env.step(action)
            observations.append(observation.tobytes())
            if terminated:
                break
        return observations

    assert rollout() == rollout()
    env.close()


DISCRETE_EXPECTATION = r"not in the action space Discrete\(2\): expected one integer from 0 to 1"
BOX_EXPECTATION = r"expected a number array of shape \(1,\) within \[-1.0, 1.0\]"


@pytest.mark.parametrize(
    ("env_class", "action", "message"),
    [
        (CartPoleBulletEnv, action, DISCRETE_EXPECTATION)
        for action in (2, -1, 0.5, np.nan, None, np.array([1]))
    ]
    + [
        (CartPoleContinuousBulletEnv, action, BOX_EXPECTATION)
        for action in (np.array([1.5], np.float32), np.array([np.nan], np.float32), np.zeros(2), 0.5, "0.5")
    ],
)
def test_actions_outside_the_action_space_are_rejected(env_class, action, message):
    env = env_class()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)
    env.close()


def test_continuous_force_scales_with_the_action():
    pushes = {}
    for magnitude in (0.25, 1.0):
        env = CartPoleContinuousBulletEnv()
        env.reset(seed=0, options=UPRIGHT)
        pushes[magnitude] = env.step(np.array([magnitude]))[0][3]  # cart velocity after one step
        env.close()
    assert pushes[0.25] > 0
    assert pushes[1.0] == pytest.approx(4 * pushes[0.25], rel=1e-3)


def test_step_before_reset_and_use_after_close_raise():
    env = CartPoleBulletEnv()
    with pytest.raises(ResetNeededError, match=r"before reset\(\)"):
        env.step(0)
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


def test_rgb_array_frame_has_the_requested_size_and_shows_the_cart():
    env = CartPoleBulletEnv(render_mode="rgb_array", render_width=96, render_height=64)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
    blue = (frame[..., 2] > 100) & (frame[..., 0] < 50) & (frame[..., 1] < 50)  # the cart is blue
    columns = np.nonzero(blue.any(axis=0))[0]
    assert columns.size > 3 and abs(columns.mean() - 48) < 8  # centred, as the cart starts near x = 0
    env.close()
    default_size = CartPoleBulletEnv(render_mode="rgb_array")
    assert default_size.render().shape == (200, 320, 3)
    default_size.close()

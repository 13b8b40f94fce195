"""gymserve/CartPole-v1 against Gymnasium's CartPole-v1: bit parity, errors and rendering."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs.cartpole import CartPoleEnv, CartPoleVectorEnv
from gymserve.envs.errors import ResetNeededError

GYMNASIUM_ID = "CartPole-v1"
OUR_ID = "gymserve/CartPole-v1"


def balancing_actions(observations: np.ndarray) -> np.ndarray:
    """A linear controller that keeps the pole up for the whole 500 steps."""
    x, x_dot, theta, theta_dot = np.moveaxis(observations, -1, 0)
    return (10 * theta + theta_dot + 0.1 * x + 0.5 * x_dot > 0).astype(np.int64)


def single_rollout(env_id: str, seed: int, steps: int, **kwargs) -> list[tuple]:
    """Transitions of one env over `steps` steps; odd episodes act randomly so both episode ends occur."""
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(seed)
    observation, _ = env.reset(seed=seed)
    transitions = [(observation.tobytes(),)]
    episode = 0
    for _ in range(steps):
        explore = episode % 2 == 1 or rng.random() < 0.1
        action = int(rng.integers(2)) if explore else int(balancing_actions(observation))
        observation, reward, terminated, truncated, _ = env.step(action)
        assert observation.dtype == np.float32 and type(reward) is float
        transitions.append((observation.tobytes(), reward, terminated, truncated))
        if terminated or truncated:
            episode += 1
            observation, _ = env.reset()
            transitions.append((observation.tobytes(),))
    return transitions


def vector_rollout(env_id: str, seed: int, steps: int, num_envs: int, **kwargs) -> list[tuple]:
    """Transitions of a vector env; half of the sub-environments act randomly."""
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    rng = np.random.default_rng(seed)
    random_columns = np.arange(num_envs) % 2 == 1
    observations, _ = env.reset(seed=seed)
    transitions = [(observations.tobytes(),)]
    for _ in range(steps):
        actions = balancing_actions(observations)
        explore = random_columns | (rng.random(num_envs) < 0.1)
        actions[explore] = rng.integers(2, size=np.count_nonzero(explore))
        observations, rewards, terminated, truncated, _ = env.step(actions)
        assert observations.dtype == np.float32 and rewards.dtype == np.float32
        transitions.append(
            (observations.tobytes(), rewards.tobytes(), terminated.tobytes(), truncated.tobytes())
        )
    env.close()
    return transitions


def count_episode_ends(transitions: list[tuple]) -> tuple[int, int]:
    steps = [t for t in transitions if len(t) == 4]
    return sum(t[2] for t in steps), sum(t[3] for t in steps)


@pytest.mark.parametrize("seed", [0, 1])
def test_single_env_is_bit_identical_to_gymnasium(seed):
    ours = single_rollout(OUR_ID, seed, 6000)
    assert ours == single_rollout(GYMNASIUM_ID, seed, 6000)
    terminations, truncations = count_episode_ends(ours)
    assert terminations > 5 and truncations > 3


def test_sutton_barto_reward_and_reset_bounds_match_gymnasium():
    kwargs = {"sutton_barto_reward": True}
    assert single_rollout(OUR_ID, 3, 1500, **kwargs) == single_rollout(GYMNASIUM_ID, 3, 1500, **kwargs)
    options = {"low": -0.2, "high": 0.1}
    ours, _ = gym.make(OUR_ID).reset(seed=5, options=options)
    theirs, _ = gym.make(GYMNASIUM_ID).reset(seed=5, options=options)
    assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize(("num_envs", "seed"), [(16, 0), (3, 1)])
def test_vector_env_is_bit_identical_to_gymnasium_including_autoresets(num_envs, seed):
    ours = vector_rollout(OUR_ID, seed, 1500, num_envs)
    assert ours == vector_rollout(GYMNASIUM_ID, seed, 1500, num_envs)
    truncated_any = any(np.frombuffer(t[3], dtype=bool).any() for t in ours if len(t) == 4)
    terminated_any = any(np.frombuffer(t[2], dtype=bool).any() for t in ours if len(t) == 4)
    assert truncated_any and terminated_any


def test_vector_env_sutton_barto_reward_and_short_time_limit_match_gymnasium():
    kwargs = {"sutton_barto_reward": True, "max_episode_steps": 50}
    assert vector_rollout(OUR_ID, 2, 400, 4, **kwargs) == vector_rollout(GYMNASIUM_ID, 2, 400, 4, **kwargs)


def test_vector_entry_point_is_our_vector_env():
    env = gym.make_vec(OUR_ID, num_envs=4, vectorization_mode="vector_entry_point")
    assert isinstance(env.unwrapped, CartPoleVectorEnv)
    assert env.unwrapped.max_episode_steps == 500


@pytest.mark.parametrize("action", [2, -1, 0.0, 1.5, np.nan, "1", None, np.array([1]), np.float32(1.0)])
def test_single_env_rejects_actions_outside_discrete_two(action):
    env = CartPoleEnv()
    env.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"not in the action space Discrete\(2\): expected one integer from 0 to 1"
    ):
        env.step(action)


@pytest.mark.parametrize(
    "actions",
    [np.array([0, 1, 2]), np.array([0, 1]), np.array([0.0, 1.0, 0.0]), np.array([[0, 1, 0]]), [0, 1, -1], 1],
)
def test_vector_env_rejects_bad_action_batches(actions):
    env = CartPoleVectorEnv(num_envs=3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected an integer array of shape \(3,\) within \[0, 1\]"):
        env.step(actions)


def test_accepted_action_types():
    env = CartPoleEnv()
    env.reset(seed=0)
    for action in (1, np.int64(0), np.array(1), np.uint8(1)):
        env.step(action)
    vector_env = CartPoleVectorEnv(num_envs=2)
    vector_env.reset(seed=0)
    vector_env.step([0, 1])
    vector_env.step(np.array([1, 0], dtype=np.int32))


def test_step_before_reset_and_after_termination_raise():
    env = CartPoleEnv()
    with pytest.raises(ResetNeededError, match=r"before reset\(\)"):
        env.step(0)
    env.reset(seed=0)
    terminated = False
    for _ in range(100):
        *_, terminated, _, _ = env.step(1)
        if terminated:
            break
    assert terminated
    with pytest.raises(ResetNeededError, match=r"terminated: call reset\(\)"):
        env.step(0)
    env.reset()
    env.step(0)
    with pytest.raises(ResetNeededError, match=r"before reset\(\)"):
        CartPoleVectorEnv(num_envs=2).step(np.array([0, 1]))


def test_bad_reset_options_and_render_mode_are_rejected():
    env = CartPoleEnv()
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"lo": 0.1})
    with pytest.raises(ValueError, match="low <= high"):
        env.reset(options={"low": 0.1, "high": -0.1})
    with pytest.raises(ValueError, match="render_mode 'human' is not supported"):
        CartPoleEnv(render_mode="human")


def test_rgb_array_frames_are_drawn_without_pygame(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)  # any import of pygame would now fail
    env = CartPoleEnv(render_mode="rgb_array")
    env.reset(seed=0)
    upright = env.render()
    assert upright.shape == (400, 600, 3) and upright.dtype == np.uint8
    colors = {tuple(color) for color in upright.reshape(-1, 3)}
    assert {(255, 255, 255), (0, 0, 0), (202, 152, 101), (129, 132, 203)} <= colors
    for _ in range(8):
        env.step(1)  # the pole tips to the left, away from the push
    tipped = env.render()
    pole = np.argwhere(np.all(tipped == (202, 152, 101), axis=-1))
    top_row = pole[:, 0].min()
    assert pole[pole[:, 0] == top_row, 1].mean() < pole[:, 1].mean()  # the pole's top lies left of its body

    vector_env = CartPoleVectorEnv(num_envs=3, render_mode="rgb_array")
    vector_env.reset(seed=0)
    frames = vector_env.render()
    assert len(frames) == 3 and all(frame.shape == (400, 600, 3) for frame in frames)

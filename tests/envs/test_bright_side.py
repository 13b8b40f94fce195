"""BrightSide: the square is where the reward says, frames are uint8 channels first, bad args fail."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs.bright_side import BACKGROUND_MAX, SQUARE_VALUE, BrightSideEnv


def _bright_half(frame: np.ndarray) -> int:
    columns = np.nonzero((frame[0] == SQUARE_VALUE).any(axis=0))[0]
    half = frame.shape[-1] // 2
    assert (columns < half).all() or (columns >= half).all()
    return int(columns[0] >= half)


def test_the_reward_is_one_exactly_when_the_action_names_the_bright_half():
    env = gym.make("gymserve/BrightSide-v0")
    observation, _ = env.reset(seed=3)
    assert observation.shape == (1, 36, 36) and observation.dtype == np.uint8
    rewards, length, terminated = [], 0, False
    while not terminated:
        side = _bright_half(observation)
        assert np.count_nonzero(observation == SQUARE_VALUE) == 36  # one 6x6 square
        assert observation[observation != SQUARE_VALUE].max() <= BACKGROUND_MAX
        action = side if length % 2 == 0 else 1 - side
        observation, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        length += 1
        assert not truncated
    assert length == 8 and rewards == [1.0, 0.0] * 4


def test_both_halves_occur():
    env = BrightSideEnv()
    env.reset(seed=0)
    sides = {_bright_half(env.step(0)[0]) for _ in range(40)}
    assert sides == {0, 1}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"size": 20}, "size must be at least 36"), ({"square": 0}, "square must be a positive integer")],
)
def test_bad_arguments_fail_naming_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        BrightSideEnv(**arguments)

"""The Atari preprocessing: each step checked on hand-made frames, then real Pong through ale-py.

The hand-made frames come from `ScriptedFrames`, a stand-in for the ALE env with the `ale`
attributes the wrappers read, so every pixel and reward is known.
"""

from __future__ import annotations

import importlib.util
import os
import pickle

import gymnasium as gym
import numpy as np
import pytest

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs import training_options
from gymserve.envs.atari import (
    FRAME_STACK,
    ClipReward,
    EpisodicLife,
    FireReset,
    _rom_name,
    atari_env_id,
    make_atari_env,
)

HEIGHT, WIDTH = 210, 160  # an ALE screen


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        reason = f'{module} is not installed (pip install "gymserve[atari]")'
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true the Atari tests must run")
        pytest.skip(reason)


class _Ale:
    def __init__(self, frames: ScriptedFrames):
        self.frames = frames

    def lives(self) -> int:
        return self.frames.lives[min(self.frames.frame, len(self.frames.lives) - 1)]

    def getScreenRGB(self, out=None):
        return self.frames.screen(out)

    def getScreenGrayscale(self, out=None):
        rgb = self.frames.screen(None)
        gray = np.rint(rgb @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        if out is None:
            return gray
        out[...] = gray.reshape(out.shape)
        return out


class ScriptedFrames(gym.Env):
    """Frame i is the constant image `pixel(i)` (or `screens[i]`); reward and lives per frame."""

    metadata = {"render_modes": []}  # noqa: RUF012
    _frameskip = 1  # AtariPreprocessing checks that the env does not skip frames itself

    def __init__(self, screens, rewards=None, lives=None, actions=("NOOP", "FIRE", "UP", "DOWN")):
        self.screens = screens
        self.rewards = rewards or [0.0] * len(screens)
        self.lives = lives or [3] * len(screens)
        self.actions_meanings = list(actions)
        self.frame = 0
        self.ale = _Ale(self)
        self.actions: list[int] = []
        self.resets = 0
        self.observation_space = gym.spaces.Box(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(actions))

    def get_action_meanings(self):
        return self.actions_meanings

    def screen(self, out):
        image = self.screens[min(self.frame, len(self.screens) - 1)]
        if out is not None:
            out[...] = image
            return out
        return image.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        return self.screen(None), {}

    def step(self, action):
        self.actions.append(int(action))
        self.frame += 1
        index = min(self.frame, len(self.screens) - 1)
        terminated = self.lives[min(index, len(self.lives) - 1)] == 0
        return self.screen(None), self.rewards[index], terminated, False, {}


def _constant(value: int) -> np.ndarray:
    return np.full((HEIGHT, WIDTH, 3), value, np.uint8)


def _preprocess(frames: ScriptedFrames) -> gym.Env:
    return gym.wrappers.AtariPreprocessing(frames, noop_max=0, frame_skip=4, screen_size=84)


def test_each_step_max_pools_the_last_two_of_four_frames_into_84x84_uint8():
    # frames 1-4 of the first step; the left half bright in frame 3, the right half in frame 4
    screens = [_constant(0) for _ in range(8)]
    screens[3][:, : WIDTH // 2] = 200
    screens[4][:, WIDTH // 2 :] = 100
    screens[2][:] = 255  # frame 2 of 4: not among the last two, so not seen
    env = _preprocess(ScriptedFrames(screens))
    env.reset()
    observation, *_ = env.step(0)
    assert observation.shape == (84, 84) and observation.dtype == np.uint8
    assert (observation[:, :40] >= 198).all() and (observation[:, :40] <= 200).all()
    assert (observation[:, 44:] >= 99).all() and (observation[:, 44:] <= 100).all()


def test_the_stack_holds_the_last_four_frames_oldest_first():
    screens = [_constant(5 * index) for index in range(30)]
    env = gym.wrappers.FrameStackObservation(_preprocess(ScriptedFrames(screens)), FRAME_STACK)
    first, _ = env.reset()
    assert first.shape == (4, 84, 84) and first.dtype == np.uint8
    assert [int(frame[0, 0]) for frame in first] == [0, 0, 0, 0]  # padded with the reset frame
    for _ in range(5):
        observation, *_ = env.step(0)
    # step k shows frame 4k (the brighter of frames 4k-1 and 4k)
    assert [int(frame[0, 0]) for frame in observation] == [40, 60, 80, 100]


def test_fire_reset_presses_fire_then_up_after_each_reset():
    frames = ScriptedFrames([_constant(0)] * 10)
    FireReset(frames).reset()
    assert frames.actions == [1, 2]


@pytest.mark.parametrize("training", [True, False])
def test_fire_follows_a_lost_life_in_full_games_and_the_reset_in_training(monkeypatch, training):
    lives = [3, 3, 3, 3, 2, 2, 2, 2, 2, 2]  # after the reset's FIRE and UP: the second step loses a life
    frames = ScriptedFrames([_constant(0)] * 10, lives=lives)
    env = _scripted_atari(monkeypatch, frames, training)
    env.reset()
    assert frames.actions == [1, 2]
    assert env.step(3)[2] is False
    lost = env.step(3)
    assert lost[2] is training  # a training episode ends at the lost life
    if training:
        env.reset()  # the game goes on: a no-op, then the serve
        assert frames.actions == [1, 2, 3, 3, 0, 1, 2] and frames.resets == 1
    else:
        assert frames.actions == [1, 2, 3, 3, 1, 2]  # served within the step that lost the life
    env.step(3)  # no life lost: no FIRE
    assert frames.actions[-1] == 3


def test_the_serve_after_a_lost_life_adds_its_rewards_and_stops_when_the_game_ends(monkeypatch):
    rewards = [0.0, 0.0, 0.0, 0.0, 1.0, 10.0, 100.0, 0.0]
    lives = [3, 3, 3, 3, 2, 2, 2, 2]  # frame 4 (the step after the reset's serve) loses a life
    frames = ScriptedFrames([_constant(0)] * 8, rewards=rewards, lives=lives)
    env = _scripted_atari(monkeypatch, frames, training=False)
    env.reset()
    env.step(3)
    assert env.step(3)[1] == 111.0  # the losing step's reward, then the serve's FIRE and action 2
    game_over = ScriptedFrames([_constant(0)] * 6, lives=[3, 3, 3, 2, 0, 0])  # FIRE ends the game
    env = _scripted_atari(monkeypatch, game_over, training=False)
    env.reset()
    assert env.step(3)[2] is True and game_over.actions == [1, 2, 3, 1]


def test_a_lost_life_ends_a_training_episode_and_reset_continues_the_game():
    lives = [3, 3, 2, 2, 2, 0]
    frames = ScriptedFrames([_constant(0)] * 6, lives=lives)
    env = EpisodicLife(frames)
    env.reset()
    assert env.step(0)[2] is False
    assert env.step(0)[2] is True  # life 3 -> 2
    env.reset()  # a no-op step, not a new game
    assert frames.resets == 1 and frames.actions == [0, 0, 0]
    env.step(0)
    assert env.step(0)[2] is True  # game over
    env.reset()
    assert frames.resets == 2


def _scripted_atari(monkeypatch, frames: ScriptedFrames, training: bool) -> gym.Env:
    monkeypatch.setattr(gym, "make", lambda *args, **kwargs: frames)
    monkeypatch.setattr(gym.wrappers, "AtariPreprocessing", lambda env, **kwargs: env)
    monkeypatch.setattr("gymserve.envs.atari.require", lambda *args: None)
    monkeypatch.setattr(gym, "register_envs", lambda module: None)
    return make_atari_env("Scripted", training=training)


@pytest.mark.parametrize("training", [True, False])
def test_rewards_are_clipped_and_lives_end_episodes_only_in_training(monkeypatch, training):
    rewards = [0.0, 0.0, 0.0, 7.0, -3.0, 0.5, 0.0, 0.0]
    lives = [3, 3, 3, 3, 3, 2, 2, 2]  # after FireReset's two steps: frame 5 loses a life
    frames = ScriptedFrames([_constant(0)] * 8, rewards=rewards, lives=lives)
    env = _scripted_atari(monkeypatch, frames, training)
    env.reset()
    steps = [env.step(0) for _ in range(3)]
    assert [step[1] for step in steps] == ([1.0, -1.0, 0.5] if training else [7.0, -3.0, 0.5])
    assert [step[2] for step in steps] == [False, False, training]


def test_only_training_envs_get_the_training_options():
    assert training_options(atari_env_id("Pong")) == {"training": True}
    assert training_options("gymserve/CartPole-v1") == {}


def test_rom_names_follow_ale():
    assert _rom_name("SpaceInvaders") == "space_invaders" and _rom_name("Pong") == "pong"


def test_a_non_boolean_training_flag_is_refused():
    with pytest.raises(ValueError, match="training must be True or False"):
        make_atari_env("Pong", training="yes")


def test_pong_through_the_wrappers_gives_stacked_uint8_frames():
    _require("ale_py")
    _require("cv2")
    env = gym.make(atari_env_id("Pong"))
    observation, _ = env.reset(seed=0)
    assert env.observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert observation.shape == (4, 84, 84) and observation.dtype == np.uint8
    total = 0.0
    for _ in range(200):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total += reward
        assert not (terminated or truncated)
    assert observation in env.observation_space and observation.std() > 0
    assert total <= 0  # random play does not score in the first 200 steps of Pong


def test_pong_through_the_vector_env_gives_stacked_uint8_frames():
    _require("ale_py")
    envs = gym.make_vec(atari_env_id("Pong"), num_envs=2, vectorization_mode="vector_entry_point")
    observations, _ = envs.reset(seed=0)
    assert envs.single_observation_space == gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    assert observations.shape == (2, 4, 84, 84) and observations.dtype == np.uint8
    for _ in range(300):
        observations, rewards, *_ = envs.step(envs.action_space.sample())
    assert observations.shape == (2, 4, 84, 84) and observations.dtype == np.uint8
    assert rewards.shape == (2,) and set(np.unique(rewards)) <= {-1.0, 0.0, 1.0}
    envs.close()


def test_the_training_reward_clipping_pickles():
    assert pickle.loads(pickle.dumps(ClipReward(gym.make("CartPole-v1")))).reward(7.0) == 1.0


@pytest.mark.parametrize("training", [True, False])
def test_a_pickled_breakout_plays_on_exactly_as_the_original(training):
    """Emulator, sticky-action and no-op generators all travel with the pickle: the copy's
    frames, rewards and episode ends (lost lives, game overs and their resets) are the original's."""
    _require("ale_py")
    _require("cv2")
    original = make_atari_env("Breakout", training=training)
    original.reset(seed=3)
    actions = np.random.default_rng(0).integers(4, size=700)
    for action in actions[:100]:
        _, _, terminated, truncated, _ = original.step(action)
        if terminated or truncated:
            original.reset()
    copy = pickle.loads(pickle.dumps(original))
    episode_ends = 0
    for action in actions[100:]:
        expected, got = original.step(action), copy.step(action)
        np.testing.assert_array_equal(expected[0], got[0])
        assert expected[1:4] == got[1:4]
        if expected[2] or expected[3]:
            episode_ends += 1
            np.testing.assert_array_equal(original.reset()[0], copy.reset()[0])
    assert episode_ends >= 1  # the copy also restarted games (or lives) as the original did


def test_a_breakout_player_that_never_fires_loses_its_lives_long_before_the_time_limit():
    _require("ale_py")
    _require("cv2")
    env = gym.make(atari_env_id("Breakout"))
    env.reset(seed=0)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated) and steps < 5000:  # the time limit is 27,000 steps
        _, _, terminated, truncated, _ = env.step(0)  # NOOP only: every serve comes from the env
        steps += 1
    assert terminated and not truncated

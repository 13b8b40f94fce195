"""Atari 2600 games through ale-py, with the standard preprocessing of DQN-style agents.

Description:
    An ALE game (`ALE/<Game>-v5`, sticky actions with probability 0.25, minimal action set) seen
    the way Mnih et al. (2015) and most later agents see it. Gymnasium and ale-py supply every
    step except those written here, `EpisodicLife`, `FireReset`, `ClipReward` (Gymnasium's, but
    picklable) and `EmulatorState`:

        up to 30 no-op actions at reset            gymnasium AtariPreprocessing
        each action repeated for 4 frames, the     gymnasium AtariPreprocessing
          observation the max of the last two
        84x84 grayscale uint8                      gymnasium AtariPreprocessing
        FIRE, then action 2, after reset and       FireReset
          after a lost life, where the game waits
          for FIRE
        a lost life ends the episode (training)    EpisodicLife
        rewards clipped to [-1, 1] (training)      ClipReward
        the last 4 frames stacked                  gymnasium FrameStackObservation

Observation Space:
    Box(0, 255, (4, 84, 84), uint8): the last four frames, oldest first (channels first, as
    ale-py's `AtariVectorEnv` gives them).

Action Space:
    Discrete(n): the game's minimal action set (`env.unwrapped.get_action_meanings()`).

Rewards:
    The game score's change; with `training=True` clipped to [-1, 1].

Episode End:
    Game over, or 27,000 steps (108,000 frames). With `training=True` also each lost life; the
    next `reset()` then continues the same game (one no-op step) until the game is really over.

Arguments:
    game: the ALE game name, e.g. "Pong".
    training: lost-life terminals and clipped rewards, for training envs only. Training
        envs are made with `training=True` by gymserve's trainer (see `training_options`);
        evaluations, `gymserve eval` and reported returns use the default full games with
        the true score.

Pickling:
    The env pickles mid-episode with the emulator's state (its random generator included) and
    the no-op generator, and the copy plays on exactly as the original: a training checkpoint
    carries the envs, so a resumed run continues the same games.

The vector entry point is ale-py's `AtariVectorEnv` (C++ threads). Its preprocessing differs in
two ways: it presses FIRE for one frame before the no-ops of a new game (sticky actions often
cancel it) and never after a lost life, so its agents learn to serve; and with `training=True`
a lost life restarts the whole game instead of continuing it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gymserve.common.extras import require
from gymserve.envs.arguments import check_flag

FRAME_SKIP = 4  # emulator frames per agent step
FRAME_SIZE = 84  # pixels per side of a preprocessed frame
FRAME_STACK = 4  # frames per observation
NOOP_MAX = 30  # most no-op actions at the start of an episode
STICKY_ACTION_PROBABILITY = 0.25  # ALE v5's protocol (Machado et al., 2018)
MAX_FRAMES_PER_EPISODE = 108_000  # 30 minutes of play at 60 frames per second

# The games of the Nature DQN paper's figures, plus Breakout; each is registered as gymserve/Atari<Game>-v0.
GAMES = ("Pong", "Breakout", "BeamRider", "Enduro", "Qbert", "Seaquest", "SpaceInvaders")


def atari_env_id(game: str) -> str:
    """The gymserve id of a preprocessed game, e.g. gymserve/AtariPong-v0."""
    return f"gymserve/Atari{game}-v0"


class EpisodicLife(gym.Wrapper):
    """Ends an episode when a life is lost, but resets the game only when it is really over.

    Gymnasium's `terminal_on_life_loss` restarts the whole game at each lost life, so the agent
    would never see the later parts of a game; here `reset()` after a lost life takes one no-op
    step and play goes on.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._lives = 0
        self._game_over = True

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._game_over = terminated or truncated
        lives = self.env.unwrapped.ale.lives()
        if 0 < lives < self._lives:
            terminated = True
        self._lives = lives
        return observation, reward, terminated, truncated, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if self._game_over or seed is not None:
            observation, info = self.env.reset(seed=seed, options=options)
        else:
            observation, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                observation, info = self.env.reset(options=options)
        self._game_over = False
        self._lives = self.env.unwrapped.ale.lives()
        return observation, info


class FireReset(gym.Wrapper):
    """Presses FIRE, then action 2, after each reset and after each lost life that does not end
    the episode: games such as Breakout wait for FIRE to start and to serve again.

    A training env ends its episode at a lost life (`EpisodicLife`), so every life of training
    starts at a reset (one no-op step, then this serve): the agent never learns to press FIRE
    itself. A full game serves within the step that lost the life, or a greedy agent would wait
    for the time limit.
    """

    _lives = 0  # lives after the last step; a class default also for envs pickled before it existed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.env.reset(seed=seed, options=options)
        for action in _SERVE:
            observation, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                observation, info = self.env.reset(options=options)
        self._lives = self.env.unwrapped.ale.lives()
        return observation, info

    def step(self, action: Any):
        observation, reward, terminated, truncated, info = self.env.step(action)
        lives = self.env.unwrapped.ale.lives()
        if lives < self._lives:
            for serve in _SERVE:
                if terminated or truncated:
                    break
                observation, more, terminated, truncated, info = self.env.step(serve)
                reward += more
        self._lives = lives
        return observation, reward, terminated, truncated, info


_SERVE = (1, 2)  # FIRE, then action 2 (UP or RIGHT in the games that need FIRE)


class ClipReward(gym.RewardWrapper):
    """Rewards clipped to [-1, 1], as Gymnasium's `ClipReward` (whose lambda does not pickle)."""

    def reward(self, reward: float) -> float:
        return np.clip(reward, -1.0, 1.0)


class EmulatorState(gym.Wrapper):
    """Pickles the ALE env with its emulator and random generators where they stand.

    ale-py's env pickles as its constructor arguments, so a copy would start a new game; this
    wrapper adds the emulator's state (`cloneState(include_rng=True)`: sticky actions draw from
    the emulator's generator) and the env's numpy generator (no-op starts), and restores both
    into the rebuilt env.
    """

    def __getstate__(self) -> dict[str, Any]:
        atari = self.env.unwrapped
        return {
            **self.__dict__,
            "_emulator": atari.ale.cloneState(include_rng=True),
            "_generator": atari.np_random.bit_generator.state,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        emulator, generator = state.pop("_emulator"), state.pop("_generator")
        self.__dict__.update(state)
        atari = self.env.unwrapped
        atari.ale.restoreState(emulator)
        atari.np_random.bit_generator.state = generator


def needs_fire(env: gym.Env) -> bool:
    """Whether the game has a FIRE action (the action after NOOP in ALE's minimal sets)."""
    meanings = env.unwrapped.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def make_atari_env(game: str, training: bool = False, render_mode: str | None = None) -> gym.Env:
    """`ALE/<game>-v5` with the preprocessing of the module docstring."""
    check_flag("training", training)
    gym.register_envs(require("ale_py", "the Atari environments"))
    env = gym.make(
        f"ALE/{game}-v5",
        frameskip=1,  # AtariPreprocessing skips frames and max-pools the last two
        repeat_action_probability=STICKY_ACTION_PROBABILITY,
        full_action_space=False,
        max_num_frames_per_episode=MAX_FRAMES_PER_EPISODE,
        render_mode=render_mode,
    )
    env = gym.wrappers.AtariPreprocessing(
        EmulatorState(env),
        noop_max=NOOP_MAX,
        frame_skip=FRAME_SKIP,
        screen_size=FRAME_SIZE,
        grayscale_obs=True,
    )
    if training:
        env = EpisodicLife(env)
    if needs_fire(env):
        env = FireReset(env)
    if training:
        env = ClipReward(env)
    return gym.wrappers.FrameStackObservation(env, FRAME_STACK)


def make_atari_vector_env(
    game: str,
    num_envs: int,
    training: bool = False,
    max_episode_steps: int = MAX_FRAMES_PER_EPISODE // FRAME_SKIP,
    **options: Any,
) -> gym.vector.VectorEnv:
    """ale-py's `AtariVectorEnv` with the preprocessing of `make_atari_env`, but for the serve and
    the lost lives of training (see the module docstring); `options` go to it (e.g. `num_threads`)."""
    check_flag("training", training)
    vector_env = require("ale_py.vector_env", "the Atari vector environments")
    return vector_env.AtariVectorEnv(
        _rom_name(game),
        num_envs,
        repeat_action_probability=STICKY_ACTION_PROBABILITY,
        max_num_frames_per_episode=max_episode_steps * FRAME_SKIP,
        img_height=FRAME_SIZE,
        img_width=FRAME_SIZE,
        stack_num=FRAME_STACK,
        frameskip=FRAME_SKIP,
        noop_max=NOOP_MAX,
        episodic_life=training,
        reward_clipping=training,
        use_fire_reset=True,
        **options,
    )


def _rom_name(game: str) -> str:
    """ALE's ROM name of a game: "SpaceInvaders" -> "space_invaders"."""
    return "".join(
        f"_{char.lower()}" if char.isupper() and index else char.lower() for index, char in enumerate(game)
    )

"""Running a policy in an environment: one episode (optionally filmed) or a batched evaluation.

This is the one evaluation loop of gymserve: training, `gymserve eval`, `gymserve play` and the
demo all call it, whether the policy runs in process or behind a gRPC server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from gymserve.common.files import staged
from gymserve.policies.base import ActionMode, Policy


@dataclass
class Episode:
    """What one episode produced."""

    total_return: float
    length: int
    action_seconds: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    """Returns and lengths of a batch of evaluation episodes."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def average_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def return_std(self) -> float:
        """The standard deviation of the episode returns (over episodes, not of the mean)."""
        return float(np.std(self.returns))

    @property
    def average_episode_length(self) -> float:
        return float(np.mean(self.lengths))


def run_episode(
    env: gym.Env,
    policy: Policy,
    mode: ActionMode | str = ActionMode.GREEDY,
    *,
    seed: int | None = None,
    epsilon: float | None = None,
    record_frames: bool = False,
    max_steps: int | None = None,
    on_frame: Callable[[np.ndarray], None] | None = None,
) -> Episode:
    """Play one episode, or its first `max_steps` steps; with `record_frames` (kept in the episode)
    or `on_frame` (called with each frame as it is drawn) the env must render in `rgb_array` mode."""

    def draw() -> None:
        if record_frames or on_frame is not None:
            frame = env.render()
            if record_frames:
                episode.frames.append(frame)
            if on_frame is not None:
                on_frame(frame)

    observation, _ = env.reset(seed=seed)
    policy.reset()
    state = policy.get_initial_state()
    episode = Episode(0.0, 0)
    action_seed = seed
    draw()
    while True:
        started = time.perf_counter()
        step = policy.action(observation, state, mode, epsilon=epsilon, seed=action_seed)
        episode.action_seconds.append(time.perf_counter() - started)
        if action_seed is not None:
            action_seed += 1
        state = step.state
        observation, reward, terminated, truncated, _ = env.step(step.action)
        episode.total_return += float(reward)
        episode.length += 1
        draw()
        if terminated or truncated or episode.length == max_steps:
            return episode


def evaluate(
    policy: Policy,
    make_env: Callable[[], gym.Env] | str,
    episodes: int,
    mode: ActionMode | str = ActionMode.GREEDY,
    *,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> Evaluation:
    """Play `episodes` episodes side by side, one env each, with one batched policy call a step.

    Episode i is reset with seed `seed + i`; stochastic choices draw from a generator seeded
    with `seed`, so an evaluation is reproducible.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if isinstance(make_env, str):
        env_id, kwargs = make_env, env_kwargs or {}

        def make_env() -> gym.Env:
            return gym.make(env_id, **kwargs)

    envs = [make_env() for _ in range(episodes)]
    rng_seed = seed
    try:
        observations = [env.reset(seed=seed + index)[0] for index, env in enumerate(envs)]
        returns = np.zeros(episodes)
        lengths = np.zeros(episodes, dtype=np.int64)
        active = list(range(episodes))
        # A recurrent policy's state, one row per episode; stateless policies (and scripted ones,
        # which keep their own progress) act with ().
        state = policy.get_initial_state(episodes) if _is_recurrent(policy) else ()
        while active:
            rows = [part[active] for part in state]
            step = policy.action(np.stack([observations[i] for i in active]), rows, mode=mode, seed=rng_seed)
            actions = step.action
            for part, next_rows in zip(state, step.state, strict=True):
                part[active] = next_rows
            rng_seed += 1
            still_active = []
            for index, action in zip(active, actions, strict=True):
                observation, reward, terminated, truncated, _ = envs[index].step(action)
                observations[index] = observation
                returns[index] += float(reward)
                lengths[index] += 1
                if not (terminated or truncated):
                    still_active.append(index)
            active = still_active
    finally:
        for env in envs:
            env.close()
    return Evaluation(returns, lengths)


def _is_recurrent(policy: Policy) -> bool:
    return any(np.dtype(dtype).kind == "f" for _, dtype in policy.policy_state_spec)


def write_video(frames: list[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write rgb frames to an .mp4 or .gif file (written beside, then renamed into place)."""
    import imageio.v2 as imageio

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"video file must end in .mp4 or .gif, got {path.name!r}")
    if not frames:
        raise ValueError("no frames to write")
    # imageio-ffmpeg gives ffmpeg a preexec_fn (a process group of its own, away from Ctrl-C), so
    # Python fork()s it, and beside a gRPC client (`play --remote --video`) gRPC logs a warning.
    # Without it Python starts ffmpeg with vfork, which gRPC does not see; Ctrl-C then stops ffmpeg
    # as well, and `staged` drops the unfinished file.
    os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
    with staged(path) as staging:
        if suffix == ".mp4":
            with imageio.get_writer(
                staging, fps=fps, codec="libx264", macro_block_size=1, quality=7
            ) as writer:
                for frame in frames:
                    writer.append_data(frame)
        else:
            imageio.mimsave(staging, frames, duration=1000.0 / fps, loop=0)
    return path

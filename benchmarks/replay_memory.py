"""Bytes of an Atari DQN replay buffer: frames stored once against the plain buffer, same spec.

    python benchmarks/replay_memory.py [--capacity 1000000] [--stacks-capacity 20000] [--envs 1]

The spec is what DQN stores for `gymserve/AtariBreakout-v0`: 4 stacked 84x84 uint8 frames as
observation and next observation, an int64 action, a float32 reward and two flags. Both buffers
are filled, `--stacks-capacity` transitions each, from the same real training envs (lost lives
end episodes, random actions); their bytes per transition are then scaled to `--capacity`. The
plain buffer's bytes are exactly linear in the capacity; the frame store's are too (one frame and
an index per transition) except for the whole observations it keeps where episodes start, which
is scaled from the measured share. Prints both totals, in GiB, and the ratio; then the time of
drawing a minibatch of 32 from each (frames once rebuild the stacks as they are drawn).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import gymserve  # noqa: F401  (registers the environments)
from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.envs import training_options
from gymserve.envs.atari import atari_env_id

ENV_ID = atari_env_id("Breakout")
GIB = 2**30


def filled_buffers(capacity: int, num_envs: int) -> tuple[ReplayBuffer, ReplayBuffer]:
    envs = [gym.make(ENV_ID, **training_options(ENV_ID)) for _ in range(num_envs)]
    space = envs[0].observation_space
    spec = {
        "observation": (space.shape, np.uint8),
        "action": ((), np.int64),
        "reward": ((), np.float32),
        "next_observation": (space.shape, np.uint8),
        "terminated": ((), np.bool_),
        "done": ((), np.bool_),
    }
    plain = ReplayBuffer(spec, capacity)
    once = ReplayBuffer(spec, capacity, frame_stacks=[("observation", "next_observation")])
    observations = np.stack([env.reset(seed=index)[0] for index, env in enumerate(envs)])
    rng = np.random.default_rng(0)
    for _ in range(capacity // num_envs):
        actions = rng.integers(envs[0].action_space.n, size=num_envs)
        steps = [env.step(action) for env, action in zip(envs, actions, strict=True)]
        next_observations = np.stack([step[0] for step in steps])
        terminated = np.array([step[2] for step in steps])
        done = terminated | np.array([step[3] for step in steps])
        items = {
            "observation": observations,
            "action": actions,
            "reward": np.array([step[1] for step in steps], np.float32),
            "next_observation": next_observations,
            "terminated": terminated,
            "done": done,
        }
        plain.add_batch(items)
        once.add_batch(items)
        observations = next_observations.copy()
        for index in np.flatnonzero(done):
            observations[index] = envs[index].reset()[0]
    return plain, once


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--capacity", type=int, default=1_000_000, help="transitions to report the bytes of")
    parser.add_argument("--stacks-capacity", type=int, default=20_000, help="transitions actually stored")
    parser.add_argument("--envs", type=int, default=1, help="parallel envs (rows of the buffer)")
    args = parser.parse_args()
    plain, once = filled_buffers(args.stacks_capacity, args.envs)
    check = np.random.default_rng(1)
    sample = once.sample(256, np.random.default_rng(1))
    for name, array in plain.sample(256, check).items():
        assert np.array_equal(array, sample[name]), name
    scale = args.capacity / args.stacks_capacity
    stack, *frame_shape = plain.data_spec["observation"][0]
    frame = int(np.prod(frame_shape))
    one_frame = plain.nbytes - args.stacks_capacity * (2 * stack - 1) * frame  # the other fields and a frame
    print(f"measured at {args.stacks_capacity:,} transitions ({args.envs} env(s)), random play:")
    print(f"  plain                       {plain.nbytes / 2**20:10.1f} MiB")
    print(f"  frames once                 {once.nbytes / 2**20:10.1f} MiB")
    print(f"  (one frame per transition   {one_frame / 2**20:10.1f} MiB: the least frames once can take)")
    plain_total, once_total = plain.nbytes * scale, once.nbytes * scale
    print(f"scaled to {args.capacity:,} transitions:")
    print(f"  plain        {plain_total / GIB:8.2f} GiB")
    print(f"  frames once  {once_total / GIB:8.2f} GiB")
    print(f"ratio plain / frames once: {plain_total / once_total:.2f}x")
    plain_time, once_time = (sample_seconds(buffer) for buffer in (plain, once))
    print(f"sampling 32 transitions: plain {plain_time * 1e6:.0f} us, frames once {once_time * 1e6:.0f} us")


def sample_seconds(buffer: ReplayBuffer, draws: int = 500) -> float:
    """Seconds per uniform draw of DQN's minibatch of 32, median of 5 rounds."""
    rng = np.random.default_rng(2)
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(draws):
            buffer.sample(32, rng)
        rounds.append((time.perf_counter() - start) / draws)
    return float(np.median(rounds))


if __name__ == "__main__":
    main()

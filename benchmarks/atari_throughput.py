"""Preprocessed Pong: ale-py's C++ `AtariVectorEnv` against the Gymnasium wrappers, same envs count.

    python benchmarks/atari_throughput.py [--envs 8] [--steps 2000]

Both give the same observations (4 stacked 84x84 uint8 frames, frame skip 4 with max-pooling,
up to 30 no-ops, FIRE on reset, sticky actions 0.25): the baseline is `--envs` copies of
`gym.make("gymserve/AtariPong-v0")` stepped in a loop in this process (what gymserve's trainer
runs) and the same envs in Gymnasium's `AsyncVectorEnv` (one process each), the candidate
`gym.make_vec(..., vectorization_mode="vector_entry_point")` with ale-py's worker threads (one
per core). Random actions; prints agent steps per second and the ratios.
"""

from __future__ import annotations

import argparse
import os
import time

import gymnasium as gym
import numpy as np

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs.atari import atari_env_id

ENV_ID = atari_env_id("Pong")


def wrapper_steps_per_second(num_envs: int, steps: int) -> float:
    envs = [gym.make(ENV_ID) for _ in range(num_envs)]
    for index, env in enumerate(envs):
        env.reset(seed=index)
    actions = np.random.default_rng(0).integers(0, 6, (steps, num_envs))
    start = time.perf_counter()
    for row in actions:
        for env, action in zip(envs, row, strict=True):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
    return steps * num_envs / (time.perf_counter() - start)


def vector_steps_per_second(num_envs: int, steps: int, mode: str) -> float:
    """Agent steps per second of `gym.make_vec` in `mode` ("async": one process per env)."""
    envs = gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode=mode)
    envs.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 6, (steps, num_envs))
    start = time.perf_counter()
    for row in actions:
        envs.step(row)
    elapsed = time.perf_counter() - start
    envs.close()
    return steps * num_envs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="steps of each env")
    args = parser.parse_args()
    baseline = wrapper_steps_per_second(args.envs, args.steps)
    asynchronous = vector_steps_per_second(args.envs, args.steps, "async")
    vector = vector_steps_per_second(args.envs, args.steps, "vector_entry_point")
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, {args.envs} envs")
    print(f"gymnasium wrappers, loop         {baseline:9,.0f} steps/s")
    print(f"gymnasium wrappers, AsyncVecEnv  {asynchronous:9,.0f} steps/s")
    print(f"ale-py AtariVectorEnv            {vector:9,.0f} steps/s")
    print(f"ratio to the loop                {vector / baseline:9.2f}x")
    print(f"ratio to AsyncVectorEnv          {vector / asynchronous:9.2f}x")


if __name__ == "__main__":
    main()

"""Serving a Pong CNN policy to many single-frame clients, with dynamic batching off and on.

    python benchmarks/atari_serving_throughput.py [--seconds 2] [--rounds 3]
        [--batch-timeout-micros 0] [--num-batch-threads 1] [--batch-max-size 64]

The policy is the shipped `ppo_AtariPong-v0` config's network (Nature DQN CNN, 512 hidden
units, 6 actions), untrained: its speed is a trained one's. It is exported to ONNX and served
by the pair of servers of `serving_throughput.py` (the same repository and RPC threads, batching
off and on); 1 and 64 client threads each send pre-serialized greedy Act requests of one uint8
observation (4 stacked 84x84 frames) back to back, the cells alternating over the rounds.
Printed as there: calls/s, p50, p99 and CPU per call of each cell, what batching can give at
most by the model's bare onnxruntime times, and the batched / unbatched ratios.

Goals: at 64 clients throughput >= 2x unbatched with p99 no worse; at 1 client p50 <= 1.1x.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from serving_throughput import (
    ServerPair,
    add_batching_options,
    batching_of,
    measure_cells,
    model_seconds,
    report,
    request_bytes,
)

MODEL = "pong"
CLIENT_COUNTS = (1, 64)


def export_pong_policy(path: Path) -> None:
    """Export the shipped Pong PPO config's untrained policy to ONNX (TensorFlow only here)."""
    import gymnasium as gym
    import keras
    import tensorflow as tf

    import gymserve  # noqa: F401  (registers the environments)
    from gymserve.agents.on_policy.ppo import PPO, PPOConfig
    from gymserve.agents.training.config import resolve_config
    from gymserve.envs.atari import atari_env_id
    from gymserve.policies import export_policy

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    env_id = atari_env_id("Pong")
    config = resolve_config(PPOConfig, "ppo", env_id).config
    env = gym.make(env_id)
    agent = PPO(config, env.observation_space, env.action_space)
    export_policy(agent.policy(), path, formats=["onnx"], metadata={"algorithm": "ppo", "env_id": env_id})


def frames(rows: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (rows, 4, 84, 84), dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_batching_options(parser)
    args = parser.parse_args()
    batching = batching_of(args)
    with tempfile.TemporaryDirectory() as directory:
        repository = Path(directory) / "repository"
        export_pong_policy(repository / MODEL / "1")
        servers = ServerPair(repository, batching)
        try:
            requests = {MODEL: request_bytes(MODEL, frames(1)[0])}
            totals, cpu = measure_cells(servers, requests, CLIENT_COUNTS, args.rounds, args.seconds)
        finally:
            batch_sizes = servers.close()
        alone = {
            (MODEL, rows): model_seconds(repository / MODEL / "1", frames(rows), calls=200)
            for rows in (1, args.batch_max_size)
        }
    report(totals, cpu, alone, batching, args.rounds, args.seconds)
    print(batch_sizes, end="")


if __name__ == "__main__":
    main()

"""LiteRT on the device: latency, file size and agreement of the .tflite variants, against ONNX
Runtime and the SavedModel, for the pretrained CartPole and Minitaur policies.

For each pretrained policy this converts the export to LiteRT (float32, dynamic-range int8,
float16) beside its SavedModel and ONNX model, then reports per backend

    latency      median of --calls `gymserve.policies.load(...).action` calls on one observation
    size         bytes on disk (the SavedModel directory in total)
    agreement    on 1,000 observations visited by the ONNX policy: equal actions (CartPole), or
                 the largest action difference and the share within 0.01 (Minitaur)
    return       Minitaur's mean greedy return over --episodes episodes (seeds 0, 1, ...)

Every backend runs with one thread.

    python benchmarks/litert_on_device.py [--calls 2000] [--episodes 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym
import numpy as np
import tensorflow as tf

from gymserve.policies import LoadedPolicy, convert_export, load
from gymserve.policies.episodes import evaluate
from gymserve.pretrained import pretrained_policy_for_env

ENVS = {"CartPole": "gymserve/CartPole-v1", "Minitaur": "gymserve/Minitaur-v0"}
VARIANTS = {
    "SavedModel": ("saved_model", "tensorflow"),
    "ONNX Runtime": ("policy.onnx", "onnx"),
    "LiteRT float32": ("policy.tflite", None),
    "LiteRT dynamic int8": ("policy-dynamic-int8.tflite", None),
    "LiteRT float16": ("policy-float16.tflite", None),
}
AGREEMENT_OBSERVATIONS = 1000


def visited_observations(policy: LoadedPolicy, env_id: str, count: int) -> np.ndarray:
    """`count` observations met by the greedy policy, episode after episode (seeds 100, 101, ...)."""
    env = gym.make(env_id)
    observations: list[np.ndarray] = []
    seed = 100
    while len(observations) < count:
        observation, _ = env.reset(seed=seed)
        done = False
        while not done and len(observations) < count:
            observations.append(observation)
            observation, _, terminated, truncated, _ = env.step(policy.action(observation).action)
            done = terminated or truncated
        seed += 1
    env.close()
    return np.stack(observations).astype(np.float32)


def median_latency_us(policy: LoadedPolicy, observation: np.ndarray, calls: int) -> float:
    for _ in range(50):
        policy.action(observation)
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        policy.action(observation)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(part.stat().st_size for part in path.rglob("*") if part.is_file())
    return path.stat().st_size


def agreement(actions: np.ndarray, reference: np.ndarray) -> str:
    if actions.ndim == 1:
        return f"{np.mean(actions == reference):.1%} equal"
    difference = np.abs(actions - reference).max(axis=-1)
    return f"max diff {difference.max():.1e}, {np.mean(difference <= 0.01):.1%} within 0.01"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=20, help="Minitaur episodes per backend")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    print("| policy | backend | file | size | latency, 1 observation | agreement with ONNX | return |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for name, env_id in ENVS.items():
            export = Path(scratch) / name
            source = pretrained_policy_for_env(env_id).path
            convert_export(source, export, ("savedmodel", "onnx", "tflite"), ("dynamic-int8", "float16"))
            onnx = load(export, "onnx")
            observations = visited_observations(onnx, env_id, AGREEMENT_OBSERVATIONS)
            reference = onnx.action(observations).action
            for backend, (file, backend_name) in VARIANTS.items():
                policy = load(export / file, backend_name)
                latency = median_latency_us(policy, observations[0], args.calls)
                agrees = agreement(policy.action(observations).action, reference)
                returns = "-"
                if name == "Minitaur":
                    evaluation = evaluate(policy, env_id, args.episodes, seed=0)
                    returns = f"{evaluation.average_return:.2f} +- {np.std(evaluation.returns):.2f}"
                print(
                    f"| {name} | {backend} | `{file}` | {size_bytes(export / file) / 1024:.1f} KiB "
                    f"| {latency:.1f} us | {agrees} | {returns} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

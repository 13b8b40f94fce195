"""Policy inference speed: in-process Keras, SavedModel signature and ONNX Runtime, in one run.

For a Minitaur-sized squashed-Gaussian MLP (28 -> 256 -> 256 -> 16) this measures the latency
of one call with one observation and the throughput at batch 256 for

    actor_policy     ActorPolicy.action (the traced Keras network, in process)
    savedmodel       tf.saved_model.load(...).signatures["greedy_action"] called directly
    onnx_session     onnxruntime InferenceSession.run on policy.onnx
    onnx_policy      gymserve.policies.load(export, "onnx").action (checks, batching, clipping)

and prints the ONNX / SavedModel latency ratios (target <= 0.05). TensorFlow and onnxruntime
both run with one intra-op and one inter-op thread.

    python benchmarks/policy_inference.py [--calls 2000] [--hidden 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym
import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf

from gymserve.policies import ActorPolicy, export_policy, load

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (28,), np.float32)
ACTIONS = gym.spaces.Box(-1.0, 1.0, (8,), np.float32)
BATCH = 256


def build_policy(hidden: int) -> ActorPolicy:
    keras.utils.set_random_seed(0)
    network = keras.Sequential(
        [
            keras.Input(OBSERVATIONS.shape),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(2 * ACTIONS.shape[0]),
        ]
    )
    return ActorPolicy(network, OBSERVATIONS, ACTIONS)


def median_seconds(call: Callable[[np.ndarray], object], observations: np.ndarray, calls: int) -> float:
    """The median wall time of one call, after a warm-up."""
    for _ in range(min(50, calls)):
        call(observations)
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        call(observations)
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def runners(export: Path, policy: ActorPolicy) -> dict[str, Callable[[np.ndarray], object]]:
    saved_model = tf.saved_model.load(str(export / "saved_model")).signatures["greedy_action"]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(export / "policy.onnx"), options, providers=["CPUExecutionProvider"])
    loaded = load(export, "onnx", intra_op_threads=1, inter_op_threads=1)
    return {
        "actor_policy": lambda x: policy.action(x).action,
        "savedmodel": lambda x: saved_model(observations=tf.constant(x))["action"].numpy(),
        "onnx_session": lambda x: session.run(["action"], {"observations": x})[0],
        "onnx_policy": lambda x: loaded.action(x).action,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="timed calls per measurement")
    parser.add_argument("--hidden", type=int, default=256, help="width of the two hidden layers")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    policy = build_policy(args.hidden)
    rng = np.random.default_rng(0)
    single = rng.normal(size=(1, *OBSERVATIONS.shape)).astype(np.float32)
    batch = rng.normal(size=(BATCH, *OBSERVATIONS.shape)).astype(np.float32)
    with tempfile.TemporaryDirectory() as directory:
        export = Path(directory) / "policy"
        export_policy(policy, export)
        latency, throughput = {}, {}
        for name, call in runners(export, policy).items():
            latency[name] = median_seconds(call, single, args.calls)
            throughput[name] = BATCH / median_seconds(call, batch, max(args.calls // 4, 10))

    print(
        f"MLP 28 -> {args.hidden} -> {args.hidden} -> 16, 1 intra-op / 1 inter-op thread, {args.calls} calls"
    )
    print(f"{'backend':<14} {'latency, batch 1 (us)':>22} {f'throughput, batch {BATCH} (obs/s)':>30}")
    for name in latency:
        print(f"{name:<14} {latency[name] * 1e6:>22.1f} {throughput[name]:>30,.0f}")
    for name in ("onnx_session", "onnx_policy"):
        print(
            f"latency ratio {name} / savedmodel: {latency[name] / latency['savedmodel']:.3f} (target <= 0.05)"
        )


if __name__ == "__main__":
    main()

"""Milliseconds of a Nature-CNN gradient step and forward, float32 against `mixed_precision`.

    python benchmarks/mixed_precision_step.py [--threads 2] [--repeats 20]
    ONEDNN_MAX_CPU_ISA=AVX512_CORE python benchmarks/mixed_precision_step.py   # as on a CPU without bfloat16

The network is the shipped Atari Q-network (Nature CNN, a 512-unit hidden layer, 6 actions) on
uint8 frames [batch, 4, 84, 84]; a gradient step is a forward, a backward and an Adam update,
compiled as the agents compile theirs. `mixed_precision` is `bfloat16_compute` around the
step, as DQN and PPO use it. Printed: the median milliseconds of each, and float32 / mixed
(above 1: mixed precision is faster). oneDNN picks bfloat16 kernels from the CPU's instructions
(AMX, AVX512-BF16); `ONEDNN_MAX_CPU_ISA` caps them to show a CPU without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from gymserve.agents.networks import bfloat16_compute, q_network

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(6)


def gradient_step(network: keras.Model, mixed: bool) -> Callable[[tf.Tensor], tf.Tensor]:
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(network.trainable_variables)

    def step(frames: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape, bfloat16_compute(network, mixed):
            loss = tf.reduce_mean(tf.square(network(frames, training=True)))
        gradients = tape.gradient(loss, network.trainable_variables)
        optimizer.apply_gradients(zip(gradients, network.trainable_variables, strict=True))
        return loss

    return tf.function(step, autograph=False)


def forward(network: keras.Model, mixed: bool) -> Callable[[tf.Tensor], tf.Tensor]:
    def act(frames: tf.Tensor) -> tf.Tensor:
        with bfloat16_compute(network, mixed):
            return network(frames)

    return tf.function(act, autograph=False)


def median_ms(function: Callable[[tf.Tensor], tf.Tensor], frames: tf.Tensor, repeats: int) -> float:
    function(frames).numpy()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(frames).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of each case")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    rng = np.random.default_rng(0)
    cases = [("gradient step", gradient_step, 256), ("gradient step", gradient_step, 32)]
    cases += [("forward", forward, 8), ("forward", forward, 1)]
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "all the CPU has")
    print(f"oneDNN instructions: {isa}; {args.threads} threads; median of {args.repeats} calls")
    print(f"{'case':<22} {'float32 ms':>11} {'mixed ms':>9} {'float32/mixed':>14}")
    for name, build, batch in cases:
        frames = tf.constant(rng.integers(0, 256, (batch, *FRAMES.shape), dtype=np.uint8))
        timings = []
        for mixed in (False, True):
            network = q_network(FRAMES, ACTIONS, hidden_sizes=(512,), image_encoder="nature_cnn")
            timings.append(median_ms(build(network, mixed), frames, args.repeats))
        label = f"{name}, {batch}"
        print(f"{label:<22} {timings[0]:>11.2f} {timings[1]:>9.2f} {timings[0] / timings[1]:>14.2f}")


if __name__ == "__main__":
    main()

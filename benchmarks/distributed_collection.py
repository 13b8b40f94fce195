"""Minitaur env steps/s collected by Ray actors against the single-process runner, measured in one run.

  python benchmarks/distributed_collection.py [--seconds 60] [--algorithm sac] [--env gymserve/Minitaur-v0]

No learning: every collector acts with the shipped config's freshly built acting network (as
after `learning_starts`), the way the trainer's runner does between updates.

- single process: a `Collector` in this process (an EnvRunner and the algorithm's `explore`), the
  work of one single-process training step without its gradient step;
- 1 and 2 actors: the same collector in Ray actor processes, shipping batches of
  `steps_per_batch` steps through the object store to this process, which only counts them.

It also measures what a cluster-size estimate needs: the pickled size of one transition batch,
the acting network's weight size and the time to publish it to every actor, and the learner's
gradient rounds per second on a filled replay buffer.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time

import numpy as np

from gymserve.agents.distributed import DistributedConfig
from gymserve.agents.distributed.actor import Collector
from gymserve.agents.distributed.learner import ActorPool
from gymserve.agents.training.runs import RunInfo, build_algorithm, run_config

LEARNING_CLOCK = 10**9  # past any learning_starts: explore with the network, not uniform actions


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algorithm", default="sac")
    parser.add_argument("--env", default="gymserve/Minitaur-v0")
    parser.add_argument("--seconds", type=float, default=60.0, help="collection time of each setting")
    parser.add_argument("--steps-per-batch", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import ray

    resolved = run_config(args.algorithm, args.env, "/nonexistent-run-dir", overrides={"num_envs": 1})
    info = RunInfo(args.algorithm, args.env, resolved.config)
    print(f"load average at start: {os.getloadavg()[0]:.1f}")

    local = Collector(info, num_envs=1, env_seed=0, seed=0, cpus=1)
    local.set_weights(local.algorithm.policy_weights(), 0, LEARNING_CLOCK)
    local.collect_transitions(args.steps_per_batch)  # warm-up: compiled acting, first reset
    single = rate(lambda: local.collect_transitions(args.steps_per_batch).steps, args.seconds)
    batch = local.collect_transitions(args.steps_per_batch)
    print(f"single-process runner: {single:.0f} steps/s")

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        rates = {}
        for actors in (1, 2):
            rates[actors], broadcast = actors_rate(info, actors, args.steps_per_batch, args.seconds)
            published = f"weights published in {broadcast * 1e3:.1f} ms"
            print(f"{actors} actor(s): {rates[actors]:.0f} steps/s, {published}")
    finally:
        ray.shutdown()
    print(f"1 actor / single process: {rates[1] / single:.2f}x (goal >= 0.9x)")
    print(f"2 actors / 1 actor: {rates[2] / rates[1]:.2f}x (goal >= 1.6x)")

    weights = local.algorithm.policy_weights()
    batch_kib = len(pickle.dumps(batch)) / 1024
    print(f"transition batch ({args.steps_per_batch} steps of 1 env): {batch_kib:.1f} KiB")
    print(f"acting network weights: {sum(array.nbytes for array in weights) / 1024:.1f} KiB")
    print(f"learner: {learner_rounds_per_second(info, batch, args.seconds / 2):.1f} gradient rounds/s")


def rate(collect, seconds: float) -> float:
    """Steps per second of repeated `collect()` calls (each returning its steps) over `seconds`."""
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        steps += collect()
    return steps / (time.perf_counter() - started)


def actors_rate(info: RunInfo, actors: int, steps_per_batch: int, seconds: float) -> tuple[float, float]:
    """Steps/s shipped by `actors` actors kept busy, and the mean time to publish weights to them."""
    config = info.config.model_copy(update={"num_envs": actors})
    actors_info = RunInfo(info.algorithm, info.env_id, config)
    pool = ActorPool(actors_info, DistributedConfig(actors=actors), env_seed=0)
    weights = build_algorithm(info).policy_weights()
    try:
        broadcasts = [pool.publish(weights, 0, LEARNING_CLOCK) for _ in range(5)]

        def submit(index: int) -> None:
            pool.submit(index, lambda actor: actor.collect_transitions.remote(steps_per_batch))

        for index in range(actors):
            submit(index)
        for index, _ in [pool.wait(block=True)[0] for _ in range(actors)]:  # warm-up batches
            submit(index)

        def collect() -> int:
            steps = 0
            for index, batch in pool.wait(block=True):
                steps += batch.steps
                submit(index)
            return steps

        return rate(collect, seconds), float(np.mean(broadcasts))
    finally:
        pool.close()


def learner_rounds_per_second(info: RunInfo, batch, seconds: float) -> float:
    """Gradient rounds per second of the learner, its replay filled with copies of `batch`."""
    algorithm = build_algorithm(info)
    while algorithm.replay.num_frames < max(info.config.learning_starts, info.config.batch_size):
        for transition in batch.transitions:
            algorithm.store(transition)
    observations = batch.transitions[-1].next_observations
    algorithm.learn(observations, LEARNING_CLOCK)  # compile
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        algorithm.learn(observations, LEARNING_CLOCK)
        rounds += 1
    return rounds / (time.perf_counter() - started)


if __name__ == "__main__":
    main()

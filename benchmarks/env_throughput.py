"""Steps per second of gymserve's environments against their originals, measured in one run.

  python benchmarks/env_throughput.py [--minitaur-steps 3000] [--cartpole-steps 100000]
      [--vector-steps 20000] [--chunks 30] [--only minitaur cartpole vector]

- Minitaur: gymserve's MinitaurEnv against pybullet_envs' MinitaurBulletEnv (loaded by
  tests/envs/pybullet_envs_reference.py), both unwrapped, dynamics randomization off, the same
  uniform random float32 actions, resetting when an episode terminates.
- CartPole: `gymnasium.make("gymserve/CartPole-v1")` against `gymnasium.make("CartPole-v1")`.
- Vector CartPole: 16 sub-environments through `gymnasium.make_vec(...,
  vectorization_mode="vector_entry_point")`, counting steps of every sub-environment.

The two environments of a pair take turns on short chunks of the same action sequence, so a
busy spell of other processes on a shared machine slows both alike. Rates are given by wall
clock and by CPU time of this process, which other processes disturb even less.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

import gymserve  # noqa: F401  (registers the gymserve/ environments)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "envs"))
VECTOR_ENVS = 16

# Steps an environment through a chunk of actions, continuing where the last chunk ended;
# returns the number of environment steps taken.
Runner = Callable[[np.ndarray], int]


@dataclass(frozen=True)
class Throughput:
    wall: float  # steps per second of wall-clock time
    cpu: float  # steps per second of this process's CPU time


def compare(
    ours: Runner, baseline: Runner, actions: np.ndarray, chunks: int
) -> tuple[Throughput, Throughput]:
    """Throughputs of both runners on `actions`, taking turns chunk by chunk."""
    steps, wall, cpu = [0, 0], [0.0, 0.0], [0.0, 0.0]
    for index, chunk in enumerate(np.array_split(actions, chunks)):
        order = (0, 1) if index % 2 == 0 else (1, 0)  # neither always runs right after the other
        for runner_index in order:
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            steps[runner_index] += (ours, baseline)[runner_index](chunk)
            wall[runner_index] += time.perf_counter() - wall_start
            cpu[runner_index] += time.process_time() - cpu_start
    ours_rate, baseline_rate = (Throughput(steps[i] / wall[i], steps[i] / cpu[i]) for i in (0, 1))
    return ours_rate, baseline_rate


def episode_runner(step: Callable[[np.ndarray], bool], reset: Callable[[], object]) -> Runner:
    """A runner for a single environment whose `step` returns whether the episode ended."""
    reset()

    def run(chunk: np.ndarray) -> int:
        for action in chunk:
            if step(action):
                reset()
        return len(chunk)

    return run


def compare_minitaur(steps: int, chunks: int, seed: int) -> tuple[Throughput, Throughput, float]:
    """Throughputs of ours and the reference, and the reference's CPU share in stepSimulation."""
    from pybullet_envs_reference import make_minitaur

    from gymserve.envs.minitaur import MinitaurEnv

    actions = np.random.default_rng(seed).uniform(-1.0, 1.0, (steps, 8)).astype(np.float32)
    ours = MinitaurEnv(randomize_dynamics=False)
    reference = make_minitaur(randomize=False)

    def reference_runner() -> Runner:
        return episode_runner(lambda action: reference.step(action.astype(np.float64))[2], reference.reset)

    try:
        ours_rate, reference_rate = compare(
            episode_runner(lambda action: ours.step(action)[2], lambda: ours.reset(seed=seed)),
            reference_runner(),
            actions,
            chunks,
        )
        # Physics both envs must do alike; the rest of the reference's time is what ours can save.
        # Timed apart from the comparison, which the timing calls would slow down.
        step_simulation, physics_cpu = reference._pybullet_client.stepSimulation, [0.0]

        def timed_step_simulation() -> None:
            start = time.process_time()
            step_simulation()
            physics_cpu[0] += time.process_time() - start

        reference._pybullet_client.stepSimulation = timed_step_simulation
        cpu_start = time.process_time()
        reference_runner()(actions[: steps // 3 + 1])
        physics_share = physics_cpu[0] / (time.process_time() - cpu_start)
    finally:
        ours.close()
        reference.close()
    return ours_rate, reference_rate, physics_share


def gym_runner(env_id: str, seed: int) -> Runner:
    env = gym.make(env_id)

    def step(action: np.ndarray) -> bool:
        _, _, terminated, truncated, _ = env.step(int(action))
        return terminated or truncated

    return episode_runner(step, lambda: env.reset(seed=seed))


def vector_runner(env_id: str, seed: int) -> Runner:
    envs = gym.make_vec(env_id, num_envs=VECTOR_ENVS, vectorization_mode="vector_entry_point")
    envs.reset(seed=seed)

    def run(chunk: np.ndarray) -> int:
        for actions in chunk:
            envs.step(actions)
        return len(chunk) * VECTOR_ENVS

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minitaur-steps", type=int, default=3000)
    parser.add_argument("--cartpole-steps", type=int, default=100_000)
    parser.add_argument("--vector-steps", type=int, default=20_000, help="steps of the 16-env vector env")
    parser.add_argument("--chunks", type=int, default=30, help="turns each environment of a pair takes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=("minitaur", "cartpole", "vector"),
        default=("minitaur", "cartpole", "vector"),
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    rows, notes = [], []
    if "minitaur" in args.only:
        ours, reference, physics_share = compare_minitaur(args.minitaur_steps, args.chunks, args.seed)
        rows.append(("Minitaur", "MinitaurBulletEnv-v0", ours, reference))
        notes.append(
            f"MinitaurBulletEnv-v0 spends {physics_share:.0%} of its CPU time in stepSimulation (reset "
            f"included): a reimplementation with no overhead at all would reach {1 / physics_share:.2f}x."
        )
    if "cartpole" in args.only:
        rates = compare(
            gym_runner("gymserve/CartPole-v1", args.seed),
            gym_runner("CartPole-v1", args.seed),
            rng.integers(0, 2, args.cartpole_steps),
            args.chunks,
        )
        rows.append(("gymserve/CartPole-v1", "CartPole-v1", *rates))
    if "vector" in args.only:
        rates = compare(
            vector_runner("gymserve/CartPole-v1", args.seed),
            vector_runner("CartPole-v1", args.seed),
            rng.integers(0, 2, (args.vector_steps, VECTOR_ENVS)),
            args.chunks,
        )
        rows.append((f"gymserve/CartPole-v1 x{VECTOR_ENVS}", f"CartPole-v1 x{VECTOR_ENVS}", *rates))

    print(f"{'environment':<26} {'steps/s':>10}   {'baseline':<22} {'steps/s':>10}   ratio   ratio (CPU)")
    for name, baseline_name, ours, baseline in rows:
        print(
            f"{name:<26} {ours.wall:>10,.0f}   {baseline_name:<22} {baseline.wall:>10,.0f}"
            f"   {ours.wall / baseline.wall:>4.2f}x  {ours.cpu / baseline.cpu:>5.2f}x"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()

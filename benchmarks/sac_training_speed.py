"""Environment steps per second of SAC training on gymserve/Minitaur-v0, against baselines, in one run.

  python benchmarks/sac_training_speed.py [--steps 1000] [--rounds 3] [--batch-size 256]

Every contender runs the same loop once learning has started: act on one Minitaur env with the
current actor, store the transition, and take one gradient step on a minibatch of
`--batch-size` with 256x256 actor and twin critics (the SAC Minitaur defaults). Contenders:

- `sac-xla`: gymserve SAC as shipped (one compiled XLA call a step that also computes the next action);
- `sac-graph`: the same without XLA (`jit_compile=False`);
- `sb3-sac`: Stable-Baselines3 SAC (PyTorch), with the optional `bench` extra installed;
- `env-only`: uniform random actions and no learning, the ceiling the environment sets.

Contenders are timed alternately for several rounds and the best round of each is kept (the
least disturbed by other processes on a shared machine); rates are given by wall clock and by
this process's CPU time. Ratios are against `sac-graph` unless --baseline says otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym
import numpy as np

import gymserve  # noqa: F401  (registers the gymserve/ environments)

ENV_ID = "gymserve/Minitaur-v0"
WARMUP_STEPS = 300  # transitions stored before timing, and compile/trace time excluded
HIDDEN = (256, 256)


def gymserve_sac(jit_compile: bool, batch_size: int) -> Callable[[int], None]:
    from gymserve.agents.off_policy.sac import SAC, SACConfig
    from gymserve.agents.training.env_runner import EnvRunner

    config = SACConfig(
        learning_starts=WARMUP_STEPS,
        batch_size=batch_size,
        normalize_observations=True,
        jit_compile=jit_compile,
    )
    env = gym.make(ENV_ID)
    sac = SAC(config, env.observation_space, env.action_space)
    runner = EnvRunner([env], seed=0, on_observations=sac.update_observation_statistics)
    for _ in range(WARMUP_STEPS + 5):
        sac.train_iteration(runner)

    def run(steps: int) -> None:
        for _ in range(steps):
            sac.train_iteration(runner)

    return run


def sb3_sac(batch_size: int) -> Callable[[int], None]:
    from stable_baselines3 import SAC as SB3SAC

    model = SB3SAC(
        "MlpPolicy",
        gym.make(ENV_ID),
        learning_starts=WARMUP_STEPS,
        batch_size=batch_size,
        policy_kwargs={"net_arch": list(HIDDEN)},
        seed=0,
        device="cpu",
    )
    model.learn(WARMUP_STEPS + 5)

    def run(steps: int) -> None:
        model.learn(steps, reset_num_timesteps=False)

    return run


def env_only() -> Callable[[int], None]:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    rng = np.random.default_rng(0)

    def run(steps: int) -> None:
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, 8).astype(np.float32))
            if terminated or truncated:
                env.reset()

    return run


def contenders(batch_size: int) -> dict[str, Callable[[], Callable[[int], None]]]:
    available = {
        "sac-xla": lambda: gymserve_sac(True, batch_size),
        "sac-graph": lambda: gymserve_sac(False, batch_size),
        "env-only": env_only,
    }
    if importlib.util.find_spec("stable_baselines3") is not None:
        available["sb3-sac"] = lambda: sb3_sac(batch_size)
    return available


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="environment steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--baseline", default="sac-graph")
    args = parser.parse_args()

    runs = {name: build() for name, build in contenders(args.batch_size).items()}
    best: dict[str, tuple[float, float]] = {name: (0.0, 0.0) for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            run(args.steps)
            wall = args.steps / (time.perf_counter() - wall_start)
            cpu = args.steps / (time.process_time() - cpu_start)
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))

    baseline_wall, baseline_cpu = best[args.baseline]
    print(f"{ENV_ID}, batch {args.batch_size}, {args.steps} steps x {args.rounds} rounds (best round)")
    header = ("contender", "steps/s wall", "ms/step", "steps/s cpu", "x wall", "x cpu")
    print("{:<10} {:>13} {:>8} {:>12} {:>7} {:>7}".format(*header))
    for name, (wall, cpu) in best.items():
        print(
            f"{name:<10} {wall:>13.1f} {1000 / wall:>8.2f} {cpu:>12.1f} "
            f"{wall / baseline_wall:>7.2f} {cpu / baseline_cpu:>7.2f}"
        )


if __name__ == "__main__":
    main()

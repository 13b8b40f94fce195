"""Time to solve a task: environment steps and wall time, per algorithm, in one run.

Protocol: a greedy evaluation over 20 episodes every `eval_interval` environment steps; a run
solves the task at the first evaluation whose AverageReturn reaches the task's target. Its wall
time counts everything from the start of training to the end of that evaluation (evaluations and
checkpoints included). Each algorithm runs once per seed with its shipped defaults on its task:

    gymserve/CartPole-v1   target 475, an evaluation every 10,000 steps   dqn ppo a2c a3c trpo acer
    Pendulum-v1            target -200, an evaluation every 1,000 steps    td3 ddpg

The table shows the median over seeds (an unsolved seed counts as slower than any solved one;
"-" when the median seed did not solve) and how many solved within the step budget, and the
ratio of each median to the baseline's (the first algorithm unless --baseline says otherwise).

    python benchmarks/time_to_solve.py --algorithms dqn --seeds 5
    python benchmarks/time_to_solve.py --algorithms ppo,sb3-ppo --baseline sb3-ppo
    python benchmarks/time_to_solve.py --algorithms trpo,sb3-trpo --baseline sb3-trpo
    python benchmarks/time_to_solve.py --algorithms td3,sb3-td3,ddpg,sb3-ddpg --baseline sb3-td3

`sb3-ppo`, `sb3-td3`, `sb3-ddpg` (Stable-Baselines3) and `sb3-trpo` (sb3-contrib), each with the
rl-baselines3-zoo settings for its task, are available when the optional `bench` extra is installed;
they train on Gymnasium's env of the task with one torch thread.

Each entry of RUNNERS is one function that trains one seed and reports its Outcome.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Idle OpenMP workers of torch (the SB3 baseline) otherwise spin, which slows its two threads
# down tens of times whenever other processes share the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

EVAL_EPISODES = 20


@dataclass(frozen=True)
class Task:
    """An environment and when it counts as solved."""

    env_id: str  # what gymserve trains on
    gymnasium_env_id: str  # the same task as Gymnasium registers it, for Stable-Baselines3
    target: float  # AverageReturn of a greedy evaluation
    eval_interval: int  # environment steps between evaluations


CARTPOLE = Task("gymserve/CartPole-v1", "CartPole-v1", 475.0, 10_000)
PENDULUM = Task("Pendulum-v1", "Pendulum-v1", -200.0, 1_000)


@dataclass(frozen=True)
class Outcome:
    """Where one seed's run first reached the target, or None for both if it never did."""

    steps: int | None
    wall_time: float | None
    evaluations: list[tuple[int, float]]  # (step, AverageReturn) of every evaluation


def run_gymserve(
    task: Task, algorithm: str, max_steps: int, seed: int, workdir: Path, config_file: Path | None = None
) -> Outcome:
    """Train a gymserve algorithm with its shipped config (or `config_file` over it) under the protocol."""
    from gymserve.agents import train

    protocol = {
        "seed": seed,
        "max_steps": max_steps,
        "target_reward": task.target,
        "eval_interval": task.eval_interval,
        "eval_episodes": EVAL_EPISODES,
        "checkpoint_interval": task.eval_interval,
    }
    run_dir = workdir / f"{algorithm}-{config_file.stem if config_file else 'shipped'}-{seed}"
    result = train(algorithm, task.env_id, run_dir, protocol, config_file, progress_bar=False)
    evaluations = result.history.evaluations()
    solved = next((row for row in evaluations if row["eval_return"] >= task.target), None)
    return Outcome(
        steps=None if solved is None else solved["step"],
        wall_time=None if solved is None else solved["wall_time"],
        evaluations=[(row["step"], row["eval_return"]) for row in evaluations],
    )


# rl-baselines3-zoo's hyperparameters for the task (PPO's schedules fall linearly to 0 over 100,000 steps)
ZOO_PPO = {
    "n_steps": 32,
    "batch_size": 256,
    "gae_lambda": 0.8,
    "gamma": 0.98,
    "n_epochs": 20,
    "ent_coef": 0.0,
    "learning_rate": lambda remaining: remaining * 1e-3,
    "clip_range": lambda remaining: remaining * 0.2,
}
ZOO_TRPO = {
    "n_steps": 512,
    "batch_size": 512,
    "cg_damping": 1e-3,
    "gae_lambda": 0.98,
    "gamma": 0.99,
    "learning_rate": 1e-3,
    "n_critic_updates": 20,
}
ZOO_PENDULUM = {  # TD3's and DDPG's, both with Gaussian exploration noise of std 0.1
    "gamma": 0.98,
    "buffer_size": 200_000,
    "learning_starts": 10_000,
    "gradient_steps": 1,
    "train_freq": 1,
    "learning_rate": 1e-3,
    "policy_kwargs": {"net_arch": [400, 300]},
}


def run_stable_baselines3(
    task: Task,
    model_class: str,
    n_envs: int,
    hyperparameters: dict[str, Any],
    timesteps: int,
    seed: int,
    workdir: Path,
    action_noise_std: float | None = None,
) -> Outcome:
    """Train `model_class` ("module:Class") for the zoo's `timesteps` on Gymnasium's env of `task`,
    exploring with Gaussian action noise of `action_noise_std` when given (off-policy models).

    Evaluations use gymserve's batched evaluation loop on the SB3 model's greedy actions, with
    the evaluation seeds the trainer uses; the clock starts when learning starts, as the trainer's.
    """
    import time

    import numpy as np
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.noise import NormalActionNoise

    from gymserve.agents.training.trainer import EVAL_SEED_OFFSET
    from gymserve.policies import Deterministic, Policy
    from gymserve.policies.episodes import evaluate

    class GreedyStableBaselinesPolicy(Policy):
        def __init__(self, model):
            super().__init__(model.observation_space, model.action_space)
            self.model = model

        def _distribution(self, observations, state):
            actions, _ = self.model.predict(observations, deterministic=True)
            return Deterministic(actions)

    class EvaluateEveryInterval(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_evaluation = task.eval_interval
            self.evaluations: list[tuple[int, float, float]] = []  # (step, AverageReturn, wall time)

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_evaluation:
                return True
            self.next_evaluation += task.eval_interval
            policy = GreedyStableBaselinesPolicy(self.model)
            env_id, offset = task.gymnasium_env_id, seed + EVAL_SEED_OFFSET
            average = evaluate(policy, env_id, EVAL_EPISODES, seed=offset).average_return
            self.evaluations.append((self.num_timesteps, average, time.perf_counter() - started))
            return average < task.target

    torch.set_num_threads(1)
    env = make_vec_env(task.gymnasium_env_id, n_envs=n_envs, seed=seed)
    if action_noise_std is not None:
        size = env.action_space.shape[-1]
        noise = NormalActionNoise(np.zeros(size), np.full(size, action_noise_std))
        hyperparameters = hyperparameters | {"action_noise": noise}
    module_name, class_name = model_class.split(":")
    model_type = getattr(importlib.import_module(module_name), class_name)
    model = model_type("MlpPolicy", env, seed=seed, device="cpu", **hyperparameters)
    callback = EvaluateEveryInterval()
    started = time.perf_counter()
    model.learn(timesteps, callback=callback)
    evaluations = callback.evaluations
    solved = next(((step, wall) for step, value, wall in evaluations if value >= task.target), (None, None))
    return Outcome(*solved, evaluations=[(step, value) for step, value, _ in evaluations])


RUNNERS: dict[str, Callable[[int, Path], Outcome]] = {
    "dqn": partial(run_gymserve, CARTPOLE, "dqn", 200_000),
    "ppo": partial(run_gymserve, CARTPOLE, "ppo", 100_000),
    "a2c": partial(run_gymserve, CARTPOLE, "a2c", 300_000),
    "a3c": partial(run_gymserve, CARTPOLE, "a3c", 500_000),
    "trpo": partial(run_gymserve, CARTPOLE, "trpo", 100_000),
    "acer": partial(run_gymserve, CARTPOLE, "acer", 200_000),
    "td3": partial(run_gymserve, PENDULUM, "td3", 20_000),
    "ddpg": partial(run_gymserve, PENDULUM, "ddpg", 20_000),
}
if importlib.util.find_spec("stable_baselines3") is not None:  # the optional `bench` extra
    RUNNERS["sb3-ppo"] = partial(
        run_stable_baselines3, CARTPOLE, "stable_baselines3:PPO", 8, ZOO_PPO, 100_000
    )
    for name in ("td3", "ddpg"):
        RUNNERS[f"sb3-{name}"] = partial(
            run_stable_baselines3,
            PENDULUM,
            f"stable_baselines3:{name.upper()}",
            1,
            ZOO_PENDULUM,
            20_000,
            action_noise_std=0.1,
        )
if importlib.util.find_spec("sb3_contrib") is not None:
    RUNNERS["sb3-trpo"] = partial(run_stable_baselines3, CARTPOLE, "sb3_contrib:TRPO", 2, ZOO_TRPO, 100_000)


def median_or_none(values: list[float | None]) -> float | None:
    """The median over every seed, an unsolved one (None) counting as slower than any solved one;
    None when the median seed did not solve."""
    median = statistics.median(math.inf if value is None else value for value in values)
    return None if math.isinf(median) else median


def ratio(value: float | None, baseline: float | None) -> str:
    return "-" if value is None or not baseline else f"{value / baseline:.2f}"


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, default=1, help="TensorFlow intra-op threads (default: %(default)s)"
    )


def chosen_names(parser: argparse.ArgumentParser, kind: str, text: str, known: Iterable[str]) -> list[str]:
    """The comma-separated names in `text`; a usage error names any that is not `known`."""
    names, known = [name.strip() for name in text.split(",")], list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"unknown {kind} {unknown}; expected among {', '.join(known)}")
    return names


def use_tensorflow_threads(threads: int) -> None:
    """`threads` intra-op threads and one inter-op thread, set before TensorFlow runs anything."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--algorithms", default="dqn", help=f"comma-separated, among: {', '.join(RUNNERS)}")
    parser.add_argument(
        "--seeds", type=int, default=5, help="seeds 0..N-1 per algorithm (default: %(default)s)"
    )
    parser.add_argument("--baseline", help="algorithm the ratios are relative to (default: the first)")
    add_threads_argument(parser)
    args = parser.parse_args()
    names = chosen_names(parser, "algorithms", args.algorithms, RUNNERS)
    baseline = args.baseline or names[0]
    if baseline not in names:
        parser.error(f"--baseline {baseline} is not among --algorithms")
    use_tensorflow_threads(args.threads)

    # Seed by seed, each algorithm in turn, so that a change in the machine's load falls on all of them.
    outcomes: dict[str, list[Outcome]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="time-to-solve-") as workdir:
        for seed in range(args.seeds):
            for name in names:
                outcome = RUNNERS[name](seed, Path(workdir))
                outcomes[name].append(outcome)
                solved = (
                    f"solved at {outcome.steps} steps, {outcome.wall_time:.1f} s"
                    if outcome.steps is not None
                    else "not solved"
                )
                curve = " ".join(f"{step // 1000}k:{value:.0f}" for step, value in outcome.evaluations)
                print(f"{name} seed {seed}: {solved}  [{curve}]", flush=True)

    medians = {
        name: (
            median_or_none([outcome.steps for outcome in runs]),
            median_or_none([outcome.wall_time for outcome in runs]),
        )
        for name, runs in outcomes.items()
    }
    base_steps, base_time = medians[baseline]
    print(f"\nmedian over {args.seeds} seeds (solved runs), ratios relative to {baseline}")
    print(f"{'algorithm':<12}{'solved':>8}{'steps':>10}{'wall s':>9}{'steps x':>9}{'time x':>8}")
    for name, runs in outcomes.items():
        steps, wall_time = medians[name]
        solved = sum(outcome.steps is not None for outcome in runs)
        print(
            f"{name:<12}{f'{solved}/{len(runs)}':>8}{'-' if steps is None else f'{steps:.0f}':>10}"
            f"{'-' if wall_time is None else f'{wall_time:.1f}':>9}"
            f"{ratio(steps, base_steps):>9}{ratio(wall_time, base_time):>8}"
        )
    for name in ("ppo", "trpo", "td3", "ddpg"):
        if {name, f"sb3-{name}"} <= medians.keys():
            (steps, seconds), (sb3_steps, sb3_seconds) = medians[name], medians[f"sb3-{name}"]
            ratios = f"steps {ratio(steps, sb3_steps)}, wall time {ratio(seconds, sb3_seconds)}"
            print(f"\n{name} / sb3-{name}: {ratios}")


if __name__ == "__main__":
    main()

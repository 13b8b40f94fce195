"""Env steps per second of PPO and DQN training on Pong, gymserve against Stable-Baselines3, in one run.

    python benchmarks/atari_training_speed.py [--steps 20000] [--rounds 2] [--algorithms ppo dqn]
        [--threads 1] [--skip gymserve-dqn-xla] [--exploration-steps 1000000]

Both libraries learn with the hyperparameters of the Stable-Baselines3 zoo's Atari configs
(`ZOO_PPO` and `ZOO_DQN` set the zoo's values where the shipped `ppo_AtariPong-v0.json` and
`dqn_AtariPong-v0.json`, made to learn Pong in 3M and 1M steps, differ), the
Nature DQN CNN and the same environments: `gymserve/AtariPong-v0` with its training options
(ALE/Pong-v5, frame skip 4, 84x84 grayscale, 4 stacked frames, clipped rewards), stepped one
after another in this process (gymserve's EnvRunner, SB3's DummyVecEnv), so the difference is
the learner's. Contenders:

- PPO, 8 envs, 128 steps each per rollout, 4 epochs of minibatches of 256: `gymserve-ppo`,
  `gymserve-ppo-bf16` (the same with `mixed_precision`: bfloat16 gradient steps), `sb3-ppo`;
- DQN, 1 env, a gradient step on 32 transitions every 4 steps, replay of 100k:
  `gymserve-dqn-graph` (a TensorFlow graph), `gymserve-dqn-xla` (the same compiled with XLA),
  `gymserve-dqn-bf16` (the graph with `mixed_precision`), `sb3-dqn`. Learning starts after
  `WARMUP_STEPS` stored steps instead of the zoo's 100k, so that every timed step learns.

Each contender is built and warmed up (traces, compiles, a full first rollout or replay warm-up)
before timing; then the contenders of an algorithm run `--steps / --rounds` steps each in turn,
alternating, so background load weighs on all alike. Printed: steps/s by wall clock and by this
process's CPU time (all threads), and each one's ratio to SB3's; the 1-minute load average
before and after shows how busy the machine was. Needs `stable-baselines3` (CPU torch).

Both libraries get `--threads` threads for their operations. On a machine shared with other
busy processes give them 1: PyTorch's OpenMP threads spin while they wait for each other, and
with more threads than free cores a Nature CNN gradient step then costs ten times the CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gymnasium as gym

import gymserve  # noqa: F401  (registers the environments)
from gymserve.agents.training.schedules import linear_schedule
from gymserve.envs import training_options
from gymserve.envs.atari import atari_env_id

ENV_ID = atari_env_id("Pong")
WARMUP_STEPS = 2_000  # DQN's stored steps before learning starts (and before timing)

# The zoo's Atari DQN where the shipped Pong config differs: no double Q, no dueling head, 1-step
# targets, a target copy every 1,000 env steps, epsilon decayed over the first 10% of 10M steps.
ZOO_DQN = {
    "max_steps": 10_000_000,
    "learning_starts": 100_000,
    "double_q": False,
    "dueling": False,
    "bootstrap_horizon": 1,
    "target_update_interval": 250,
    "exploration_steps": 1_000_000,
}
# The zoo's Atari PPO where the shipped Pong config differs: minibatches of 256, the learning rate
# and the clip decayed over 10M steps.
ZOO_PPO = {"max_steps": 10_000_000, "batch_size": 256, "linear_decay_steps": 10_000_000}
ZOO_OVERRIDES: dict[str, dict[str, object]] = {"ppo": ZOO_PPO, "dqn": ZOO_DQN}

Run = Callable[[int], int]  # runs about `steps` env steps; returns how many it ran


def warmup_steps(algorithm: str, config) -> int:
    """Steps run before timing: PPO's first rollout and update, DQN's replay warm-up and first updates."""
    return config.num_envs * config.n_steps if algorithm == "ppo" else WARMUP_STEPS + 4 * config.train_freq


def training_envs(count: int) -> list[gym.Env]:
    return [gym.make(ENV_ID, **training_options(ENV_ID)) for _ in range(count)]


def zoo_config(algorithm: str, **overrides: object):
    from gymserve.agents.off_policy.dqn import DQNConfig
    from gymserve.agents.on_policy.ppo import PPOConfig
    from gymserve.agents.training.config import resolve_config

    config_class = {"ppo": PPOConfig, "dqn": DQNConfig}[algorithm]
    overrides = ZOO_OVERRIDES[algorithm] | overrides
    return resolve_config(config_class, algorithm, ENV_ID, overrides=overrides).config


def gymserve_run(algorithm: str, **overrides: object) -> Run:
    from gymserve.agents.off_policy.dqn import DQN
    from gymserve.agents.on_policy.ppo import PPO
    from gymserve.agents.training.env_runner import EnvRunner

    config = zoo_config(algorithm, **overrides)
    envs = training_envs(config.num_envs)
    agent = {"ppo": PPO, "dqn": DQN}[algorithm](config, envs[0].observation_space, envs[0].action_space)
    runner = EnvRunner(envs, seed=0)
    while runner.total_steps < warmup_steps(algorithm, config):
        agent.train_iteration(runner)

    def run(steps: int) -> int:
        start = runner.total_steps
        while runner.total_steps - start < steps:
            agent.train_iteration(runner)
        return runner.total_steps - start

    return run


def sb3_run(algorithm: str) -> Run:
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.utils import LinearSchedule
    from stable_baselines3.common.vec_env import DummyVecEnv

    config = zoo_config(algorithm)
    env = DummyVecEnv([lambda env=env: env for env in training_envs(config.num_envs)])
    if algorithm == "ppo":
        model = PPO(
            "CnnPolicy",
            env,
            n_steps=config.n_steps,
            n_epochs=config.n_epochs,
            batch_size=config.batch_size,
            learning_rate=LinearSchedule(config.learning_rate, 0.0, 1.0),
            clip_range=LinearSchedule(config.clip_coef, 0.0, 1.0),
            ent_coef=config.ent_coef,
            vf_coef=config.vf_coef,
            gamma=config.gamma,
            gae_lambda=config.gae_lambda,
            max_grad_norm=config.max_grad_norm,
            seed=0,
            device="cpu",
        )
    else:
        model = DQN(
            "CnnPolicy",
            env,
            learning_rate=config.learning_rate,
            buffer_size=config.buffer_size,
            learning_starts=WARMUP_STEPS,
            batch_size=config.batch_size,
            train_freq=config.train_freq,
            gradient_steps=config.gradient_steps,
            gamma=config.gamma,
            target_update_interval=config.target_update_interval * config.train_freq,
            exploration_fraction=config.exploration_steps / config.max_steps,
            exploration_final_eps=config.exploration_final_eps,
            max_grad_norm=config.max_grad_norm,
            seed=0,
            device="cpu",
        )
        # SB3 anneals epsilon over each learn() call's own steps, so a run timed in several calls
        # would act at the final epsilon throughout; give it the schedule over the run's steps.
        model.exploration_schedule = lambda _progress: linear_schedule(
            config.exploration_initial_eps,
            config.exploration_final_eps,
            config.exploration_steps,
            model.num_timesteps,
        )
    model.learn(warmup_steps(algorithm, config))

    def run(steps: int) -> int:
        start = model.num_timesteps
        model.learn(steps, reset_num_timesteps=False)
        return model.num_timesteps - start

    return run


CONTENDERS: dict[str, dict[str, Callable[[], Run]]] = {
    "ppo": {
        "gymserve-ppo": lambda: gymserve_run("ppo"),
        "gymserve-ppo-bf16": lambda: gymserve_run("ppo", mixed_precision=True),
        "sb3-ppo": lambda: sb3_run("ppo"),
    },
    "dqn": {
        "gymserve-dqn-graph": lambda: gymserve_run("dqn", learning_starts=WARMUP_STEPS, jit_compile=False),
        "gymserve-dqn-xla": lambda: gymserve_run("dqn", learning_starts=WARMUP_STEPS, jit_compile=True),
        "gymserve-dqn-bf16": lambda: gymserve_run(
            "dqn", learning_starts=WARMUP_STEPS, jit_compile=False, mixed_precision=True
        ),
        "sb3-dqn": lambda: sb3_run("dqn"),
    },
}


def set_threads(count: int) -> None:
    import tensorflow as tf
    import torch

    tf.config.threading.set_intra_op_parallelism_threads(count)
    tf.config.threading.set_inter_op_parallelism_threads(count)
    torch.set_num_threads(count)
    torch.set_num_interop_threads(count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="timed env steps of each contender")
    parser.add_argument("--rounds", type=int, default=2, help="turns the steps are split into")
    parser.add_argument("--algorithms", nargs="+", choices=tuple(CONTENDERS), default=list(CONTENDERS))
    parser.add_argument("--threads", type=int, default=1, help="operation threads of each library")
    parser.add_argument("--skip", nargs="*", default=[], help="contenders not to run (never SB3's)")
    parser.add_argument(
        "--exploration-steps",
        type=int,
        default=ZOO_DQN["exploration_steps"],
        help="DQN's epsilon decay, the zoo's 1M by default; 1: time the late phase, where every step acts "
        "greedily with epsilon 0.01 (early, with epsilon near 1, both libraries skip the network for random "
        "actions)",
    )
    args = parser.parse_args()
    set_threads(args.threads)
    ZOO_DQN["exploration_steps"] = args.exploration_steps

    for algorithm in args.algorithms:
        load_before = os.getloadavg()[0]
        builds = {name: build for name, build in CONTENDERS[algorithm].items() if name not in args.skip}
        runs = {name: build() for name, build in builds.items()}
        totals = dict.fromkeys(runs, (0, 0.0, 0.0))  # steps, wall seconds, CPU seconds
        for _ in range(args.rounds):
            for name, run in runs.items():
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                steps = run(args.steps // args.rounds)
                done, wall, cpu = totals[name]
                totals[name] = (
                    done + steps,
                    wall + time.perf_counter() - wall_start,
                    cpu + time.process_time() - cpu_start,
                )
        print(
            f"{ENV_ID} {algorithm}: {args.steps} steps each in {args.rounds} turns; {os.cpu_count()} CPUs, "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        header = ("contender", "steps", "steps/s wall", "steps/s CPU", "x SB3 wall", "x SB3 CPU")
        print("{:<18} {:>7} {:>13} {:>12} {:>11} {:>10}".format(*header))
        done, wall, cpu = totals[f"sb3-{algorithm}"]
        baseline = (done / wall, done / cpu)
        for name, (done, wall, cpu) in totals.items():
            print(
                f"{name:<18} {done:>7} {done / wall:>13.1f} {done / cpu:>12.1f} "
                f"{done / wall / baseline[0]:>11.2f} {done / cpu / baseline[1]:>10.2f}"
            )


if __name__ == "__main__":
    main()

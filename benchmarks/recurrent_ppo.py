"""Memory on a partially observed task: recurrent and feed-forward PPO on gymserve/CartPoleNoVelocity-v1.

Per seed, trains PPO with the shipped config of gymserve/CartPoleNoVelocity-v1 (an LSTM, stopping
at a greedy evaluation of 475) and feed-forward PPO with the shipped config of
gymserve/CartPole-v1 (no memory, 100,000 steps), then evaluates each run's best checkpoint
greedily over 20 episodes (reset seeds 12345...). The baseline, measured in the same run, is
random play over the same episodes; the table shows each return and its ratio to it.

    python benchmarks/recurrent_ppo.py --seeds 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ENV_ID = "gymserve/CartPoleNoVelocity-v1"
EVAL_EPISODES = 20
EVAL_SEED = 12345


def random_play_return() -> float:
    import gymnasium as gym

    from gymserve.policies.episodes import evaluate
    from gymserve.policies.random_policy import RandomPolicy

    env = gym.make(ENV_ID)
    policy = RandomPolicy(env.observation_space, env.action_space, seed=0)
    return evaluate(policy, ENV_ID, EVAL_EPISODES, seed=EVAL_SEED).average_return


def train_and_evaluate(run_dir: Path, config: dict) -> tuple[float, int, float]:
    """(greedy AverageReturn of the best checkpoint, env steps trained, wall seconds)."""
    from gymserve.agents import load_trained_policy, train
    from gymserve.policies.episodes import evaluate

    started = time.perf_counter()
    result = train("ppo", ENV_ID, run_dir, config=config, progress_bar=False)
    seconds = time.perf_counter() - started
    trained = load_trained_policy(run_dir)
    evaluation = evaluate(trained.policy, ENV_ID, EVAL_EPISODES, "greedy", seed=EVAL_SEED)
    return evaluation.average_return, result.total_steps, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    arguments = parser.parse_args()

    from gymserve.agents.training.config import shipped_config_path

    feed_forward = json.loads(shipped_config_path("ppo", "gymserve/CartPole-v1").read_text())
    baseline = random_play_return()
    print(f"random play: AverageReturn {baseline:.1f} over {EVAL_EPISODES} episodes")
    print("seed | policy       | AverageReturn | x random | env steps | wall s")
    with tempfile.TemporaryDirectory() as workdir:
        for seed in range(arguments.seeds):
            runs = {
                "lstm (ppo)": {"seed": seed},
                "mlp (ppo)": {**feed_forward, "lstm_units": None, "seed": seed},
            }
            for name, config in runs.items():
                average, steps, seconds = train_and_evaluate(Path(workdir) / f"{name[:4]}-{seed}", config)
                print(
                    f"{seed:4d} | {name:12s} | {average:13.1f} | {average / baseline:8.1f} | "
                    f"{steps:9d} | {seconds:6.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Do the shipped configs solve their task on every seed? The check the slow tests make on one seed.

Each (algorithm, environment) below trains with its shipped config, as `gymserve train` would, on
`--seeds` seeds from `--first-seed`; the best checkpoint then plays 20 greedy episodes from start
states no evaluation during training used. A seed solves the task when their AverageReturn
reaches the target. Prints each seed's return, the env steps and wall time training took, and
how many seeds solved.

    python benchmarks/shipped_config_seeds.py --seeds 5
    python benchmarks/shipped_config_seeds.py --checks td3-bullet,ddpg-bullet --seeds 5
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import NamedTuple

from time_to_solve import add_threads_argument, chosen_names, use_tensorflow_threads

FRESH_EPISODES = 20
FRESH_SEED = 12345  # the slow tests' start states


class Check(NamedTuple):
    algorithm: str
    env_id: str
    target: float


CHECKS = {
    "td3-bullet": Check("td3", "gymserve/CartPoleContinuousBullet-v0", 190.0),
    "ddpg-bullet": Check("ddpg", "gymserve/CartPoleContinuousBullet-v0", 190.0),
    "td3-pendulum": Check("td3", "Pendulum-v1", -200.0),
    "ddpg-pendulum": Check("ddpg", "Pendulum-v1", -200.0),
}


def fresh_greedy_return(check: Check, seed: int, run_dir: Path) -> tuple[float, int, float]:
    """AverageReturn of the trained policy over the fresh episodes, with the run's env steps and wall time."""
    from gymserve.agents import load_trained_policy, train
    from gymserve.policies.episodes import evaluate

    result = train(check.algorithm, check.env_id, run_dir, {"seed": seed}, progress_bar=False)
    policy = load_trained_policy(run_dir).policy
    evaluation = evaluate(policy, check.env_id, FRESH_EPISODES, "greedy", seed=FRESH_SEED)
    return evaluation.average_return, result.state.total_steps, result.state.wall_time


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checks", default=",".join(CHECKS), help=f"comma-separated, among: {', '.join(CHECKS)}"
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per check (default: %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (default: %(default)s)")
    add_threads_argument(parser)
    args = parser.parse_args()
    names = chosen_names(parser, "checks", args.checks, CHECKS)
    use_tensorflow_threads(args.threads)

    summary = []
    with tempfile.TemporaryDirectory(prefix="shipped-config-seeds-") as workdir:
        for name in names:
            check = CHECKS[name]
            returns = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                value, steps, seconds = fresh_greedy_return(check, seed, Path(workdir) / f"{name}-{seed}")
                returns.append(value)
                print(f"{name} seed {seed}: {value:.1f} after {steps} steps, {seconds:.0f} s", flush=True)
            solved = sum(value >= check.target for value in returns)
            summary.append(f"{name}: {solved}/{len(returns)} seeds reach {check.target:g}")
    print("\n" + "\n".join(summary))


if __name__ == "__main__":
    main()

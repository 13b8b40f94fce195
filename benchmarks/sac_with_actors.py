"""SAC on Minitaur with Ray actors against the single-process run, at equal wall time, in one run.

  python benchmarks/sac_with_actors.py [--minutes 10] [--actors 2] [--seed 0]

Both settings train the shipped SAC Minitaur config from scratch (seed `--seed`) in a temporary
run directory, with greedy evaluations of 10 episodes every 10,000 env steps, and stop at the
first evaluation after `--minutes` of training wall time (evaluations included). The
single-process run keeps the shipped `num_envs` (1); the actor run steps one env per actor
(`num_envs` = actors), its rate limiter keeping the single-process samples per insert
(`batch_size` / `num_envs`). Printed per setting: env steps, wall time, env steps/s and every
greedy evaluation, then the ratio of env steps/s and both returns at the last step both evaluated.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gymserve.agents import train
from gymserve.agents.training.trainer import TrainerState, TrainingResult

ENV_ID = "gymserve/Minitaur-v0"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall time of each setting")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")

    from gymserve.agents.distributed import DistributedConfig

    budget = args.minutes * 60
    results = {
        "single process": run(args.seed, budget, None),
        f"{args.actors} actors": run(args.seed, budget, DistributedConfig(actors=args.actors)),
    }
    for name, (result, evaluations) in results.items():
        rate = result.total_steps / result.wall_time
        print(f"{name}: {result.total_steps} env steps in {result.wall_time:.0f} s = {rate:.1f} env steps/s")
        for step, seconds, value in evaluations:
            print(f"    {step:>7} steps  {seconds:>6.0f} s  greedy AverageReturn {value:.3f}")

    (single, single_evaluations), (actors, actor_evaluations) = results.values()
    speedup = (actors.total_steps / actors.wall_time) / (single.total_steps / single.wall_time)
    print(f"env steps/s, {args.actors} actors / single process: {speedup:.2f}x")
    last = min(len(single_evaluations), len(actor_evaluations)) - 1
    step, single_seconds, single_return = single_evaluations[last]
    _, actor_seconds, actor_return = actor_evaluations[last]  # both evaluate at the same steps
    print(
        f"greedy AverageReturn at {step} env steps: single process {single_return:.3f} "
        f"({single_seconds:.0f} s), {args.actors} actors {actor_return:.3f} ({actor_seconds:.0f} s)"
    )


def run(seed: int, budget: float, distributed) -> tuple[TrainingResult, list[tuple[int, float, float]]]:
    """Train until the first evaluation past `budget` seconds; the result and (step, s, return) rows."""
    evaluations: list[tuple[int, float, float]] = []

    def record(state: TrainerState) -> bool:
        evaluations.append((state.total_steps, state.wall_time, state.evaluation_return))
        return state.wall_time >= budget

    overrides = {"seed": seed, "max_steps": 10**7, "eval_interval": 10_000}
    if distributed is not None:
        overrides["num_envs"] = distributed.actors
    with tempfile.TemporaryDirectory() as directory:
        result = train(
            "sac",
            ENV_ID,
            Path(directory) / "run",
            overrides,
            progress_bar=False,
            on_evaluation=record,
            distributed=distributed,
        )
    return result, evaluations


if __name__ == "__main__":
    main()

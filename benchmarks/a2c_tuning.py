"""Does `gymserve tune` find a better A2C config for gymserve/CartPole-v1 than the shipped one?

One run: a study of `--trials` trials on `--jobs` trial processes, minimising environment steps to
a greedy return of 475 (each trial: the mean over seeds 0 .. `--seeds-per-trial` - 1, budget
`--budget` steps per seed, the time-to-solve protocol's
evaluation every 10,000 steps over 20 episodes, median pruning after 5 complete trials); then the
best config and the shipped config each train on `--seeds` seeds the study never used (100, 101,
...) under the protocol of time_to_solve.py. Prints the study's wall time and trial
counts, and the median env steps to 475 of both configs with their ratio (goal: <= 0.5).

    python benchmarks/a2c_tuning.py --trials 24 --jobs 2 --seeds 5 --seeds-per-trial 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from time_to_solve import (
    CARTPOLE,
    EVAL_EPISODES,
    Outcome,
    median_or_none,
    ratio,
    run_gymserve,
)

FIRST_UNSEEN_SEED = 100  # the study trains every trial on seeds from 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=24, help="trials of the study (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="trial processes at once (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=5, help="unseen seeds per config (default: %(default)s)")
    parser.add_argument(
        "--seeds-per-trial", type=int, default=2, help="training runs per trial (default: %(default)s)"
    )
    parser.add_argument(
        "--budget", type=int, default=100_000, help="env steps per trial and retrain (default: %(default)s)"
    )
    args = parser.parse_args()

    from gymserve.tuning import tune

    with tempfile.TemporaryDirectory(prefix="a2c-tuning-") as workdir:
        workdir = Path(workdir)
        protocol = workdir / "protocol.json"
        protocol.write_text(
            json.dumps(
                {
                    "eval_interval": CARTPOLE.eval_interval,
                    "eval_episodes": EVAL_EPISODES,
                    "checkpoint_interval": CARTPOLE.eval_interval,
                }
            )
        )
        started = time.perf_counter()
        result = tune(
            "a2c",
            CARTPOLE.env_id,
            workdir / "study",
            args.trials,
            jobs=args.jobs,
            max_steps=args.budget,
            target_reward=CARTPOLE.target,
            seeds_per_trial=args.seeds_per_trial,
            config_file=protocol,
            progress_bar=False,
        )
        study_seconds = time.perf_counter() - started
        counts = ", ".join(f"{count} {state.lower()}" for state, count in sorted(result.states.items()))
        print(f"study: {args.trials} trials on {args.jobs} jobs in {study_seconds:.0f} s ({counts})")
        if result.best_trial is None:
            print("no trial completed: nothing to retrain")
            return
        best_config = workdir / "study" / "best_config.json"
        print(f"best trial {result.best_trial}: {result.best_value:.0f} steps; {best_config.read_text()}")

        outcomes: dict[str, list[Outcome]] = {"tuned": [], "shipped": []}
        for seed in range(FIRST_UNSEEN_SEED, FIRST_UNSEEN_SEED + args.seeds):
            for name, config_file in (("tuned", best_config), ("shipped", None)):
                outcome = run_gymserve(CARTPOLE, "a2c", args.budget, seed, workdir, config_file)
                outcomes[name].append(outcome)
                solved_at = f"solved at {outcome.steps} steps" if outcome.steps else "not solved"
                print(f"{name} seed {seed}: {solved_at}", flush=True)

    steps = {name: median_or_none([outcome.steps for outcome in runs]) for name, runs in outcomes.items()}
    for name, runs in outcomes.items():
        solved = sum(outcome.steps is not None for outcome in runs)
        print(f"{name}: solved {solved}/{len(runs)}, median env steps to {CARTPOLE.target:g}: {steps[name]}")
    print(f"tuned / shipped median env steps: {ratio(steps['tuned'], steps['shipped'])} (goal <= 0.5)")


if __name__ == "__main__":
    main()

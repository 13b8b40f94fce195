"""`gymserve tune`: an Optuna study over an algorithm's config; rerun the same command to add trials."""

from __future__ import annotations

import argparse

from gymserve.cli.common import CommandError, check_env_id, check_exists, import_quietly
from gymserve.cli.config import add_algorithm_arguments
from gymserve.common.extras import require

DESCRIPTION = (
    "Run an Optuna study over ALGORITHM's config: each trial trains in its own process into "
    "OUT/trials/NUMBER, reports its greedy evaluations and is pruned by the median rule. The study lives in "
    "OUT/study.db or at --storage, so several processes or machines can share it. Writes best_config.json "
    '(for gymserve train --config), trials.csv and PNG plots to OUT. Needs pip install "gymserve[tune]".'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_algorithm_arguments(parser)
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="folder of the study's trials and reports"
    )
    parser.add_argument("--trials", type=int, required=True, help="trials this command runs")
    parser.add_argument("--jobs", type=int, default=1, help="trials trained at once (default: %(default)s)")
    parser.add_argument(
        "--storage", metavar="URL", help="Optuna RDB URL of the study (default: OUT/study.db)"
    )
    parser.add_argument("--study", metavar="NAME", help="study name (default: ALGORITHM-ENV_NAME)")
    parser.add_argument("--max-steps", type=int, help="environment steps per trial (default: the config's)")
    parser.add_argument(
        "--target-reward",
        type=float,
        help="minimise environment steps to this greedy return (default: maximise the mean greedy return "
        "of the last evaluations)",
    )
    parser.add_argument(
        "--last-evaluations", type=int, default=3, help="evaluations the return is averaged over (default: 3)"
    )
    parser.add_argument(
        "--seeds-per-trial",
        type=int,
        default=1,
        help="training runs per trial on consecutive seeds from --seed, scored by their mean (default: 1)",
    )
    parser.add_argument(
        "--search-space", metavar="FILE", help="JSON or YAML search space (default: the shipped one)"
    )
    parser.add_argument("--config", metavar="FILE", help="JSON config fields every trial starts from")
    parser.add_argument("--pruner", choices=("median", "none"), default="median", help="default: median")
    parser.add_argument(
        "--warmup-trials", type=int, default=5, help="complete trials before pruning starts (default: 5)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="training seed of every trial's first run (default: 0)"
    )
    parser.add_argument(
        "--keep-study-settings",
        action="store_true",
        help="best_config.json also keeps the study's seed, budget, stop rules and evaluation settings "
        "(default: only how the best trial learned, so gymserve train uses the shipped stop rules)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> None:
    check_env_id(args.env)
    check_exists(args.config, "--config")
    check_exists(args.search_space, "--search-space")
    require("optuna", "gymserve tune")
    import_quietly("tensorflow", "tune")
    from gymserve.agents import UnknownEnvironmentError
    from gymserve.agents.training.config import ConfigError
    from gymserve.tuning import TuningError, tune

    try:
        result = tune(
            args.algorithm,
            args.env,
            args.out,
            args.trials,
            jobs=args.jobs,
            storage=args.storage,
            study_name=args.study,
            max_steps=args.max_steps,
            target_reward=args.target_reward,
            last_evaluations=args.last_evaluations,
            seeds_per_trial=args.seeds_per_trial,
            search_space=args.search_space,
            config_file=args.config,
            pruner=args.pruner,
            warmup_trials=args.warmup_trials,
            seed=args.seed,
            progress_bar=not args.quiet,
            keep_study_settings=args.keep_study_settings,
        )
    except (TuningError, UnknownEnvironmentError, ConfigError) as error:
        raise CommandError(str(error)) from None
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(result.states.items()))
    print(f"study {result.study_name} ({result.storage_url}): {states}")
    print(f"objective: {result.objective.describe()}")
    if result.best_trial is not None:
        averaged = result.best_evaluations_averaged
        fewer = averaged is not None and averaged < args.last_evaluations
        note = f" (the mean of {averaged} evaluation(s) only: its budget made no more)" if fewer else ""
        print(f"best: trial {result.best_trial}, value {result.best_value:.4g}{note}")
    for path in result.reports:
        print(f"wrote {path}")
    if result.interrupted:
        raise KeyboardInterrupt

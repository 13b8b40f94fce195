"""`gymserve plot`: the learning curve of a training run, or several runs compared, as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from gymserve.cli.common import CommandError, check_exists

DESCRIPTION = (
    "Draw training returns, their running mean and the greedy evaluations of RUN_DIR; given several "
    "runs, their mean returns and evaluations on one figure, one colour per run."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="training run directories")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="TEXT",
        help="a run's name in the legend, once per RUN_DIR in order (default: the folder names)",
    )
    parser.add_argument(
        "--out",
        metavar="PNG",
        help="image to write (default: RUN_DIR/learning_curve.png for one run, ./learning_curves.png "
        "for several)",
    )


def run(args: argparse.Namespace) -> None:
    for run_dir in args.run_dirs:
        check_exists(run_dir, "RUN_DIR")
    several = len(args.run_dirs) > 1 or bool(args.label)
    if args.label and len(args.label) != len(args.run_dirs):
        raise CommandError(f"{len(args.label)} --label for {len(args.run_dirs)} RUN_DIRs: give one per run")
    from gymserve.agents.training.plots import COMPARISON_FILE, plot_comparison, plot_learning_curve

    try:
        if several:
            labels = args.label or [Path(run_dir).name for run_dir in args.run_dirs]
            path = plot_comparison(args.run_dirs, labels, args.out or COMPARISON_FILE)
        else:
            path = plot_learning_curve(args.run_dirs[0], args.out)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"learning {'curves' if several else 'curve'} written to {path}")

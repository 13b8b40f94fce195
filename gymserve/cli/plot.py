"""`gymserve plot`: the learning curve of a training run as a PNG."""

from __future__ import annotations

import argparse

from gymserve.cli.common import CommandError, check_exists

DESCRIPTION = "Draw training returns, their running mean and the greedy evaluations of RUN_DIR."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory")
    parser.add_argument("--out", metavar="PNG", help="image to write (default: RUN_DIR/learning_curve.png)")


def run(args: argparse.Namespace) -> None:
    check_exists(args.run_dir, "RUN_DIR")
    from gymserve.agents.training.plots import plot_learning_curve

    try:
        path = plot_learning_curve(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"learning curve written to {path}")

"""The `gymserve` command: a thin layer over the library, one module per subcommand.

Each command module (`gymserve/cli/<module>.py`) has a `DESCRIPTION`, optionally an `EPILOG`,
`add_arguments(parser)` and `run(args)`; `COMMANDS` lists them. Only the module of the command
being run is imported, and its heavy imports (TensorFlow above all) wait inside `run` until the
arguments are checked, so `--help` and user mistakes answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import gymserve
from gymserve.cli.common import CommandError
from gymserve.common.extras import MissingExtraError, missing_extra


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # under gymserve.cli
    summary: str  # its line in `gymserve --help`

    def load(self) -> ModuleType:
        return importlib.import_module(f"gymserve.cli.{self.module}")


COMMANDS = (
    Command("train", "train", "train a policy with an algorithm; rerun the same command to resume"),
    Command("config", "config", "print the config `train` would use, with each field's source and meaning"),
    Command("tune", "tune", "search an algorithm's hyperparameters with Optuna; rerun to add trials"),
    Command("eval", "eval", "evaluate a policy: AverageReturn and AverageEpisodeLength"),
    Command("plot", "plot", "draw the learning curve of a training run to a PNG"),
    Command("play", "play", "play episodes with a policy and print their return and length"),
    Command("export", "export", "export a trained policy to SavedModel and ONNX"),
    Command("serve", "serve", "serve exported policies over gRPC"),
    Command("query", "query", "ask a policy server for one action and print it"),
    Command("demo", "demo", "serve the pretrained policies over gRPC, play them through it, print returns"),
)


class _Parser(argparse.ArgumentParser):
    """Reports a mistake in one line naming --help, rather than under the whole usage."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `gymserve` parser; only `command`'s subparser gets its arguments (its module is imported)."""
    parser = _Parser(
        prog="gymserve",
        description="Train reinforcement-learning policies on Gymnasium environments, export them to "
        "SavedModel and ONNX, and serve them over gRPC.",
    )
    parser.add_argument("--version", action="version", version=f"gymserve {gymserve.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in COMMANDS:
        if entry.name != command:
            subparsers.add_parser(entry.name, help=entry.summary)
            continue
        module = entry.load()
        subparser = subparsers.add_parser(
            entry.name,
            help=entry.summary,
            description=module.DESCRIPTION,
            epilog=getattr(module, "EPILOG", None),
        )
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((word for word in argv if not word.startswith("-")), None)
    try:
        args = build_parser(command).parse_args(argv)
        status = args.run(args)
    except CommandError as error:
        print(f"gymserve {command}: error: {error}", file=sys.stderr)
        return 2
    except MissingExtraError as error:
        print(error, file=sys.stderr)
        return 1
    except ModuleNotFoundError as error:
        missing = missing_extra(error, f"gymserve {command}")
        if missing is None:
            raise
        print(missing, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gymserve {command}: interrupted", file=sys.stderr)
        return 130
    return status or 0

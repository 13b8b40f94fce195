"""What several commands share: the user-mistake error, cheap checks, action-mode flags, old flag names.

The checks here import nothing heavy, so a command runs them all before it imports TensorFlow
and reports a mistake in a fraction of a second.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym

import gymserve
from gymserve.common.extras import require
from gymserve.policies import ActionMode

CLIENT_ENVIRONMENT_HELP = "the bearer token is read from GYMSERVE_AUTH_TOKEN, a TLS CA from GYMSERVE_TLS_CA"
VIDEO_SUFFIXES = (".mp4", ".gif")  # what write_video films


class CommandError(Exception):
    """A user mistake, reported as one line on stderr with exit status 2."""


class DeprecatedFlag(argparse.Action):
    """An old flag name: sets what `replacement` sets, after a one-line warning on stderr."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, **options: object):
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **options)
        self.replacement = replacement

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(
            f"{parser.prog}: warning: {option_string} is deprecated; use {self.replacement}", file=sys.stderr
        )
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def add_action_mode_arguments(parser: argparse.ArgumentParser, stochastic_flag: bool) -> None:
    """`--mode` and `--epsilon`, the same for every command that acts (and the old `--stochastic`)."""
    modes = [mode.value for mode in ActionMode]
    parser.add_argument(
        "--mode",
        type=_action_mode,
        default=ActionMode.GREEDY,
        metavar="{" + ",".join(modes) + "}",
        help="how the policy picks its actions (default: greedy)",
    )
    parser.add_argument(
        "--epsilon",
        type=float,
        metavar="P",
        help=f"probability of a uniform random action, with --mode {ActionMode.EPSILON_GREEDY.value}",
    )
    if stochastic_flag:
        parser.add_argument(
            "--stochastic",
            action=DeprecatedFlag,
            dest="mode",
            nargs=0,
            const=ActionMode.STOCHASTIC,
            replacement=f"--mode {ActionMode.STOCHASTIC.value}",
        )


def _action_mode(text: str) -> ActionMode:
    for mode in ActionMode:
        if mode.value == text:
            return mode
    choices = ", ".join(mode.value for mode in ActionMode)
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})")


def check_action_mode(args: argparse.Namespace) -> None:
    """`--epsilon` goes with epsilon-greedy mode and nothing else, as a probability."""
    epsilon_greedy = f"--mode {ActionMode.EPSILON_GREEDY.value}"
    if args.mode is ActionMode.EPSILON_GREEDY and args.epsilon is None:
        raise CommandError(f"{epsilon_greedy} needs --epsilon P, the probability of a random action")
    if args.mode is not ActionMode.EPSILON_GREEDY and args.epsilon is not None:
        raise CommandError(f"--epsilon applies only to {epsilon_greedy}, not --mode {args.mode.value}")
    if args.epsilon is not None and not 0.0 <= args.epsilon <= 1.0:
        raise CommandError(f"--epsilon must be from 0 to 1, got {args.epsilon}")


def check_env_id(env_id: str) -> None:
    """Refuse an id Gymnasium's registry does not know, without making the environment."""
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        known = ", ".join(gymserve.envs.env_ids())
        raise CommandError(
            f"cannot make environment {env_id!r}: {error} (gymserve environments: {known})"
        ) from None


def make_env(env_id: str, **options: object) -> gym.Env:
    check_env_id(env_id)
    try:
        return gym.make(env_id, **options)
    except gym.error.Error as error:
        raise CommandError(f"cannot make environment {env_id!r}: {error}") from None


def check_exists(path: str | None, what: str) -> None:
    """Refuse a path that names nothing; `what` is the argument that gave it (RUN_DIR, --config)."""
    if path is not None and not Path(path).exists():
        raise CommandError(f"{path}: no such file or directory ({what})")


def check_at_least_one(value: int, flag: str) -> None:
    if value < 1:
        raise CommandError(f"{flag} must be at least 1, got {value}")


def import_quietly(module: str, command: str, *, optional: bool = False) -> None:
    """Import TensorFlow or pybullet without the banners their native code prints (CUDA probing, build
    time). A missing `module` is a `MissingExtraError` naming its extra, or skipped when `optional`."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if module in sys.modules or (optional and importlib.util.find_spec(module) is None):
        return
    with _native_output_discarded():
        require(module, f"gymserve {command}")


@contextlib.contextmanager
def _native_output_discarded() -> Iterator[None]:
    """Send what native code writes to stdout and stderr to /dev/null for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in (*saved, devnull):
            os.close(descriptor)

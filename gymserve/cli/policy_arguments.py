"""Which policy `play` and `eval` run, and in which environment: a run, an export or a baseline."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gymserve.cli.common import CommandError, check_env_id, check_exists, import_quietly

if TYPE_CHECKING:
    import gymnasium as gym

    from gymserve.agents.training.saved_policies import SavedPolicy
    from gymserve.policies import Policy

BASELINES = ("random", "pretrained")


def add_policy_arguments(parser: argparse.ArgumentParser, remote: bool) -> None:
    parser.add_argument(
        "policy_dir",
        nargs="?",
        metavar="RUN_DIR",
        help="a training run directory or a policy export (instead of --policy)",
    )
    served = "; with --remote, the name of the served policy" if remote else ""
    parser.add_argument(
        "--policy",
        help="'random' for uniform random actions, 'pretrained' for the pretrained policy of --env, or a "
        f"run directory or export{served}",
    )
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--env",
        help="environment id, e.g. gymserve/Minitaur-v0 (default: the one a run or export was trained on)",
    )
    parser.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="run a saved policy in --env although it was trained on another environment with the same "
        "spaces",
    )


def add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which checkpoint of a training run to use (default: %(default)s)",
    )


def saved_policy_path(args: argparse.Namespace) -> str | None:
    """The run directory or export named by RUN_DIR or --policy DIR, checked cheaply; None for the
    baselines (--policy random or pretrained, which need --env)."""
    if args.policy_dir and args.policy is not None:
        raise CommandError(f"give either RUN_DIR {args.policy_dir} or --policy {args.policy}, not both")
    if args.env is not None:
        check_env_id(args.env)
    path = args.policy_dir or (args.policy if args.policy not in (None, *BASELINES) else None)
    if path is None:
        if args.env is None:
            raise CommandError("give a RUN_DIR, or --env with --policy random|pretrained|DIR")
        return None
    check_exists(path, "RUN_DIR" if args.policy_dir else "--policy")
    return path


def load_saved_policy(path: str, args: argparse.Namespace) -> SavedPolicy:
    """The policy at `path` (a checked `saved_policy_path`), checked against --env."""
    import_quietly("tensorflow", args.command, optional=True)
    import_quietly("pybullet", args.command, optional=True)
    from gymserve.agents.training.runs import UnknownEnvironmentError
    from gymserve.agents.training.saved_policies import SavedPolicyError, load_saved_policy
    from gymserve.policies.space_match import SpaceMismatchError

    try:
        return load_saved_policy(path, args.checkpoint, args.env, args.allow_env_mismatch)
    except (SavedPolicyError, UnknownEnvironmentError, SpaceMismatchError) as error:
        raise CommandError(str(error)) from None


def baseline_policy(name: str | None, env: gym.Env, seed: int) -> Policy:
    """A uniform random policy (the default), or the pretrained policy of `env`."""
    from gymserve.policies import PolicyLoadError, RandomPolicy, load
    from gymserve.pretrained import pretrained_policy_for_env

    if name in (None, "random"):
        return RandomPolicy(env.observation_space, env.action_space, seed=seed)
    try:
        return load(pretrained_policy_for_env(env.spec.id).path, seed=seed)
    except (LookupError, PolicyLoadError) as error:
        raise CommandError(str(error)) from None

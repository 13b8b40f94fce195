"""`gymserve config`: the training config `train` would use, each field with its value, source and meaning.

Also the arguments that resolve a config, which `train` shares.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gymserve.agents.training.registry import ALGORITHMS
from gymserve.cli.common import CommandError, check_env_id, check_exists, import_quietly
from gymserve.cli.config_flags import AlgorithmChoice, add_config_flags, config_overrides

if TYPE_CHECKING:
    from gymserve.agents.training.config import ResolvedConfig

DESCRIPTION = (
    "Resolve the training config of ALGORITHM on an environment as `gymserve train` does (the algorithm's "
    "defaults < the shipped config for the env < --config FILE < flags) and print every field with its "
    "value, its source and its description. Without --env, no shipped per-env config applies."
)


def add_algorithm_arguments(parser: argparse.ArgumentParser, env_required: bool = True) -> None:
    """ALGORITHM, with the registry's names as its choices, and --env."""
    parser.add_argument(
        "algorithm",
        choices=tuple(ALGORITHMS),
        metavar="ALGORITHM",
        help=", ".join(ALGORITHMS),
        action=AlgorithmChoice,
    )
    parser.add_argument(
        "--env",
        required=env_required,
        help="environment id, e.g. gymserve/CartPole-v1"
        + ("" if env_required else " (default: none, so no shipped per-env config applies)"),
    )


def add_arguments(parser: argparse.ArgumentParser, env_required: bool = False) -> None:
    add_algorithm_arguments(parser, env_required)
    parser.add_argument(
        "--config", metavar="FILE", help="JSON object of config fields over the shipped defaults for the env"
    )
    add_config_flags(parser)


def check_config_arguments(args: argparse.Namespace) -> None:
    """The mistakes in ALGORITHM, --env and --config found without importing TensorFlow."""
    if args.env is not None:
        check_env_id(args.env)
    check_exists(args.config, "--config")


def resolved_config(args: argparse.Namespace, run_dir: str | None) -> ResolvedConfig:
    """The config `train` would use: shipped defaults < --config file < flags (or a resumed run's)."""
    import_quietly("tensorflow", args.command)
    from gymserve.agents import UnknownAlgorithmError
    from gymserve.agents.training.config import ConfigError, resolve_config
    from gymserve.agents.training.registry import algorithm_class
    from gymserve.agents.training.runs import run_config

    try:
        overrides, sources = config_overrides(args)
    except ValueError as error:
        raise CommandError(str(error)) from None
    try:
        if run_dir is not None:
            return run_config(args.algorithm, args.env, run_dir, args.config, overrides, sources)
        config_class = algorithm_class(args.algorithm).config_class
        return resolve_config(config_class, args.algorithm, args.env, args.config, overrides, sources)
    except (UnknownAlgorithmError, ConfigError) as error:
        raise CommandError(str(error)) from None


def run(args: argparse.Namespace) -> None:
    check_config_arguments(args)
    print(resolved_config(args, run_dir=None).describe())

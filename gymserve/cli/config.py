"""`gymserve config`: the training config `train` would use, each field with its value, source and meaning.

Also the arguments that resolve a config, which `train` shares.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gymserve.agents.training.registry import ALGORITHMS
from gymserve.cli.common import CommandError, check_env_id, check_exists, import_quietly

if TYPE_CHECKING:
    from gymserve.agents.training.config import ResolvedConfig

DESCRIPTION = (
    "Resolve the training config of ALGORITHM on an environment as `gymserve train` does (the algorithm's "
    "defaults < the shipped config for the env < --config FILE < flags) and print every field with its "
    "value, its source and its description."
)

# Flags that set one config field each, over the --config file: (flag, type, help).
CONFIG_FLAGS = (
    ("--target-reward", float, "stop once a greedy evaluation reaches it"),
    ("--max-steps", int, "stop after this many environment steps"),
    ("--max-episodes", int, "stop once this many training episodes have ended"),
    ("--seed", int, "seed of the run (default: the config's, 0)"),
    ("--export-every", int, "export the policy each time the step count crosses a multiple of this"),
    ("--export-to", str, "REPO/NAME: write the exports to REPO/NAME/<step>/ (serve with --repository REPO)"),
    ("--export-keep", int, "keep the run's newest K exports, deleting its older ones (default: all)"),
)


def add_algorithm_arguments(parser: argparse.ArgumentParser) -> None:
    """ALGORITHM, with the registry's names as its choices, and --env."""
    parser.add_argument(
        "algorithm", choices=tuple(ALGORITHMS), metavar="ALGORITHM", help=", ".join(ALGORITHMS)
    )
    parser.add_argument("--env", required=True, help="environment id, e.g. gymserve/CartPole-v1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_algorithm_arguments(parser)
    parser.add_argument(
        "--config", metavar="FILE", help="JSON object of config fields over the shipped defaults for the env"
    )
    for flag, kind, help_text in CONFIG_FLAGS:
        parser.add_argument(flag, type=kind, help=help_text)


def check_config_arguments(args: argparse.Namespace) -> None:
    """The mistakes in ALGORITHM, --env and --config found without importing TensorFlow."""
    check_env_id(args.env)
    check_exists(args.config, "--config")


def resolved_config(args: argparse.Namespace, run_dir: str | None) -> ResolvedConfig:
    """The config `train` would use: shipped defaults < --config file < flags (or a resumed run's)."""
    import_quietly("tensorflow", args.command)
    from gymserve.agents import UnknownAlgorithmError
    from gymserve.agents.training.config import ConfigError, resolve_config
    from gymserve.agents.training.registry import algorithm_class
    from gymserve.agents.training.runs import run_config

    overrides, sources = {}, {}
    for flag, _, _ in CONFIG_FLAGS:
        name = flag.removeprefix("--").replace("-", "_")
        if getattr(args, name) is not None:
            overrides[name], sources[name] = getattr(args, name), flag
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

"""`gymserve train`: train a policy into a run directory; rerunning the same command resumes it."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.cli.common import CommandError, import_quietly
from gymserve.cli.config import add_arguments as add_config_arguments
from gymserve.cli.config import check_config_arguments, resolved_config

if TYPE_CHECKING:
    from gymserve.agents.distributed import DistributedConfig
    from gymserve.agents.training.config import ResolvedConfig

DESCRIPTION = (
    "Train ALGORITHM on an environment into RUN_DIR: greedy evaluations, 'latest' and 'best' checkpoints, "
    "history.csv and TensorBoard summaries; with --export-every and --export-to, numbered exports of the "
    "policy as it trains. Rerunning with the same --out resumes the run. Once the arguments are checked, "
    "the config fields that differ from the algorithm's defaults are printed; RUN_DIR/run.json keeps them "
    "all."
)
TRAINING_LOGGER = "gymserve.agents.training"
EPILOG = (
    "Hyperparameters: `gymserve config ALGORITHM --env ID` lists every field with its value, where the "
    "value comes from and what it does; set them in a --config file or with the field flags above."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, env_required=True)
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory to create or resume")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    actors = parser.add_argument_group(
        "Ray actors", "collect with actor processes, on this machine or a Ray cluster (needs gymserve[ray])"
    )
    actors.add_argument(
        "--actors", type=int, metavar="N", help="collector processes sharing the config's num_envs envs"
    )
    actors.add_argument(
        "--ray-address",
        metavar="auto|HOST:PORT",
        help="a running Ray cluster to spread the actors over (default: start Ray on this machine)",
    )
    actors.add_argument(
        "--num-cpus-per-actor", type=float, default=1.0, help="CPUs Ray reserves per actor (default: 1)"
    )
    actors.add_argument(
        "--weight-sync-interval",
        type=int,
        default=1,
        help="off-policy: learner updates between weight publications to the actors (default: 1)",
    )


def run(args: argparse.Namespace) -> int | None:
    """Train; after SIGINT or SIGTERM (a checkpoint saved), exit 128 + the signal number as shells
    expect of an interrupted command: 130 for Ctrl-C, 143 for SIGTERM."""
    check_config_arguments(args)
    distributed = _distributed_config(args)
    import_quietly("pybullet", "train", optional=True)
    _check_action_space(args.algorithm, args.env)
    resolved = resolved_config(args, args.out)
    from gymserve.agents.training.preflight import OutputPathError, check_output_paths

    try:
        check_output_paths(args.out, resolved.config)  # before TensorFlow loads and the config prints
    except OutputPathError as error:
        raise CommandError(str(error)) from None
    from gymserve.agents import RunMismatchError, UnknownEnvironmentError, train
    from gymserve.agents.algorithm import UnsupportedActionSpaceError
    from gymserve.agents.distributed import MissingRayError, UnsupportedDistributedTrainingError

    print(f"{args.algorithm} on {args.env}, config:")
    print(_changed_fields(resolved))
    print(f"(the others are at their defaults: gymserve config {args.algorithm} --env {args.env} lists all)")
    training_log = logging.getLogger(TRAINING_LOGGER)
    notices = logging.StreamHandler(sys.stderr)
    notices.addFilter(_is_notice)
    # On the root logger: absl, logging during the first export, calls logging.basicConfig, which would
    # add a second stderr handler (every later notice printed twice) to a root logger without one.
    logging.root.addHandler(notices)
    level = training_log.level
    training_log.setLevel(logging.INFO)
    try:
        result = train(
            args.algorithm, args.env, args.out, resolved, progress_bar=not args.quiet, distributed=distributed
        )
    except (
        UnknownEnvironmentError,
        UnsupportedActionSpaceError,
        RunMismatchError,
        MissingRayError,
        UnsupportedDistributedTrainingError,
    ) as error:
        raise CommandError(str(error)) from None
    finally:
        logging.root.removeHandler(notices)
        training_log.setLevel(level)
    state = result.state
    if result.started_at_step > 0 and state.total_steps == result.started_at_step:
        print(
            f"{args.out} had already stopped at step {state.total_steps} ({result.stop_reason}): nothing was "
            "trained or exported; give a new --out to train again, or raise --max-steps or "
            "--target-reward to go on with this run",
            file=sys.stderr,
        )
    print(f"stopped at step {state.total_steps} ({result.stop_reason}) after {state.wall_time:.1f} s")
    if result.gradient_steps == 0 and result.interrupt_signal is None:
        print(
            "no gradient step was taken: the policy is untrained (learning starts once the replay holds "
            "learning_starts transitions)"
        )
    if state.evaluation_return is not None:
        best = f"{state.best_evaluation_return:.2f} at step {state.best_evaluation_step}"
        print(f"AverageReturn {state.evaluation_return:.2f}; best {best}")
    print(f"run directory: {result.run_dir}")
    _print_exports(result.run_dir, resolved)
    if result.interrupt_signal is not None:
        print("checkpoint saved: rerun the same command to resume")
        return 128 + result.interrupt_signal
    return None


def _is_notice(record: logging.LogRecord) -> bool:
    """The training loop's notices (resume, exports, interrupts), and any library's warnings."""
    return record.levelno >= logging.WARNING or record.name.startswith(TRAINING_LOGGER)


def _print_exports(run_dir: Path, resolved: ResolvedConfig) -> None:
    """Where the exports while training went, and how to serve them."""
    from gymserve.agents.training.periodic_exports import exported_versions

    exported = exported_versions(run_dir, resolved.config)
    if exported is None:
        return
    directory, versions = exported
    if not versions:
        print(f"exports: none yet in {directory} (one every {resolved.config.export_every} steps)")
        return
    listed = ", ".join(str(version) for version in versions)
    serve = f"gymserve serve --repository {directory.parent}"
    print(f"exports: {directory} versions {listed}; {serve} serves them")


def _distributed_config(args: argparse.Namespace) -> DistributedConfig | None:
    """The actors' settings from the flags, None without --actors."""
    if args.actors is None:
        if args.ray_address is not None:
            raise CommandError("--ray-address needs --actors N")
        return None
    from pydantic import ValidationError

    from gymserve.agents.distributed import DistributedConfig

    try:
        return DistributedConfig(
            actors=args.actors,
            ray_address=args.ray_address,
            num_cpus_per_actor=args.num_cpus_per_actor,
            weight_sync_interval=args.weight_sync_interval,
        )
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise CommandError(f"invalid actor settings: {problems}") from None


def _check_action_space(algorithm: str, env_id: str) -> None:
    """Refuse an environment whose spaces the algorithm cannot learn in, before any config is printed.

    The registry names each algorithm's action spaces, so this needs the env but not TensorFlow."""
    import gymnasium as gym

    from gymserve.agents.algorithm import UnsupportedActionSpaceError, check_spaces
    from gymserve.agents.training.registry import REGISTRY
    from gymserve.agents.training.runs import UnknownEnvironmentError, environment_spaces

    action_spaces = tuple(getattr(gym.spaces, kind) for kind in REGISTRY[algorithm].action_kinds)
    try:
        check_spaces(algorithm, action_spaces, *environment_spaces(env_id))
    except (UnknownEnvironmentError, UnsupportedActionSpaceError) as error:
        raise CommandError(str(error)) from None


def _changed_fields(resolved: ResolvedConfig) -> str:
    """The `name = value  (source)` lines of the fields whose value is not the algorithm's default:
    the full listing, with descriptions, runs to some 90 lines, most of them defaults."""
    config = resolved.config
    return "\n".join(
        resolved.field_line(name)
        for name, field in type(config).model_fields.items()
        if getattr(config, name) != field.get_default(call_default_factory=True)
    )

"""The `gymserve` command: a thin layer over the library, one subcommand per job.

Each subcommand is a pair of functions, `_add_<name>_command` (its arguments and help) and
`_run_<name>` (the work, delegated to the library), listed in `COMMANDS`. Heavy modules are
imported inside the `_run_` functions so `gymserve --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import gymnasium as gym

import gymserve

if TYPE_CHECKING:
    from gymserve.agents.training.config import ResolvedConfig


class CommandError(Exception):
    """A user mistake, reported as one line on stderr with exit status 2."""


def _add_play_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play",
        help="play episodes with a policy and print their return and length",
        description="Play episodes of an environment with a policy, print each episode's return and "
        "length, and optionally film the first one.",
    )
    _add_policy_arguments(parser, remote=True)
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (default: %(default)s)"
    )
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    parser.add_argument("--video", metavar="FILE", help="film the first episode to FILE (.mp4 or .gif)")
    parser.add_argument(
        "--remote",
        metavar="ADDRESS",
        help="ask the policy server at ADDRESS (HOST:PORT) for every action; --policy names the served "
        f"policy ({_CLIENT_ENVIRONMENT_HELP})",
    )
    parser.set_defaults(run=_run_play)


def _run_play(args: argparse.Namespace) -> None:
    from gymserve.policies.episodes import run_episode, write_video

    _check_episodes(args.episodes)
    if args.remote:
        if args.policy_dir:
            raise CommandError(f"play either RUN_DIR {args.policy_dir} or --remote {args.remote}, not both")
        if args.env is None or args.policy is None:
            raise CommandError("--remote needs --env and --policy NAME (the served policy)")
        env_id = args.env
    else:
        saved = _saved_policy(args)
        env_id = saved.env_id if saved else args.env
    env = _make_env(env_id, render_mode="rgb_array" if args.video else None)
    if args.remote:
        policy = _remote_policy(args.remote, args.policy, env)
    else:
        policy = saved.policy if saved else _baseline_policy(args.policy, env, args.seed)
    mode = "stochastic" if args.stochastic else "greedy"
    try:
        for index in range(args.episodes):
            film = bool(args.video) and index == 0
            episode = run_episode(env, policy, mode, seed=args.seed + index, record_frames=film)
            print(f"episode {index + 1}: return {episode.total_return:.3f}, length {episode.length}")
            if film:
                fps = env.metadata.get("render_fps", 30)
                print(f"video written to {write_video(episode.frames, args.video, fps)}")
    finally:
        env.close()


_BASELINES = ("random", "pretrained")


def _add_policy_arguments(parser: argparse.ArgumentParser, remote: bool) -> None:
    """Which policy `play` and `eval` run, and in which environment."""
    parser.add_argument(
        "policy_dir",
        nargs="?",
        metavar="RUN_DIR",
        help="a training run directory or a policy export (instead of --policy)",
    )
    served = "; with --remote, the name of the served policy" if remote else ""
    parser.add_argument(
        "--policy",
        help="'random' for uniform random actions, 'pretrained' for the policy bundled for --env, or a run "
        f"directory or export{served}",
    )
    _add_checkpoint_argument(parser)
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


def _saved_policy(args: argparse.Namespace) -> gymserve.agents.training.saved_policies.SavedPolicy | None:
    """The run directory or export named by RUN_DIR or --policy DIR, checked against --env; None for
    the baselines (--policy random or pretrained, which need --env)."""
    from gymserve.agents.training.runs import UnknownEnvironmentError
    from gymserve.agents.training.saved_policies import SavedPolicyError, load_saved_policy
    from gymserve.policies.space_match import SpaceMismatchError

    if args.policy_dir and args.policy is not None:
        raise CommandError(f"give either RUN_DIR {args.policy_dir} or --policy {args.policy}, not both")
    path = args.policy_dir or (args.policy if args.policy not in (None, *_BASELINES) else None)
    if path is None:
        if args.env is None:
            raise CommandError("give a RUN_DIR, or --env with --policy random|pretrained|DIR")
        return None
    try:
        return load_saved_policy(path, args.checkpoint, args.env, args.allow_env_mismatch)
    except (SavedPolicyError, UnknownEnvironmentError, SpaceMismatchError) as error:
        raise CommandError(str(error)) from None


def _baseline_policy(name: str | None, env: gym.Env, seed: int) -> gymserve.policies.Policy:
    """A uniform random policy (the default), or the policy bundled for `env`."""
    from gymserve.policies import PolicyLoadError, RandomPolicy, load
    from gymserve.pretrained import bundled_policy_for_env

    if name in (None, "random"):
        return RandomPolicy(env.observation_space, env.action_space, seed=seed)
    try:
        return load(bundled_policy_for_env(env.spec.id).path, seed=seed)
    except (LookupError, PolicyLoadError) as error:
        raise CommandError(str(error)) from None


def _check_episodes(episodes: int) -> None:
    if episodes < 1:
        raise CommandError(f"--episodes must be at least 1, got {episodes}")


def _add_checkpoint_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        choices=("best", "latest"),
        default="best",
        help="which checkpoint of a training run to use (default: %(default)s)",
    )


def _add_train_command(subparsers: argparse._SubParsersAction) -> None:
    from gymserve.agents.training.registry import ALGORITHMS

    parser = subparsers.add_parser(
        "train",
        help="train a policy with an algorithm; rerun the same command to resume",
        description="Train ALGORITHM on an environment into RUN_DIR: greedy evaluations, 'latest' and 'best' "
        "checkpoints, history.csv and TensorBoard summaries; with --export-every and --export-to, numbered "
        "exports of the policy as it trains. Rerunning with the same --out resumes the run. "
        "The resolved config is printed first and kept in RUN_DIR/run.json.",
        epilog="Hyperparameters: `gymserve config ALGORITHM --env ID` lists every field with its value, "
        "where the value comes from and what it does; set them in a --config file.",
    )
    _add_config_arguments(parser, ALGORITHMS)
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
    parser.set_defaults(run=_run_train)


def _distributed_config(args: argparse.Namespace) -> gymserve.agents.distributed.DistributedConfig | None:
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


def _add_config_arguments(parser: argparse.ArgumentParser, algorithms: dict[str, str]) -> None:
    """The arguments that resolve a training config, shared by `train` and `config`."""
    parser.add_argument(
        "algorithm", choices=tuple(algorithms), metavar="ALGORITHM", help=", ".join(algorithms)
    )
    parser.add_argument("--env", required=True, help="environment id, e.g. gymserve/CartPole-v1")
    parser.add_argument(
        "--config", metavar="FILE", help="JSON object of config fields over the shipped defaults for the env"
    )
    for flag, kind, help_text in _CONFIG_FLAGS:
        parser.add_argument(flag, type=kind, help=help_text)


# Flags that set one config field each, over the --config file: (flag, type, help).
_CONFIG_FLAGS = (
    ("--target-reward", float, "stop once a greedy evaluation reaches it"),
    ("--max-steps", int, "stop after this many environment steps"),
    ("--max-episodes", int, "stop once this many training episodes have ended"),
    ("--seed", int, "seed of the run (default: the config's, 0)"),
    ("--export-every", int, "export the policy each time the step count crosses a multiple of this"),
    ("--export-to", str, "REPO/NAME: write the exports to REPO/NAME/<step>/ (serve with --repository REPO)"),
    ("--export-keep", int, "keep the run's newest K exports, deleting its older ones (default: all)"),
)


def _config_overrides(args: argparse.Namespace) -> tuple[dict[str, object], dict[str, str]]:
    """The config fields set by flags, and the flag that set each one."""
    overrides, sources = {}, {}
    for flag, _, _ in _CONFIG_FLAGS:
        name = flag.removeprefix("--").replace("-", "_")
        if getattr(args, name) is not None:
            overrides[name], sources[name] = getattr(args, name), flag
    return overrides, sources


def _resolved_config(args: argparse.Namespace, run_dir: str | None) -> ResolvedConfig:
    """The config `train` would use: shipped defaults < --config file < flags (or a resumed run's)."""
    from gymserve.agents import UnknownAlgorithmError
    from gymserve.agents.training.config import ConfigError, resolve_config
    from gymserve.agents.training.registry import algorithm_class
    from gymserve.agents.training.runs import run_config

    overrides, sources = _config_overrides(args)
    try:
        if run_dir is not None:
            return run_config(args.algorithm, args.env, run_dir, args.config, overrides, sources)
        config_class = algorithm_class(args.algorithm).config_class
        return resolve_config(config_class, args.algorithm, args.env, args.config, overrides, sources)
    except (UnknownAlgorithmError, ConfigError) as error:
        raise CommandError(str(error)) from None


def _run_train(args: argparse.Namespace) -> int | None:
    """Train; after SIGINT or SIGTERM (a checkpoint saved), exit 128 + the signal number as shells
    expect of an interrupted command: 130 for Ctrl-C, 143 for SIGTERM."""
    from gymserve.agents import RunMismatchError, UnknownAlgorithmError, UnknownEnvironmentError, train
    from gymserve.agents.algorithm import UnsupportedActionSpaceError
    from gymserve.agents.distributed import MissingRayError, UnsupportedDistributedTrainingError

    distributed = _distributed_config(args)
    resolved = _resolved_config(args, args.out)
    print(f"{args.algorithm} on {args.env}, config:")
    print(resolved.describe())
    training_log = logging.getLogger("gymserve.agents.training")  # resume and interrupt notices
    notices = logging.StreamHandler(sys.stderr)
    training_log.addHandler(notices)
    level, training_log.level = training_log.level, logging.INFO
    try:
        result = train(
            args.algorithm, args.env, args.out, resolved, progress_bar=not args.quiet, distributed=distributed
        )
    except (
        UnknownAlgorithmError,
        UnknownEnvironmentError,
        UnsupportedActionSpaceError,
        RunMismatchError,
        MissingRayError,
        UnsupportedDistributedTrainingError,
    ) as error:
        raise CommandError(str(error)) from None
    finally:
        training_log.removeHandler(notices)
        training_log.setLevel(level)
    state = result.state
    print(f"stopped at step {state.total_steps} ({result.stop_reason}) after {state.wall_time:.1f} s")
    if state.evaluation_return is not None:
        best = f"{state.best_evaluation_return:.2f} at step {state.best_evaluation_step}"
        print(f"AverageReturn {state.evaluation_return:.2f}; best {best}")
    print(f"run directory: {result.run_dir}")
    if result.interrupt_signal is not None:
        print("checkpoint saved: rerun the same command to resume")
        return 128 + result.interrupt_signal
    return None


def _add_config_command(subparsers: argparse._SubParsersAction) -> None:
    from gymserve.agents.training.registry import ALGORITHMS

    parser = subparsers.add_parser(
        "config",
        help="print the config `train` would use, with each field's source and meaning",
        description="Resolve the training config of ALGORITHM on an environment as `gymserve train` does "
        "(the algorithm's defaults < the shipped config for the env < --config FILE < flags) and print "
        "every field with its value, its source and its description.",
    )
    _add_config_arguments(parser, ALGORITHMS)
    parser.set_defaults(run=_run_config)


def _run_config(args: argparse.Namespace) -> None:
    print(_resolved_config(args, run_dir=None).describe())


def _add_tune_command(subparsers: argparse._SubParsersAction) -> None:
    from gymserve.agents.training.registry import ALGORITHMS

    parser = subparsers.add_parser(
        "tune",
        help="search an algorithm's hyperparameters with Optuna; rerun the same command to add trials",
        description="Run an Optuna study over ALGORITHM's config: each trial trains in its own process into "
        "OUT/trials/NUMBER, reports its greedy evaluations and is pruned by the median rule. The study lives "
        "in OUT/study.db or at --storage, so several processes or machines can share it. Writes "
        "best_config.json (for gymserve train --config), trials.csv and PNG plots to OUT. Needs "
        'pip install "gymserve[tune]".',
    )
    parser.add_argument(
        "algorithm", choices=tuple(ALGORITHMS), metavar="ALGORITHM", help=", ".join(ALGORITHMS)
    )
    parser.add_argument("--env", required=True, help="environment id, e.g. gymserve/CartPole-v1")
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
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=_run_tune)


def _run_tune(args: argparse.Namespace) -> None:
    from gymserve.agents import UnknownEnvironmentError
    from gymserve.agents.training.config import ConfigError

    try:
        from gymserve.tuning import TuningError, tune

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
        )
    except (TuningError, UnknownEnvironmentError, ConfigError) as error:
        raise CommandError(str(error)) from None
    states = ", ".join(f"{count} {state.lower()}" for state, count in sorted(result.states.items()))
    print(f"study {result.study_name} ({result.storage_url}): {states}")
    print(f"objective: {result.objective.describe()}")
    if result.best_trial is not None:
        print(f"best: trial {result.best_trial}, value {result.best_value:.4g}")
    for path in result.reports:
        print(f"wrote {path}")
    if result.interrupted:
        raise KeyboardInterrupt


def _add_eval_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a policy: AverageReturn and AverageEpisodeLength",
        description="Play episodes side by side with the policy of a training run, an export, the bundled "
        "policy or random actions, and print their AverageReturn (with its standard deviation over "
        "episodes) and AverageEpisodeLength.",
    )
    _add_policy_arguments(parser, remote=False)
    parser.add_argument("--episodes", type=int, default=20, help="number of episodes (default: %(default)s)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    parser.add_argument("--seed", type=int, default=0, help="seed of episode 1 (default: %(default)s)")
    parser.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> None:
    from gymserve.policies.episodes import evaluate

    _check_episodes(args.episodes)
    if args.policy_dir is None and args.policy is None:
        raise CommandError("give a RUN_DIR, or --env with --policy random|pretrained|DIR")
    saved = _saved_policy(args)
    if saved is not None:
        policy, env_id, description = saved.policy, saved.env_id, saved.description
        name = args.policy_dir or args.policy
    else:
        env = _make_env(args.env)
        env.close()
        policy, env_id = _baseline_policy(args.policy, env, args.seed), args.env
        name, description = args.policy, "uniform random actions" if args.policy == "random" else "bundled"
    mode = "stochastic" if args.stochastic else "greedy"
    evaluation = evaluate(policy, env_id, args.episodes, mode, seed=args.seed)
    print(f"{name} ({description}) on {env_id}, {args.episodes} {mode} episodes")
    print(f"AverageReturn: {evaluation.average_return:.3f} ± {evaluation.return_std:.3f}")
    print(f"AverageEpisodeLength: {evaluation.average_episode_length:.1f}")


def _add_plot_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot",
        help="draw the learning curve of a training run to a PNG",
        description="Draw training returns, their running mean and the greedy evaluations of RUN_DIR.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a training run directory")
    parser.add_argument("--out", metavar="PNG", help="image to write (default: RUN_DIR/learning_curve.png)")
    parser.set_defaults(run=_run_plot)


def _run_plot(args: argparse.Namespace) -> None:
    from gymserve.agents.training.plots import plot_learning_curve

    try:
        path = plot_learning_curve(args.run_dir, args.out)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"learning curve written to {path}")


def _add_export_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a trained policy to SavedModel and ONNX",
        description="Export the policy of a training run to a directory holding a SavedModel, an ONNX model "
        "and policy.json (spaces, training info, file hashes), written atomically.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="directory of a `gymserve train` run")
    parser.add_argument("--out", required=True, metavar="DIR", help="export directory to create")
    parser.add_argument(
        "--format",
        default="savedmodel,onnx",
        help="comma-separated formats among savedmodel, onnx (default: %(default)s)",
    )
    _add_checkpoint_argument(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it holds a previous export")
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> None:
    from gymserve.agents import load_trained_policy
    from gymserve.policies import TrainingInfo, export_policy

    try:
        trained = load_trained_policy(args.run_dir, checkpoint=args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        raise CommandError(f"cannot load a trained policy from {args.run_dir}: {error}") from None
    info = TrainingInfo(
        env_id=trained.env_id,
        algorithm=trained.algorithm,
        train_step=trained.train_step,
        evaluation_return=trained.evaluation_return,
    )
    formats = tuple(name.strip() for name in args.format.split(","))
    try:
        metadata = export_policy(trained.policy, args.out, formats, info, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as error:
        raise CommandError(str(error)) from None
    print(f"exported {trained.env_id} ({trained.algorithm}, step {trained.train_step}) to {args.out}")
    for name, digest in metadata.files.items():
        print(f"  {name}  sha256 {digest[:16]}")


_CLIENT_ENVIRONMENT_HELP = "the bearer token is read from GYMSERVE_AUTH_TOKEN, a TLS CA from GYMSERVE_TLS_CA"


def _add_serve_command(subparsers: argparse._SubParsersAction) -> None:
    from gymserve.serving.server.config import DEFAULT_METRICS_ADDRESS, ServerConfig

    parser = subparsers.add_parser(
        "serve",
        help="serve exported policies over gRPC",
        description="Serve exported policies over gRPC (PolicyService, grpc.health.v1, reflection) until "
        "SIGTERM or SIGINT, then drain in-flight calls for the grace period and stop (a second signal exits "
        "at once); SIGHUP rescans the policy directories. Settings come from flags, then "
        "GYMSERVE_<SETTING> environment variables (GYMSERVE_AUTH_TOKEN enables bearer-token auth; health "
        "checks need no token), then --config, then defaults. Per-policy version policies and labels "
        "(policy_settings) are set in the config file. Without policies, the bundled pretrained ones "
        "are served.",
    )
    parser.add_argument(
        "--policy",
        action="append",
        metavar="NAME=PATH",
        help="serve the export (or directory of integer versions) PATH as NAME; repeatable",
    )
    parser.add_argument("--config", metavar="FILE", help=ServerConfig.model_fields["config_file"].description)
    for name, field in ServerConfig.model_fields.items():
        if name in _SERVE_FIELDS_NOT_FLAGS:
            continue
        choices = (
            typing.get_args(field.annotation) if typing.get_origin(field.annotation) is Literal else None
        )
        default = f"default: {field.default}" if field.default is not None else "default: off"
        options: dict = {"help": f"{field.description} ({default})", "choices": choices}
        if name == "metrics_address":
            options.update(nargs="?", const=DEFAULT_METRICS_ADDRESS, metavar="HOST:PORT")
        elif field.annotation in (int, float):
            options["type"] = field.annotation
        parser.add_argument("--" + name.replace("_", "-"), **options)
    parser.set_defaults(run=_run_serve)


# set in the config file or the environment only: secrets stay off command lines, mappings need structure
_SERVE_FIELDS_NOT_FLAGS = frozenset({"config_file", "policies", "policy_settings", "auth_token"})


def _run_serve(args: argparse.Namespace) -> None:
    from gymserve.serving.server.config import ServerConfig, ServerConfigError, load_server_config
    from gymserve.serving.server.logs import configure_logging
    from gymserve.serving.server.policy_server import PolicyServer

    flags = {
        name: getattr(args, name) for name in ServerConfig.model_fields if name not in _SERVE_FIELDS_NOT_FLAGS
    }
    flags["policies"] = _named_paths(args.policy) if args.policy else None
    try:
        config = load_server_config(args.config, flags)
        configure_logging(config.log_level)
        clean = PolicyServer(config).wait_for_shutdown_signal()  # starts it with the handlers in place
    except ServerConfigError as error:
        raise CommandError(str(error)) from None
    if not clean:
        # an RPC thread is stuck (in a policy call, say): exit without waiting for it
        logging.shutdown()
        os._exit(0)


def _named_paths(pairs: list[str]) -> dict[str, str]:
    named = {}
    for pair in pairs:
        name, separator, path = pair.partition("=")
        if not separator or not name or not path:
            raise CommandError(f"--policy {pair!r} is not NAME=PATH")
        if name in named:
            raise CommandError(f"--policy names {name!r} twice")
        named[name] = path
    return named


def _add_query_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query",
        help="ask a policy server for one action and print it",
        description="Send one observation (or a batch) to a policy server and print the action as JSON, with "
        f"the policy version that answered ({_CLIENT_ENVIRONMENT_HELP}).",
    )
    parser.add_argument("address", metavar="ADDRESS", help="HOST:PORT of the server")
    parser.add_argument("--policy", required=True, help="name of the served policy")
    parser.add_argument("--obs", required=True, help="observation as a JSON array, e.g. '[0.01, 0, 0.02, 0]'")
    parser.add_argument("--mode", choices=("greedy", "stochastic", "epsilon_greedy"), default="greedy")
    parser.add_argument("--epsilon", type=float, help="random-action probability in epsilon_greedy mode")
    parser.add_argument("--seed", type=int, help="seed of stochastic choices")
    parser.add_argument("--version", type=int, help="policy version (default: the latest served)")
    parser.add_argument("--distribution", action="store_true", help="also print the distribution parameters")
    parser.set_defaults(run=_run_query)


def _run_query(args: argparse.Namespace) -> None:
    import json

    from gymserve.serving import PolicyServiceError

    try:
        observation = json.loads(args.obs)
    except json.JSONDecodeError as error:
        raise CommandError(f"--obs is not a JSON array: {error}") from None
    with _policy_client(args.address) as client:
        try:
            result = client.act_with_details(
                observation,
                args.policy,
                mode=args.mode,
                epsilon=args.epsilon,
                seed=args.seed,
                version=args.version,
                return_distribution=args.distribution,
            )
        except (PolicyServiceError, ValueError) as error:
            raise CommandError(str(error)) from None
    printed = {"policy": result.policy_name, "version": result.policy_version}
    printed["action"] = result.actions.tolist()
    if args.distribution:
        printed["distribution"] = {name: value.tolist() for name, value in result.distribution.items()}
    print(json.dumps(printed))


def _policy_client(address: str) -> gymserve.serving.PolicyClient:
    from gymserve.serving import PolicyClient

    try:
        return PolicyClient.from_environment(address)
    except ValueError as error:
        raise CommandError(str(error)) from None


def _remote_policy(address: str, name: str, env: gym.Env) -> gymserve.policies.Policy:
    from gymserve.policies.space_match import SpaceMismatchError, check_space_match
    from gymserve.serving import PolicyServiceError
    from gymserve.serving.client.remote_policy import RemotePolicy

    try:
        policy = RemotePolicy(_policy_client(address), name)
        check_space_match(policy, env.observation_space, env.action_space, f"policy {name!r}", env.spec.id)
    except PolicyServiceError as error:
        raise CommandError(f"cannot use policy {name!r} of the server at {address}: {error}") from None
    except SpaceMismatchError as error:
        raise CommandError(str(error)) from None
    return policy


def _add_demo_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="serve the bundled policies over gRPC, play them through it, print returns and latencies",
        description="Start a policy server in this process on a loopback port, play greedy and stochastic "
        "episodes of every bundled policy through it, print a table of returns, episode lengths and "
        "client-side action latencies, film one greedy episode, and stop the server. Without bundled "
        "policies, a CartPole policy is trained first.",
    )
    parser.add_argument(
        "--episodes", type=int, help="episodes per policy and mode (default: 5 for CartPole, 2 for Minitaur)"
    )
    parser.add_argument(
        "--video",
        metavar="FILE",
        help="film a greedy episode to FILE, .mp4 or .gif (default: minitaur.mp4 when the Minitaur policy is "
        "bundled, else no video)",
    )
    parser.add_argument("--no-video", action="store_true", help="film nothing")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: 0, a free one)")
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> None:
    from gymserve.cli.demo import DemoError, format_table, run_demo
    from gymserve.policies import PolicyLoadError

    try:
        result = run_demo(args.episodes, video=args.video, film=not args.no_video, port=args.port)
    except (ValueError, DemoError, PolicyLoadError) as error:
        raise CommandError(str(error)) from None
    print()
    print(format_table(result.rows))
    if result.video is not None:
        print(f"video written to {result.video}")


def _make_env(env_id: str, **kwargs: object) -> gym.Env:
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        known = ", ".join(gymserve.envs.env_ids())
        raise CommandError(
            f"cannot make environment {env_id!r}: {error} (gymserve environments: {known})"
        ) from None


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    _add_train_command,
    _add_config_command,
    _add_tune_command,
    _add_eval_command,
    _add_plot_command,
    _add_play_command,
    _add_export_command,
    _add_serve_command,
    _add_query_command,
    _add_demo_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gymserve",
        description="Train reinforcement-learning policies on Gymnasium environments, export them to "
        "SavedModel and ONNX, and serve them over gRPC.",
    )
    parser.add_argument("--version", action="version", version=f"gymserve {gymserve.__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def _native_modules(args: argparse.Namespace) -> tuple[str, ...]:
    """The libraries a command will load that print start-up banners from native code."""
    plays_saved_policy = args.command == "play" and not args.remote and bool(args.policy_dir or args.policy)
    if args.command in ("train", "config", "tune", "eval", "plot", "export") or (
        plays_saved_policy and args.policy not in _BASELINES
    ):
        return ("pybullet", "tensorflow")
    if args.command in ("play", "demo"):
        return ("pybullet",)
    return ()


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


def _load_native_modules_quietly(args: argparse.Namespace) -> None:
    """Import TensorFlow and pybullet without their banners (CUDA probing, build time) in the output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in _native_modules(args):
        if name not in sys.modules:
            with _native_output_discarded():
                importlib.import_module(name)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _load_native_modules_quietly(args)
        status = args.run(args)
    except CommandError as error:
        print(f"gymserve {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gymserve {args.command}: interrupted", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())

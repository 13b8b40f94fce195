"""`gymserve play`: episodes of a policy, in process or through a policy server, optionally filmed."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from gymserve.cli.common import (
    CLIENT_ENVIRONMENT_HELP,
    CommandError,
    add_action_mode_arguments,
    check_action_mode,
    check_at_least_one,
    check_env_id,
    import_quietly,
    make_env,
)
from gymserve.cli.play_outputs import add_output_arguments, episode_outputs
from gymserve.cli.policy_arguments import (
    add_policy_arguments,
    baseline_policy,
    load_saved_policy,
    saved_policy_path,
)
from gymserve.cli.query import policy_client
from gymserve.serving.client.control_loop import FALLBACKS

if TYPE_CHECKING:
    import gymnasium as gym

    from gymserve.serving import PolicyClient, PolicyInfo
    from gymserve.serving.client.remote_policy import RemotePolicy

DESCRIPTION = (
    "Play episodes of an environment with a policy, print each episode's return and length, and "
    "optionally show them in a window, film them or dump their frames."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser, remote=True)
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (default: %(default)s)"
    )
    add_action_mode_arguments(parser, stochastic_flag=True)
    parser.add_argument(
        "--max-steps", type=int, metavar="N", help="end each episode after N steps (default: the env's limit)"
    )
    add_output_arguments(parser)
    parser.add_argument(
        "--remote",
        metavar="ADDRESS",
        help="ask the policy server at ADDRESS (HOST:PORT) for every action; --policy names the served "
        f"policy ({CLIENT_ENVIRONMENT_HELP})",
    )
    parser.add_argument(
        "--control-hz",
        type=float,
        metavar="HZ",
        help="with --remote, step the environment at HZ steps per second as a robot's controller does: "
        "an action that misses the deadline is replaced by the fallback; prints the misses and "
        "latency percentiles after each episode",
    )
    parser.add_argument(
        "--deadline-ms",
        type=float,
        metavar="MS",
        help="with --control-hz, how long after sending an observation its action may arrive, at most "
        "the period (default: half the period)",
    )
    parser.add_argument(
        "--fallback",
        choices=FALLBACKS,
        help="with --control-hz, the action a miss applies: hold the last one, or zero (zeros for a box, "
        "the first action of a discrete space) (default: hold)",
    )


def run(args: argparse.Namespace) -> None:
    from gymserve.policies.episodes import run_episode

    check_at_least_one(args.episodes, "--episodes")
    if args.max_steps is not None:
        check_at_least_one(args.max_steps, "--max-steps")
    check_action_mode(args)
    deadline_s = check_control_loop(args)
    outputs = episode_outputs(args)
    if args.remote:
        if args.policy_dir:
            raise CommandError(f"play either RUN_DIR {args.policy_dir} or --remote {args.remote}, not both")
        if args.env is None or args.policy is None:
            raise CommandError("--remote needs --env and --policy NAME (the served policy)")
        check_env_id(args.env)
        saved, env_id = None, args.env
    else:
        path = saved_policy_path(args)
        saved = load_saved_policy(path, args) if path else None
        env_id = saved.env_id if saved else args.env
    import_quietly("pybullet", "play", optional=True)
    env = make_env(env_id, render_mode=outputs.render_mode)
    outputs.check_env(env)
    if args.remote:
        client = policy_client(args.remote)
        policy = remote_policy(client, args.remote, args.policy, env)
        if deadline_s is not None:
            play_at_rate(client, policy.info, env, args, deadline_s)
            return
    else:
        policy = saved.policy if saved else baseline_policy(args.policy, env, args.seed)
    window = outputs.window(env)
    try:
        for index in range(1, args.episodes + 1):
            episode = run_episode(
                env,
                policy,
                args.mode,
                seed=args.seed + index - 1,
                record_frames=outputs.records_frames,
                epsilon=args.epsilon,
                max_steps=args.max_steps,
                on_frame=window.show if window else None,
            )
            print(f"episode {index}: return {episode.total_return:.3f}, length {episode.length}", flush=True)
            for path in outputs.write(index, episode, env):
                print(f"  written to {path}", flush=True)
    finally:
        if window is not None:
            window.close()
        env.close()


def check_control_loop(args: argparse.Namespace) -> float | None:
    """The deadline in seconds when --control-hz asks for a control loop, else None."""
    if args.control_hz is None:
        for flag, value in (("--deadline-ms", args.deadline_ms), ("--fallback", args.fallback)):
            if value is not None:
                raise CommandError(f"{flag} applies only with --control-hz HZ")
        return None
    if not args.remote:
        raise CommandError("--control-hz needs --remote ADDRESS: it paces the answers of a policy server")
    if args.video or args.frame_dir or args.render or args.max_steps:
        raise CommandError(
            "--video, --frame-dir, --render and --max-steps do not go with --control-hz: the loop plays "
            "whole episodes at its own pace"
        )
    if not (math.isfinite(args.control_hz) and args.control_hz > 0):
        raise CommandError(
            f"--control-hz must be a positive number of steps a second, got {args.control_hz:g}"
        )
    period_ms = 1e3 / args.control_hz
    deadline_ms = period_ms / 2 if args.deadline_ms is None else args.deadline_ms
    if not 0 < deadline_ms <= period_ms:
        raise CommandError(
            f"--deadline-ms must be in (0, {period_ms:g}], the period at {args.control_hz:g} Hz; "
            f"got {deadline_ms:g}"
        )
    return deadline_ms / 1e3


def play_at_rate(
    client: PolicyClient, info: PolicyInfo, env: gym.Env, args: argparse.Namespace, deadline_s: float
) -> None:
    from gymserve.serving import PolicyServiceError
    from gymserve.serving.client.control_loop import ControlLoop

    try:
        with ControlLoop(
            client,
            info.name,
            args.control_hz,
            deadline_s,
            args.fallback or "hold",
            version=info.version,
            mode=args.mode.value,
            epsilon=args.epsilon,
        ) as loop:
            for index in range(args.episodes):
                episode = loop.run(env, seed=args.seed + index)
                print(f"episode {index + 1}: return {episode.total_return:.3f}, length {episode.length}")
                print(f"  at {args.control_hz:g} Hz: {loop.stats(reset=True).summary()}")
    except PolicyServiceError as error:
        raise CommandError(f"policy {info.name!r} of the server at {args.remote} failed: {error}") from None
    finally:
        env.close()


def remote_policy(client: PolicyClient, address: str, name: str, env: gym.Env) -> RemotePolicy:
    from gymserve.policies.space_match import SpaceMismatchError, check_space_match
    from gymserve.serving import PolicyServiceError
    from gymserve.serving.client.remote_policy import RemotePolicy

    try:
        policy = RemotePolicy(client, name)
        check_space_match(policy, env.observation_space, env.action_space, f"policy {name!r}", env.spec.id)
    except PolicyServiceError as error:
        raise CommandError(f"cannot use policy {name!r} of the server at {address}: {error}") from None
    except SpaceMismatchError as error:
        raise CommandError(str(error)) from None
    return policy

"""`gymserve play`: episodes of a policy, in process or through a policy server, optionally filmed."""

from __future__ import annotations

import argparse
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
from gymserve.cli.policy_arguments import (
    add_policy_arguments,
    baseline_policy,
    load_saved_policy,
    saved_policy_path,
)

if TYPE_CHECKING:
    import gymnasium as gym

    from gymserve.policies import Policy

DESCRIPTION = (
    "Play episodes of an environment with a policy, print each episode's return and length, and "
    "optionally film the first one."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser, remote=True)
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default: %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the first episode (default: %(default)s)"
    )
    add_action_mode_arguments(parser, stochastic_flag=True)
    parser.add_argument("--video", metavar="FILE", help="film the first episode to FILE (.mp4 or .gif)")
    parser.add_argument(
        "--remote",
        metavar="ADDRESS",
        help="ask the policy server at ADDRESS (HOST:PORT) for every action; --policy names the served "
        f"policy ({CLIENT_ENVIRONMENT_HELP})",
    )


def run(args: argparse.Namespace) -> None:
    from gymserve.policies.episodes import run_episode, write_video

    check_at_least_one(args.episodes, "--episodes")
    check_action_mode(args)
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
    env = make_env(env_id, render_mode="rgb_array" if args.video else None)
    if args.remote:
        policy = remote_policy(args.remote, args.policy, env)
    else:
        policy = saved.policy if saved else baseline_policy(args.policy, env, args.seed)
    try:
        for index in range(args.episodes):
            film = bool(args.video) and index == 0
            episode = run_episode(
                env, policy, args.mode, seed=args.seed + index, record_frames=film, epsilon=args.epsilon
            )
            print(f"episode {index + 1}: return {episode.total_return:.3f}, length {episode.length}")
            if film:
                fps = env.metadata.get("render_fps", 30)
                print(f"video written to {write_video(episode.frames, args.video, fps)}")
    finally:
        env.close()


def remote_policy(address: str, name: str, env: gym.Env) -> Policy:
    from gymserve.cli.query import policy_client
    from gymserve.policies.space_match import SpaceMismatchError, check_space_match
    from gymserve.serving import PolicyServiceError
    from gymserve.serving.client.remote_policy import RemotePolicy

    try:
        policy = RemotePolicy(policy_client(address), name)
        check_space_match(policy, env.observation_space, env.action_space, f"policy {name!r}", env.spec.id)
    except PolicyServiceError as error:
        raise CommandError(f"cannot use policy {name!r} of the server at {address}: {error}") from None
    except SpaceMismatchError as error:
        raise CommandError(str(error)) from None
    return policy

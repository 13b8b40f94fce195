"""The `gymserve` command: a thin layer over the library, one subcommand per job.

Each subcommand is a pair of functions, `_add_<name>_command` (its arguments and help) and
`_run_<name>` (the work, delegated to the library), listed in `COMMANDS`. Heavy modules are
imported inside the `_run_` functions so `gymserve --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import gymnasium as gym

import gymserve


class CommandError(Exception):
    """A user mistake, reported as one line on stderr with exit status 2."""


def _add_play_command(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "play",
        help="play episodes with a policy and print their return and length",
        description="Play episodes of an environment with a policy, print each episode's return and "
        "length, and optionally film the first one.",
    )
    parser.add_argument("--env", required=True, help="environment id, e.g. gymserve/Minitaur-v0")
    parser.add_argument(
        "--policy",
        default="random",
        help="'random' for uniform random actions (default: %(default)s)",
    )
    parser.add_argument("--episodes", type=int, default=1, help="number of episodes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: %(default)s)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    parser.add_argument("--video", metavar="FILE", help="film the first episode to FILE (.mp4 or .gif)")
    parser.set_defaults(run=_run_play)


def _run_play(args: argparse.Namespace) -> None:
    from gymserve.rollout import run_episode, write_video

    if args.episodes < 1:
        raise CommandError(f"--episodes must be at least 1, got {args.episodes}")
    env = _make_env(args.env, render_mode="rgb_array" if args.video else None)
    policy = _policy_for_play(args, env)
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


def _policy_for_play(args: argparse.Namespace, env: gym.Env) -> gymserve.policies.Policy:
    from gymserve.policies import RandomPolicy

    if args.policy == "random":
        return RandomPolicy(env.observation_space, env.action_space, seed=args.seed)
    raise CommandError(f"unknown policy {args.policy!r}; expected 'random'")


def _make_env(env_id: str, **kwargs: object) -> gym.Env:
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as error:
        known = ", ".join(gymserve.envs.env_ids())
        raise CommandError(f"cannot make environment {env_id!r}: {error} (gymserve environments: {known})") from None


COMMANDS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (_add_play_command,)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except CommandError as error:
        print(f"gymserve {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gymserve {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

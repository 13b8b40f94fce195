"""`gymserve eval`: the AverageReturn and AverageEpisodeLength of a policy over side-by-side episodes."""

from __future__ import annotations

import argparse

from gymserve.cli.common import (
    CommandError,
    add_action_mode_arguments,
    check_action_mode,
    check_at_least_one,
    import_quietly,
    make_env,
)
from gymserve.cli.policy_arguments import (
    add_policy_arguments,
    baseline_policy,
    load_saved_policy,
    saved_policy_path,
)
from gymserve.policies import ActionMode

DESCRIPTION = (
    "Play episodes side by side with the policy of a training run, an export, the pretrained policy or "
    "random actions, and print their AverageReturn (with its standard deviation over episodes) and "
    "AverageEpisodeLength."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser, remote=False)
    parser.add_argument("--episodes", type=int, default=20, help="number of episodes (default: %(default)s)")
    add_action_mode_arguments(parser, stochastic_flag=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of episode 1 (default: %(default)s)")


def run(args: argparse.Namespace) -> None:
    from gymserve.policies import EpsilonGreedyPolicy
    from gymserve.policies.episodes import evaluate

    check_at_least_one(args.episodes, "--episodes")
    check_action_mode(args)
    if args.policy_dir is None and args.policy is None:
        raise CommandError("give a RUN_DIR, or --env with --policy random|pretrained|DIR")
    path = saved_policy_path(args)
    if path is not None:
        saved = load_saved_policy(path, args)
        policy, env_id, description = saved.policy, saved.env_id, saved.description
        name = path
    else:
        import_quietly("pybullet", "eval", optional=True)
        env = make_env(args.env)
        env.close()
        policy, env_id = baseline_policy(args.policy, env, args.seed), args.env
        name, description = args.policy, "uniform random actions" if args.policy == "random" else "pretrained"
    if args.mode is ActionMode.EPSILON_GREEDY:
        policy = EpsilonGreedyPolicy(policy, args.epsilon)  # evaluate's calls take no epsilon
    evaluation = evaluate(policy, env_id, args.episodes, args.mode, seed=args.seed)
    mode = "" if args.policy == "random" else f"{args.mode.value} "  # random actions know no mode
    print(f"{name} ({description}) on {env_id}, {args.episodes} {mode}episodes")
    print(f"AverageReturn: {evaluation.average_return:.3f} ± {evaluation.return_std:.3f}")
    print(f"AverageEpisodeLength: {evaluation.average_episode_length:.1f}")

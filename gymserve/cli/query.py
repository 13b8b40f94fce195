"""`gymserve query`: one action (or a batch) from a policy server, printed as JSON."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from gymserve.cli.common import (
    CLIENT_ENVIRONMENT_HELP,
    CommandError,
    add_action_mode_arguments,
    check_action_mode,
)

if TYPE_CHECKING:
    from gymserve.serving import PolicyClient

DESCRIPTION = (
    "Send one observation (or a batch) to a policy server and print the action as JSON, with the policy "
    f"version that answered ({CLIENT_ENVIRONMENT_HELP})."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="ADDRESS", help="HOST:PORT of the server")
    parser.add_argument("--policy", required=True, help="name of the served policy")
    parser.add_argument("--obs", required=True, help="observation as a JSON array, e.g. '[0.01, 0, 0.02, 0]'")
    add_action_mode_arguments(parser, stochastic_flag=False)
    parser.add_argument("--seed", type=int, help="seed of stochastic choices")
    parser.add_argument("--version", type=int, help="policy version (default: the latest served)")
    parser.add_argument("--distribution", action="store_true", help="also print the distribution parameters")


def run(args: argparse.Namespace) -> None:
    from gymserve.serving import PolicyServiceError

    check_action_mode(args)
    try:
        observation = json.loads(args.obs)
    except json.JSONDecodeError as error:
        raise CommandError(f"--obs is not a JSON array: {error}") from None
    with policy_client(args.address) as client:
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


def policy_client(address: str) -> PolicyClient:
    """A client of the server at `address`, with the token and CA the environment names."""
    from gymserve.serving import PolicyClient

    try:
        return PolicyClient.from_environment(address)
    except ValueError as error:
        raise CommandError(str(error)) from None

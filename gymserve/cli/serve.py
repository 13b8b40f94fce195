"""`gymserve serve`: exported policies over gRPC until SIGTERM or SIGINT.

The flags and their help are made from `ServerConfig`'s fields, so the two cannot drift apart;
the fields' old names (`RENAMED_FIELDS`) stay accepted as flags with a warning.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import typing
from typing import Literal

from gymserve.cli.common import CommandError, DeprecatedFlag
from gymserve.serving.server.config import DEFAULT_METRICS_ADDRESS, RENAMED_FIELDS, ServerConfig

DESCRIPTION = (
    "Serve exported policies over gRPC (PolicyService, grpc.health.v1, reflection) until SIGTERM or SIGINT, "
    "then drain in-flight calls for the grace period and stop (a second signal exits at once); SIGHUP "
    "rescans the policy directories. These signals are handled from the start: SIGTERM or SIGINT while "
    "policies load cancels the start with exit status 0, and a SIGHUP then rescans once the server "
    "runs. A --policy whose path does not exist or has no version that loads stops the start with "
    "exit status 1; a --repository may start empty and fill later. A new version whose observation "
    "or action space differs from the one a policy serves is refused (FAILED) unless "
    "--allow-space-changes. Settings come from flags, then GYMSERVE_<SETTING> environment "
    "variables (GYMSERVE_AUTH_TOKEN enables bearer-token auth; health checks need no token), then "
    "--config, then defaults. Per-policy version policies and labels (policy_settings) are set in the "
    "config file. Without policies, the pretrained ones are served."
)

# set in the config file or the environment only: secrets stay off command lines, mappings need structure
_FIELDS_NOT_FLAGS = frozenset({"config_file", "policies", "policy_settings", "auth_token"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        action="append",
        metavar="NAME=PATH",
        help="serve the export (or directory of integer versions) PATH as NAME; repeatable",
    )
    parser.add_argument("--config", metavar="FILE", help=ServerConfig.model_fields["config_file"].description)
    for name, field in ServerConfig.model_fields.items():
        if name in _FIELDS_NOT_FLAGS:
            continue
        choices = (
            typing.get_args(field.annotation) if typing.get_origin(field.annotation) is Literal else None
        )
        default = f"default: {field.default}" if field.default is not None else "default: off"
        options: dict = {"help": f"{field.description} ({default})", "choices": choices}
        if name == "metrics_address":
            options.update(nargs="?", const=DEFAULT_METRICS_ADDRESS, metavar="HOST:PORT")
        elif field.annotation is bool:  # a switch; left unset (None) so that files and variables count
            options.update(action="store_const", const=True, help=f"{field.description} (default: off)")
            del options["choices"]
        elif field.annotation in (int, float):
            options["type"] = field.annotation
        parser.add_argument(_flag(name), **options)
    for old, new in RENAMED_FIELDS.items():
        kind = ServerConfig.model_fields[new].annotation
        parser.add_argument(_flag(old), action=DeprecatedFlag, dest=new, type=kind, replacement=_flag(new))


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def run(args: argparse.Namespace) -> int:
    from gymserve.serving.server.config import ServerConfigError, UnservablePolicyError, load_server_config
    from gymserve.serving.server.logs import configure_logging, log_event
    from gymserve.serving.server.signals import ServerSignals, StartupCancelled

    flags = {name: getattr(args, name) for name in ServerConfig.model_fields if name not in _FIELDS_NOT_FLAGS}
    flags["policies"] = _named_paths(args.policy) if args.policy else None
    try:
        with ServerSignals() as signals:  # before loading anything: start-up may take minutes
            config = load_server_config(args.config, flags)
            configure_logging(config.log_level)
            from gymserve.serving.server.policy_server import PolicyServer

            clean = PolicyServer(config).wait_for_shutdown_signal(signals)
    except StartupCancelled as cancelled:
        log_event(logging.INFO, "server_start_cancelled", signal=str(cancelled))
        return 0
    except UnservablePolicyError as error:
        print(f"gymserve serve: error: {error}", file=sys.stderr)
        return 1
    except ServerConfigError as error:
        raise CommandError(str(error)) from None
    if not clean:
        # an RPC thread is stuck (in a policy call, say): exit without waiting for it
        logging.shutdown()
        os._exit(0)
    return 0


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

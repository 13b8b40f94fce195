"""What a protocol module hands the policy server: its RPCs and one `register` hook.

A protocol module defines `PROTOCOL = Protocol(...)` and is named by one line in
`gymserve.serving.apis.PROTOCOLS`. The server loads each entry, registers it, and takes from
it the services reflection lists, the RPCs answered without a bearer token, and the RPC
series its metrics show from the start. A protocol whose optional modules are not installed
is skipped with one logged line; the server serves the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gymserve.common.extras import EXTRA_OF_MODULE, MissingExtraError, installed, missing_extra

if TYPE_CHECKING:
    import grpc
    from google.protobuf.descriptor import ServiceDescriptor
    from grpc_health.v1.health import HealthServicer

    from gymserve.serving.metrics.server_metrics import ServerMetrics
    from gymserve.serving.server.config import ServerConfig
    from gymserve.serving.server.policy_calls import PolicyCalls

RpcKind = Literal["unary", "client_stream", "server_stream", "bidi_stream"]  # py-grpc-prometheus' grpc_type


@dataclass(frozen=True)
class Rpc:
    """One method a protocol answers."""

    path: str  # "/package.Service/Method", as gRPC names the call
    kind: RpcKind = "unary"
    public: bool = False  # answered without the bearer token (health checks)

    @property
    def service(self) -> str:
        return self.path.lstrip("/").rpartition("/")[0]

    @property
    def method(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class ProtocolContext:
    """What a protocol's servicers answer with: the server's policy calls, metrics, config and health."""

    calls: PolicyCalls  # resolves versions, runs policies (batched, counted), maps errors to status codes
    metrics: ServerMetrics
    config: ServerConfig
    health: HealthServicer  # the server sets its statuses as policies load, fail and shut down


@dataclass(frozen=True)
class Protocol:
    """A protocol the server speaks, and how to add it to a `grpc.Server`."""

    name: str
    rpcs: tuple[Rpc, ...]
    register: Callable[[grpc.Server, ProtocolContext], None]
    reflected_services: tuple[str, ...] = ()  # listed by server reflection: their descriptors must be loaded
    requires: tuple[str, ...] = ()  # optional top-level modules (named in EXTRA_OF_MODULE); skipped without


_KINDS: dict[tuple[bool, bool], RpcKind] = {  # (request streaming, response streaming)
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


def rpcs_of(service: ServiceDescriptor, public: bool = False) -> tuple[Rpc, ...]:
    """The RPCs of a generated service descriptor, with their streaming kinds."""
    return tuple(
        Rpc(
            f"/{service.full_name}/{method.name}",
            _KINDS[method.client_streaming, method.server_streaming],
            public,
        )
        for method in service.methods
    )


@dataclass(frozen=True)
class SkippedProtocol:
    entry: str
    reason: str


def load_protocols(entries: Iterable[str]) -> tuple[list[Protocol], list[SkippedProtocol]]:
    """The `PROTOCOL` of each "module:attribute" entry, and those skipped for a missing optional module."""
    loaded, skipped = [], []
    for entry in entries:
        module_name, _, attribute = entry.partition(":")
        try:
            protocol = getattr(importlib.import_module(module_name), attribute or "PROTOCOL")
        except ModuleNotFoundError as error:
            missing = missing_extra(error, f"protocol {entry}")
            if missing is None:
                raise
            skipped.append(SkippedProtocol(entry, str(missing)))
            continue
        absent = next((module for module in protocol.requires if not installed(module)), None)
        if absent is None:
            loaded.append(protocol)
        else:
            missing = MissingExtraError(absent, EXTRA_OF_MODULE[absent], f"the {protocol.name} protocol")
            skipped.append(SkippedProtocol(entry, str(missing)))
    return loaded, skipped

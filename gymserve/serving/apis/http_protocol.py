"""What an HTTP protocol module hands the policy server's HTTP port: its routes.

The gRPC `Protocol` registers servicers on a `grpc.Server` and names its RPCs by gRPC path,
which auth and metrics key on; an HTTP route is a method and a path pattern instead, so HTTP
protocols have a registry of their own, `gymserve.serving.apis.HTTP_PROTOCOLS`, loaded by the
same `load_protocols`. A route's handler takes the path's named groups and the decoded JSON
body and returns the JSON answer; a route that takes `binary` bodies gets and may answer
`JsonWithBytes` instead (a JSON header followed by raw bytes, its length in
`JSON_LENGTH_HEADER`: the Open Inference Protocol's binary tensor data); a handler answering a
`PageFile` serves one of the package's own files (the page in the browser). A handler raises
`RequestError` (whose gRPC code becomes the HTTP status), `HttpError`, or `ValueError` (400).
Handlers know nothing of the HTTP stack, which does the routing, the bearer token, body
limits, JSON coding and metrics (`gymserve.serving.server.http_server`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from gymserve.serving.apis.protocol import ProtocolContext

Json = Any  # what orjson decodes: dict, list, str, int, float, bool or None
Handler = Callable[[Mapping[str, str], Any], Any]  # (path groups, Json or JsonWithBytes) -> the same
JSON_LENGTH_HEADER = "Inference-Header-Content-Length"  # bytes of JSON before a body's raw bytes


@dataclass(frozen=True, slots=True)  # slots: made for every v2 request, in half the time
class JsonWithBytes:
    """A body of JSON followed by raw bytes, which would cost a JSON number per byte or worse."""

    document: Json
    data: bytes | memoryview = b""


@dataclass(frozen=True)
class PageFile:
    """A file of the package answered as it is (HTML, JavaScript, CSS), never a path a client names."""

    body: bytes
    content_type: str  # "text/html", "text/javascript", "text/css"


class HttpError(Exception):
    """A request refused with an HTTP status of its own (no gRPC code maps to it)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HttpRoute:
    """One method and path pattern, answered by `handler`."""

    method: Literal["GET", "POST"]
    pattern: str  # a regular expression the whole path must match; named groups go to the handler
    name: str  # the route's label in the metrics: a fixed string, never the path a client sent
    handler: Handler
    public: bool = False  # answered without the bearer token (liveness and readiness probes)
    runs_policy: bool = True  # blocks on a policy call: run on the HTTP worker threads
    binary: bool = False  # the handler gets a `JsonWithBytes` (no raw bytes without JSON_LENGTH_HEADER)
    regex: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern))


@dataclass(frozen=True)
class HttpProtocol:
    """A protocol the HTTP port speaks: its routes, made from the server's policy calls."""

    name: str
    routes: Callable[[ProtocolContext], tuple[HttpRoute, ...]]
    requires: tuple[str, ...] = ()  # optional top-level modules (named in EXTRA_OF_MODULE); skipped without


class NoDeadline:
    """The deadline `PolicyCalls.run` checks, for HTTP calls, which carry none."""

    @staticmethod
    def time_remaining() -> float:
        return math.inf


NAME = r"(?P<name>[^/:]+)"  # a policy name in a path
VERSION = r"(?:/versions/(?P<version>[^/:]+))?"  # an optional version number in a path


def path_version(value: str | None) -> int | None:
    """The version number a path names, or None; ValueError when it is no integer >= 0."""
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValueError(f"version {value[:32]!r} in the path is not an integer >= 0")
    return int(value)

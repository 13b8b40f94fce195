"""The policy server's HTTP port: the routes of `gymserve.serving.apis.HTTP_PROTOCOLS`, JSON in and out.

aiohttp's low-level server serves it from an event loop on a thread of its own and hands every
request to one handler that routes it (an Application would route each request a second time,
at a tenth of a small policy call's server CPU). Route handlers that run a policy go to a pool
of `workers` threads, so a slow policy call never stalls the loop, unless their calls have been
fast enough for the loop to run them at less cost (`inline_calls`); the calls share the gRPC
port's `PolicyCalls` (versions, batching, metrics, limits). Bodies are JSON (orjson), or JSON
then raw bytes on routes that take them (`JsonWithBytes`); a body over `max_message_bytes` is
refused with 413 before it is read.
Every other route needs `Authorization: Bearer <token>` when a token is configured (the
same token as gRPC, compared in constant time); TLS uses the gRPC port's certificate and key.
The page's files (`PageFile`) go out with headers that keep a browser from running anything
but them: no inline script, nothing from another origin, no guessing of content types.
Errors answer {"error": message} with the status their gRPC code maps to (`HTTP_STATUS`),
never a traceback. Every request is counted per route, method and status, once its answer is
written, so that the counting adds nothing to the client's wait.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING

import grpc
import orjson
from aiohttp import HttpVersion11, web

from gymserve.serving.apis.http_protocol import (
    JSON_LENGTH_HEADER,
    HttpError,
    HttpProtocol,
    HttpRoute,
    Json,
    JsonWithBytes,
    PageFile,
)
from gymserve.serving.server.auth import authorization_problem
from gymserve.serving.server.echo import capped, echo
from gymserve.serving.server.inline_calls import InlineCalls
from gymserve.serving.server.logs import RateLimitedLog, log_event
from gymserve.serving.server.request_limits import RequestError

if TYPE_CHECKING:
    from gymserve.serving.apis.protocol import ProtocolContext

# grpc-gateway's mapping, but for versions that failed to load: unavailable, not a bad request
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",  # a server upgraded in place serves its new page at the next load
}
Answer = Json | JsonWithBytes | PageFile
UNMATCHED_ROUTE = "unmatched"  # the metrics label of paths no route matches
MATCHED_PATHS = 1024  # (method, path) pairs whose route is remembered; the first remembered goes first
_STOP_SECONDS = 5.0


class HttpServer:
    """Serves `protocols`' routes at `address` once started; `stop` closes it."""

    def __init__(self, address: str, protocols: list[HttpProtocol], context: ProtocolContext):
        self._address = address
        self._routes = [route for protocol in protocols for route in protocol.routes(context)]
        self._routes_by_method: dict[str, list[HttpRoute]] = {}  # a request tries only its method's
        for route in self._routes:
            self._routes_by_method.setdefault(route.method, []).append(route)
        # (method, path) -> route and path groups; read and written on the event loop's thread only
        self._matched: dict[tuple[str, str], tuple[HttpRoute, Mapping[str, str]]] = {}
        config = context.config
        token = config.auth_token
        self._expected = None if token is None else f"Bearer {token.get_secret_value()}".encode()
        self._max_body = config.max_message_bytes
        self._grace = config.grace_period
        self._observe = context.metrics.http.observe
        self._workers = ThreadPoolExecutor(config.workers, thread_name_prefix="gymserve-http")
        self._inline = InlineCalls(enabled=config.batching is None)
        self._ssl = None
        if config.tls_certificate is not None:
            self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._ssl.load_cert_chain(config.tls_certificate, config.tls_private_key)
        self._loop = asyncio.new_event_loop()
        self._runner: web.ServerRunner | None = None
        self._thread: threading.Thread | None = None
        self._refused_log = RateLimitedLog(burst=50)
        self.address: str | None = None  # HOST:PORT once started (the real port for port 0)

    def start(self) -> str:
        """Listen and serve on a thread of its own; returns HOST:PORT."""
        # aiohttp's request, reading at most `max_message_bytes` of body
        requests = partial(web.BaseRequest, loop=self._loop, client_max_size=self._max_body)
        server = web.Server(self._answer, request_factory=requests, loop=self._loop, access_log=None)
        self._runner = web.ServerRunner(server, shutdown_timeout=self._grace)
        host, _, port = self._address.rpartition(":")
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, host, int(port), ssl_context=self._ssl, reuse_port=False)
        try:
            self._loop.run_until_complete(site.start())
        except OSError:
            self._loop.run_until_complete(self._runner.cleanup())
            self._runner = None
            raise
        bound_port = self._runner.addresses[0][1]
        self.address = f"{host}:{bound_port}"
        self._thread = threading.Thread(target=self._loop.run_forever, name="gymserve-http-loop", daemon=True)
        self._thread.start()
        return self.address

    def stop(self) -> None:
        """Close the port; requests in flight get the configured grace period, then are dropped."""
        if self._runner is not None and self._thread is not None:
            cleanup = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            cleanup.result(self._grace + _STOP_SECONDS)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(_STOP_SECONDS)
        if not self._loop.is_running():
            self._loop.close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    async def _answer(self, request: web.BaseRequest) -> web.Response:
        begin = time.perf_counter()
        route_name, timed = UNMATCHED_ROUTE, None
        try:
            route, path = self._route(request)
            route_name = route.name
            if not route.public and self._expected is not None:
                _authenticate(request, self._expected)
            body, size = await self._body(request, route.binary)
            if route.runs_policy:
                key = (route.name, path.get("name"), path.get("version"), path.get("label"))
                if self._inline.inline(key, size):  # no coroutine, no hand-off: the cheap usual case
                    called = time.perf_counter()
                    answer = route.handler(path, body)
                    seconds = time.perf_counter() - called
                else:
                    call = partial(_timed, route.handler, path, body)
                    answer, seconds = await asyncio.get_running_loop().run_in_executor(self._workers, call)
                timed = (key, seconds)
            else:
                answer = route.handler(path, body)
            status = 200
        except Exception as error:
            status, answer = self._error(request, route_name, error)
        elapsed = time.perf_counter() - begin
        try:
            response = _response(status, answer)
        except Exception as error:  # an answer JSON cannot hold: a bug, told as such
            status, answer = self._error(request, route_name, error)
            response = _response(status, answer)
        try:
            await _send(request, response)  # first: the counting below then adds nothing to the client's wait
        finally:
            self._observe(route_name, request.method, status, elapsed)
            if timed is not None and status == 200:
                self._inline.record(*timed)
        return response

    def _route(self, request: web.BaseRequest) -> tuple[HttpRoute, Mapping[str, str]]:
        """The first route of the request's method whose pattern matches its path, and the path's parts."""
        path, method = request.path, request.method
        matched = self._matched.get((method, path))  # a client calls a few paths over and over
        if matched is not None:
            return matched
        for route in self._routes_by_method.get(method, ()):
            match = route.regex.fullmatch(path)
            if match is not None:
                if len(self._matched) >= MATCHED_PATHS:
                    del self._matched[next(iter(self._matched))]
                matched = self._matched[(method, path)] = (route, MappingProxyType(match.groupdict()))
                return matched
        allowed = [route.method for route in self._routes if route.regex.fullmatch(path)]
        if allowed:
            raise HttpError(405, f"{method} is not allowed here; use {', '.join(allowed)}")
        raise HttpError(
            404, f"no route for {capped(path, 256)}; see /v1/models/NAME, /v2/models/NAME and the page at /"
        )

    async def _body(self, request: web.BaseRequest, binary: bool) -> tuple[Json | JsonWithBytes, int]:
        """The parsed body and its size in bytes as read (after any content decoding)."""
        if request.method != "POST":
            return None, 0
        if request.content_length is not None and request.content_length > self._max_body:
            raise HttpError(413, self._too_large(request.content_length))
        expect = request.headers.get("Expect")
        if expect is not None:
            await _continue_if_expected(request, expect)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body grew past the limit
            raise HttpError(413, self._too_large(None)) from None
        if not binary:
            return _json(raw), len(raw)
        header = request.headers.get(JSON_LENGTH_HEADER)
        if header is None:  # all JSON: the usual case
            return JsonWithBytes(_json(raw)), len(raw)
        length = _json_length(header, len(raw))
        return JsonWithBytes(_json(raw[:length]), memoryview(raw)[length:]), len(raw)

    def _too_large(self, length: int | None) -> str:
        size = "" if length is None else f" of {length} bytes"
        return f"the body{size} exceeds this server's limit of {self._max_body} bytes"

    def _error(self, request: web.BaseRequest, route: str, error: Exception) -> tuple[int, Json]:
        if isinstance(error, HttpError):
            status = error.status
        elif isinstance(error, RequestError):
            status = HTTP_STATUS.get(error.code, 500)
        elif isinstance(error, ValueError):
            status = 400
        else:
            message = capped(f"{type(error).__name__}: {error}")
            log_event(logging.ERROR, "http_request_failed", route=route, error=message, exc_info=error)
            return 500, {"error": message}
        message = capped(str(error))
        self._refused_log.log(
            logging.INFO,
            "http_request_rejected",
            route=route,
            peer=request.remote,
            status=status,
            error=message,
        )
        return status, {"error": message}


def _authenticate(request: web.BaseRequest, expected: bytes) -> None:
    problem = authorization_problem(request.headers.get("Authorization"), expected, "header")
    if problem is not None:
        raise RequestError(grpc.StatusCode.UNAUTHENTICATED, problem)


def _response(status: int, answer: Answer) -> web.Response:
    if isinstance(answer, PageFile):
        return web.Response(
            body=answer.body, content_type=answer.content_type, charset="utf-8", headers=PAGE_HEADERS
        )
    if isinstance(answer, JsonWithBytes):
        document = orjson.dumps(answer.document)
        return web.Response(
            status=status,
            body=document + answer.data,
            content_type="application/octet-stream",
            headers={JSON_LENGTH_HEADER: str(len(document))},
        )
    return web.Response(status=status, body=orjson.dumps(answer), content_type="application/json")


async def _send(request: web.BaseRequest, response: web.Response) -> None:
    """Write `response` now rather than after the handler returns, where aiohttp finds it sent."""
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:  # the client left; aiohttp's own try to send it notes that
        pass


async def _continue_if_expected(request: web.BaseRequest, expect: str) -> None:
    """Answer `Expect: 100-continue` (curl sends it before a large body and waits for the answer)
    once the request is authorized and its declared size allowed, so a refused body is never sent."""
    if request.version != HttpVersion11:
        return
    if expect.lower() != "100-continue":
        raise HttpError(417, f"unknown Expect: {capped(expect, 64)}; only 100-continue is understood")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0  # the answer's own size starts after the interim response


def _timed(handler: Callable[..., Answer], *arguments: object) -> tuple[Answer, float]:
    """`handler(*arguments)` and the seconds it took on its own thread (no wait for a worker thread)."""
    begin = time.perf_counter()
    return handler(*arguments), time.perf_counter() - begin


def _json(raw: bytes) -> Json:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise HttpError(400, f"the body is not JSON: {error}") from None


def _json_length(header: str, body_length: int) -> int:
    """The bytes of JSON a body starts with, as `header` gives them."""
    if not (header.isascii() and header.isdigit() and len(header) <= 20) or int(header) > body_length:
        raise HttpError(
            400,
            f"{JSON_LENGTH_HEADER} is {echo(header, 32)}; expected an integer from 0 to the body's "
            f"{body_length} bytes",
        )
    return int(header)

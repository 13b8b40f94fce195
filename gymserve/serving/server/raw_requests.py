"""Every RPC parses its own request bytes: malformed protobuf is INVALID_ARGUMENT, never INTERNAL.

grpcio's own deserialization path answers a message it cannot parse with INTERNAL
"Exception deserializing request!" and keeps about 19 KiB per such call for good; a client
sending garbage could exhaust the server's memory. This interceptor hands every handler
(PolicyService, health, reflection) raw bytes and parses them itself with the handler's
deserializer, so a malformed message is an ordinary, logged INVALID_ARGUMENT.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from gymserve.serving.server.handlers import HandlerWrapper, behavior_of, rebuild_handler
from gymserve.serving.server.logs import RateLimitedLog


class RawRequestInterceptor(HandlerWrapper):
    """Parses requests inside the handler, answering INVALID_ARGUMENT for bytes that do not parse."""

    def __init__(self) -> None:
        super().__init__()
        self._log = RateLimitedLog()

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if handler.request_deserializer is None:
            return handler
        parse, behavior = handler.request_deserializer, behavior_of(handler)
        if handler.request_streaming:

            def parsing_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                return behavior(
                    (_parsed(parse, raw, method, context, self._log) for raw in requests), context
                )

            return rebuild_handler(handler, parsing_stream, request_deserializer=None)

        def parsing(request: bytes, context: grpc.ServicerContext) -> Any:
            return behavior(_parsed(parse, request, method, context, self._log), context)

        return rebuild_handler(handler, parsing, request_deserializer=None)


def _parsed(
    parse: Callable[[bytes], Any], raw: bytes, method: str, context: grpc.ServicerContext, log: RateLimitedLog
) -> Any:
    try:
        return parse(raw)
    except Exception as error:  # DecodeError, or anything a deserializer raises on garbage
        rpc = method.rsplit("/", 1)[-1]
        message = f"malformed {rpc} request: {len(raw)} bytes that are not a valid protobuf message"
        log.log(
            logging.WARNING, "malformed_request", method=method, peer=context.peer(), error=str(error)[:200]
        )
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

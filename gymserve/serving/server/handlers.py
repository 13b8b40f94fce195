"""Rebuilding a gRPC method handler around a new behavior, for the server's interceptors.

A handler is one of four kinds (unary or streaming requests, unary or streaming responses);
an interceptor that wraps a behavior must hand back a handler of the same kind with the same
serializers, or with a new request deserializer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import grpc

Behavior = Callable[[Any, grpc.ServicerContext], Any]
_KEEP: Any = object()


def behavior_of(handler: grpc.RpcMethodHandler) -> Behavior:
    """The function that answers calls of `handler`, whatever its kind."""
    if handler.request_streaming:
        return handler.stream_stream if handler.response_streaming else handler.stream_unary
    return handler.unary_stream if handler.response_streaming else handler.unary_unary


def rebuild_handler(
    handler: grpc.RpcMethodHandler,
    behavior: Behavior,
    request_deserializer: Callable[[bytes], Any] | None = _KEEP,
) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s kind that answers with `behavior` (and, if given, a new deserializer)."""
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    if request_deserializer is _KEEP:
        request_deserializer = handler.request_deserializer
    return make(behavior, request_deserializer, handler.response_serializer)


def is_streaming(handler: grpc.RpcMethodHandler) -> bool:
    return handler.request_streaming or handler.response_streaming


class HandlerWrapper(grpc.ServerInterceptor):
    """An interceptor that hands every method handler found to `wrap`, which rebuilds it.

    grpc runs the interceptors on every call; the rebuilt handler of each method is kept, so a
    call pays a dictionary lookup rather than a rebuild. It is rebuilt when the handler found
    for the method changes (an interceptor further in answered with a handler of its own).
    """

    def __init__(self) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        found, wrapped = self._wrapped.get(method, (None, None))
        if found is not handler:
            wrapped = self.wrap(handler, method)
            self._wrapped[method] = (handler, wrapped)  # methods with a handler: a fixed, small set
        return wrapped

    @abc.abstractmethod
    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """`handler` of `method` ("/package.Service/Method"), or a rebuilt one."""

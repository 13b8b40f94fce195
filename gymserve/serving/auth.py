"""Bearer-token authentication: every call must carry `authorization: Bearer <token>`.

Health checks are exempt, so load balancers and orchestrators can probe the server without
the secret; they reveal only whether the server and each policy name are serving.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

import grpc
from grpc_health.v1 import health

EXEMPT_PREFIXES = (f"/{health.SERVICE_NAME}/",)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the expected bearer token with UNAUTHENTICATED."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method.startswith(EXEMPT_PREFIXES):
            return continuation(handler_call_details)
        problem = self._problem(handler_call_details.invocation_metadata)
        handler = continuation(handler_call_details)
        if problem is None or handler is None:
            return handler
        return _refusing_handler(handler, problem)

    def _problem(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
        """Why the call's metadata does not authenticate it, or None when it does."""
        for key, value in metadata or ():
            if key == "authorization":
                presented = value if isinstance(value, bytes) else value.encode()
                return None if hmac.compare_digest(presented, self._expected) else "invalid bearer token"
        return "missing 'authorization: Bearer <token>' metadata"


def _refusing_handler(handler: grpc.RpcMethodHandler, problem: str) -> grpc.RpcMethodHandler:
    """A handler of the same streaming kind as `handler` that aborts with UNAUTHENTICATED."""

    def refuse(request: object, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)

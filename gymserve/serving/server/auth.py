"""Bearer-token authentication: every call must carry `authorization: Bearer <token>`.

Health checks are exempt, so load balancers and orchestrators can probe the server without
the secret; they reveal only whether the server and each policy name are serving. Refused
calls are logged with the peer and the method (rate-limited: a client can refuse itself at will).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable

import grpc
from grpc_health.v1 import health

from gymserve.serving.server.handlers import rebuild_handler
from gymserve.serving.server.logs import RateLimitedLog

EXEMPT_PREFIXES = (f"/{health.SERVICE_NAME}/",)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the expected bearer token with UNAUTHENTICATED."""

    def __init__(self, token: str):
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._log = RateLimitedLog()

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
        return rebuild_handler(handler, _refusal(handler_call_details.method, problem, self._log))

    def _problem(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
        """Why the call's metadata does not authenticate it, or None when it does."""
        for key, value in metadata or ():
            if key == "authorization":
                presented = value if isinstance(value, bytes) else value.encode()
                return None if hmac.compare_digest(presented, self._expected) else "invalid bearer token"
        return "missing 'authorization: Bearer <token>' metadata"


def _refusal(
    method: str, problem: str, log: RateLimitedLog
) -> Callable[[object, grpc.ServicerContext], None]:
    """A behavior that logs the refused call and aborts it with UNAUTHENTICATED."""

    def refuse(request: object, context: grpc.ServicerContext) -> None:
        log.log(logging.WARNING, "auth_refused", method=method, peer=context.peer(), problem=problem)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    return refuse

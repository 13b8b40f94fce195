"""Bearer-token authentication: every call must carry `authorization: Bearer <token>`.

Only the methods a protocol marks public are exempt (health checks, so load balancers and
orchestrators can probe the server without the secret); a method no protocol knows needs the
token too. Refused calls are logged with the peer and the method (rate-limited: a client can
refuse itself at will).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable

import grpc

from gymserve.serving.server.handlers import rebuild_handler
from gymserve.serving.server.logs import RateLimitedLog


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without the expected bearer token with UNAUTHENTICATED, but those to `public_methods`."""

    def __init__(self, token: str, public_methods: Iterable[str] = ()):
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._public = frozenset(public_methods)  # "/package.Service/Method"
        self._log = RateLimitedLog()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method in self._public:
            return continuation(handler_call_details)
        problem = self._problem(handler_call_details.invocation_metadata)
        handler = continuation(handler_call_details)
        if problem is None or handler is None:
            return handler
        return rebuild_handler(handler, _refusal(handler_call_details.method, problem, self._log))

    def _problem(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
        """Why the call's metadata does not authenticate it, or None when it does."""
        presented = next((value for key, value in metadata or () if key == "authorization"), None)
        return authorization_problem(presented, self._expected, "metadata")


def authorization_problem(presented: str | bytes | None, expected: bytes, carrier: str) -> str | None:
    """Why the `authorization` value `presented` (in gRPC metadata or an HTTP header) is refused, or None.

    The comparison takes the same time wherever the values differ.
    """
    if presented is None:
        return f"missing 'authorization: Bearer <token>' {carrier}"
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "surrogateescape")
    return None if hmac.compare_digest(presented, expected) else "invalid bearer token"


def _refusal(
    method: str, problem: str, log: RateLimitedLog
) -> Callable[[object, grpc.ServicerContext], None]:
    """A behavior that logs the refused call and aborts it with UNAUTHENTICATED."""

    def refuse(request: object, context: grpc.ServicerContext) -> None:
        log.log(logging.WARNING, "auth_refused", method=method, peer=context.peer(), problem=problem)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    return refuse

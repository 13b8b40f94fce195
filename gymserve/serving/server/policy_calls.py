"""What every serving API does around a policy call: resolve the version, run, count, map errors.

Both the gymserve PolicyService and the TensorFlow Serving PredictionService answer through
`PolicyCalls`, so they resolve names, versions and labels alike, share dynamic batching and
metrics, check the sizes a request declares against the same `RequestLimits` before
decoding it, and answer the same status codes: bad requests INVALID_ARGUMENT (the policy's own
ValueError names the expected spec), unknown names, versions or labels NOT_FOUND, versions
that failed to load FAILED_PRECONDITION (retrying will not help), oversize batches and full
batch queues RESOURCE_EXHAUSTED, and a call whose deadline passed before its turn
DEADLINE_EXCEEDED without being computed. Every status message and log field is cut to
`MESSAGE_LIMIT` (see `echo`), so no request can make an answer or a log line large.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import grpc

from gymserve.serving.server.batching import BatchQueueFullError, BatchScheduler
from gymserve.serving.server.echo import capped
from gymserve.serving.server.logs import RateLimitedLog, log_event
from gymserve.serving.server.request_limits import RequestError, RequestLimits
from gymserve.serving.server.served_policies import (
    PolicyNotFoundError,
    PolicyUnavailableError,
    ServedPolicies,
    ServedVersion,
)

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.metrics.server_metrics import ServerMetrics

Result = TypeVar("Result")


class PolicyCalls:
    """Runs policy calls for the servicers: batched when the server batches, counted in the metrics."""

    def __init__(
        self,
        policies: ServedPolicies,
        limits: RequestLimits,
        metrics: ServerMetrics,
        batching: BatchScheduler | None = None,
    ):
        self.policies = policies
        self.limits = limits
        self._observe_step = metrics.steps.observe_step
        self._batching = batching
        self._rejected_log = RateLimitedLog(burst=50)

    def resolve(self, name: str, version: int | None, label: str) -> ServedVersion:
        try:
            return self.policies.resolve(name, version, label)
        except PolicyNotFoundError as error:
            raise RequestError(grpc.StatusCode.NOT_FOUND, str(error)) from None
        except PolicyUnavailableError as error:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None

    def run(
        self,
        served: ServedVersion,
        batch_size: int,
        context: grpc.ServicerContext,
        call: Callable[[Policy], Result],
    ) -> Result:
        """`call(policy)` on `served`'s policy (batched when configured), unless the deadline passed."""
        begin = time.perf_counter()
        if context.time_remaining() <= 0:
            message = "the call's deadline passed before the server got to it; nothing was computed"
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        policy = served.policy if self._batching is None else self._batching.policy_for(served)
        inference_begin = time.perf_counter()
        try:
            result = call(policy)
        except BatchQueueFullError as error:
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)) from None
        end = time.perf_counter()
        # batched calls are counted per model call by the scheduler
        model_call = policy is served.policy
        self._observe_step(
            served.name, served.version, batch_size, end - begin, end - inference_begin, model_call
        )
        return result

    def abort(self, context: grpc.ServicerContext, method: str, error: Exception) -> None:
        """End the call with the status `error` maps to; unexpected errors are logged with a traceback."""
        if isinstance(error, RequestError):
            code = error.code
        elif isinstance(error, ValueError):
            code = grpc.StatusCode.INVALID_ARGUMENT
        else:
            code = grpc.StatusCode.INTERNAL
            message = capped(f"{type(error).__name__}: {error}")
            log_event(
                logging.ERROR, "request_failed", method=method, code=code.name, error=message, exc_info=error
            )
            context.abort(code, message)
        message = capped(str(error))
        self._rejected_log.log(
            logging.INFO,
            "request_rejected",
            method=method,
            peer=context.peer(),
            code=code.name,
            error=message,
        )
        context.abort(code, message)

"""The PolicyService servicer: requests in, policy calls, responses out, errors as status codes.

Bad requests become INVALID_ARGUMENT (the policy's own ValueError names the expected spec),
unknown names, versions or labels NOT_FOUND, versions that failed to load FAILED_PRECONDITION
(retrying will not help), oversize batches RESOURCE_EXHAUSTED, and a call whose deadline has
passed before its turn DEADLINE_EXCEEDED without being computed. Client strings repeated in
messages are capped (see `echo`). A unary Act starts from the policy's initial state every
time; a StreamAct keeps the state between its messages and restarts it at episode boundaries.
A stream keeps the version it resolved until its episode ends, so a reload never switches
policies in the middle of an episode. The served policy objects are shared by all calls, so
the server never calls `Policy.reset`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from gymserve.serving.action_modes import mode_name
from gymserve.serving.batching import BatchQueueFullError, BatchScheduler
from gymserve.serving.logs import RateLimitedLog, log_event
from gymserve.serving.protos import policy_service_pb2 as pb
from gymserve.serving.protos import policy_service_pb2_grpc as pb_grpc
from gymserve.serving.served_policies import (
    PolicyNotFoundError,
    PolicyUnavailableError,
    ServedPolicies,
    ServedVersion,
)
from gymserve.serving.spaces import space_to_proto
from gymserve.serving.tensors import data_type_name, fill_tensor, from_tensor

if TYPE_CHECKING:
    from gymserve.policies.base import PolicyState
    from gymserve.serving.metrics import ServerMetrics


class RequestError(Exception):
    """A request the server refuses, with the status code to answer."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


class PolicyService(pb_grpc.PolicyServiceServicer):
    """Answers the four PolicyService RPCs from a `ServedPolicies` (stream limits are the server's)."""

    def __init__(
        self,
        policies: ServedPolicies,
        max_batch_size: int,
        metrics: ServerMetrics,
        batching: BatchScheduler | None = None,
    ):
        self._policies = policies
        self._max_batch_size = max_batch_size
        self._metrics = metrics
        self._batching = batching
        self._rejected_log = RateLimitedLog(burst=50)

    def Act(self, request: pb.ActRequest, context: grpc.ServicerContext) -> pb.ActResponse:
        response = pb.ActResponse()
        try:
            served = self._resolve(request)
            observations, batch_size = self._observations(request.observations, served)
            self._act(
                served, request, observations, served.policy.get_initial_state(batch_size), response, context
            )
        except Exception as error:
            _abort(context, "Act", error, self._rejected_log)
        return response

    def StreamAct(
        self, request_iterator: Iterator[pb.StreamActRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.StreamActResponse]:
        serving: ServedVersion | None = None
        state: PolicyState | None = None
        resolved_for: tuple | None = None
        for message in request_iterator:
            response = pb.StreamActResponse()
            try:
                request = message.act
                asked = (request.policy_name, _version(request), request.version_label)
                restart = state is None or message.episode_start or asked != resolved_for
                if restart:
                    serving, resolved_for = self._resolve(request), asked  # kept until the episode ends
                observations, batch_size = self._observations(request.observations, serving)
                if restart:
                    state = serving.policy.get_initial_state(batch_size)
                state = self._act(serving, request, observations, state, response.act, context)
            except Exception as error:
                _abort(context, "StreamAct", error, self._rejected_log)
            if message.episode_end:
                state = None
            yield response

    def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: grpc.ServicerContext
    ) -> pb.ListPoliciesResponse:
        response = pb.ListPoliciesResponse()
        for name in self._policies.names():
            summary = response.policies.add(name=name)
            self._describe_versions(name, summary.versions)
        for entry in self._policies.catalog.ignored:
            response.ignored.add(entry=entry.entry, reason=entry.reason)
        return response

    def GetPolicy(self, request: pb.GetPolicyRequest, context: grpc.ServicerContext) -> pb.GetPolicyResponse:
        try:
            served = self._resolve(request)
        except Exception as error:
            _abort(context, "GetPolicy", error, self._rejected_log)
        response = pb.GetPolicyResponse(
            policy_name=served.name,
            policy_version=served.version,
            observation_space=space_to_proto(served.policy.observation_space),
            action_space=space_to_proto(served.policy.action_space),
            metadata_json=served.metadata_json,
        )
        self._describe_versions(served.name, response.versions)
        return response

    def _resolve(self, request: pb.ActRequest | pb.GetPolicyRequest) -> ServedVersion:
        try:
            return self._policies.resolve(request.policy_name, _version(request), request.version_label)
        except PolicyNotFoundError as error:
            raise RequestError(grpc.StatusCode.NOT_FOUND, str(error)) from None
        except PolicyUnavailableError as error:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from None

    def _observations(self, tensor: pb.Tensor, served: ServedVersion) -> tuple[np.ndarray, int | None]:
        """The observation array (validated further by the policy) and its batch size, if batched."""
        if tensor.dtype != pb.DATA_TYPE_FLOAT32:
            raise ValueError(
                f"observations have data type {data_type_name(tensor.dtype)}; "
                f"expected DATA_TYPE_FLOAT32 for {served.policy.observation_space}"
            )
        observations = from_tensor(tensor, "observations")
        if observations.ndim != len(served.policy.observation_space.shape) + 1:
            return observations, None
        batch_size = len(observations)
        if batch_size > self._max_batch_size:
            message = (
                f"batch of {batch_size} observations exceeds the server's limit of {self._max_batch_size}"
            )
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        return observations, batch_size

    def _act(
        self,
        served: ServedVersion,
        request: pb.ActRequest,
        observations: np.ndarray,
        state: PolicyState,
        response: pb.ActResponse,
        context: grpc.ServicerContext,
    ) -> PolicyState:
        """Fill `response` with the actions (and distribution) for `observations`; return the next state."""
        begin = time.perf_counter()
        mode = mode_name(request.mode)
        if context.time_remaining() <= 0:
            message = "the call's deadline passed before the server got to it; nothing was computed"
            raise RequestError(grpc.StatusCode.DEADLINE_EXCEEDED, message)
        policy = served.policy if self._batching is None else self._batching.policy_for(served)
        inference_begin = time.perf_counter()
        try:
            step = policy.action(
                observations,
                state,
                mode,
                epsilon=request.epsilon if request.HasField("epsilon") else None,
                seed=request.seed if request.HasField("seed") else None,
            )
            if request.return_distribution:
                for name, parameter in policy.distribution(observations, state).parameters().items():
                    fill_tensor(response.distribution[name], parameter)
        except BatchQueueFullError as error:
            raise RequestError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)) from None
        response.policy_name = served.name
        response.policy_version = served.version
        fill_tensor(response.actions, step.action)
        inference = time.perf_counter() - inference_begin
        batch_size = (
            len(observations) if observations.ndim > len(served.policy.observation_space.shape) else 1
        )
        self._metrics.observe_step(
            served.name, served.version, batch_size, time.perf_counter() - begin, inference
        )
        if policy is served.policy:  # batched calls are counted per model call by the scheduler
            self._metrics.observe_model_batch(served.name, batch_size)
        return step.state

    def _describe_versions(self, name: str, versions: Any) -> None:
        for served in self._policies.versions(name):
            versions.add(
                version=served.version,
                state=pb.VERSION_STATE_AVAILABLE if served.available else pb.VERSION_STATE_FAILED,
                error=served.error,
                labels=self._policies.labels_of(name, served.version),
            )


def _version(request: pb.ActRequest | pb.GetPolicyRequest) -> int | None:
    return request.policy_version if request.HasField("policy_version") else None


def _abort(context: grpc.ServicerContext, method: str, error: Exception, log: RateLimitedLog) -> None:
    """End the call with the status `error` maps to; unexpected errors are logged with a traceback."""
    if isinstance(error, RequestError):
        code = error.code
    elif isinstance(error, ValueError):
        code = grpc.StatusCode.INVALID_ARGUMENT
    else:
        code = grpc.StatusCode.INTERNAL
        message = f"{type(error).__name__}: {error}"
        log_event(
            logging.ERROR, "request_failed", method=method, code=code.name, error=message, exc_info=error
        )
        context.abort(code, message)
    log.log(
        logging.INFO,
        "request_rejected",
        method=method,
        peer=context.peer(),
        code=code.name,
        error=str(error)[:1000],
    )
    context.abort(code, str(error))

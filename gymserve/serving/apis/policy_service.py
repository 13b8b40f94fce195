"""The PolicyService servicer: requests in, policy calls, responses out, errors as status codes.

Versions are resolved, policies run and errors mapped to status codes by `PolicyCalls`,
shared with the TensorFlow Serving API. Every tensor's declared shape is checked against the
request's budget (see `request_limits`) before it is read, and client strings repeated in
messages are capped (see `echo`). A unary Act starts from the state in its request (the
policy's initial state when it has none) and returns the next one; a StreamAct keeps the state
between its messages and restarts it at episode boundaries.
A stream keeps the version it resolved until its episode ends, so a reload never switches
policies in the middle of an episode. The served policy objects are shared by all calls, so
the server never calls `Policy.reset`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from gymserve.serving.apis.protocol import Protocol, ProtocolContext, rpcs_of
from gymserve.serving.client.action_modes import mode_name
from gymserve.serving.client.protos import SERVICE_NAME
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.protos import policy_service_pb2_grpc as pb_grpc
from gymserve.serving.client.spaces import space_to_proto
from gymserve.serving.client.tensors import DTYPES, data_type_name, fill_tensor, from_tensor
from gymserve.serving.server.policy_calls import PolicyCalls
from gymserve.serving.server.request_limits import MAX_RANK, RequestBudget
from gymserve.serving.server.served_policies import ServedVersion

if TYPE_CHECKING:
    from gymserve.policies import Policy, PolicyStep
    from gymserve.policies.base import PolicyState


class PolicyService(pb_grpc.PolicyServiceServicer):
    """Answers the four PolicyService RPCs from a `ServedPolicies` (stream limits are the server's)."""

    def __init__(self, calls: PolicyCalls):
        self._calls = calls
        self._policies = calls.policies

    def Act(self, request: pb.ActRequest, context: grpc.ServicerContext) -> pb.ActResponse:
        response = pb.ActResponse()
        try:
            served = self._resolve(request)
            budget = self._calls.limits.budget()
            observations, batch_size = self._observations(request.observations, served, budget)
            if request.state:
                state = tuple(_decoded(part, f"state[{i}]", budget) for i, part in enumerate(request.state))
            else:
                state = served.policy.get_initial_state(batch_size)
            next_state = self._act(served, request, observations, state, response, context)
            for part in next_state:
                fill_tensor(response.state.add(), np.asarray(part))
        except Exception as error:
            self._calls.abort(context, "Act", error)
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
                if request.state:
                    raise ValueError("StreamAct keeps the policy state itself; send no state in its requests")
                asked = (request.policy_name, _version(request), request.version_label)
                restart = state is None or message.episode_start or asked != resolved_for
                if restart:
                    serving, resolved_for = self._resolve(request), asked  # kept until the episode ends
                budget = self._calls.limits.budget()
                observations, batch_size = self._observations(request.observations, serving, budget)
                if restart:
                    state = serving.policy.get_initial_state(batch_size)
                state = self._act(serving, request, observations, state, response.act, context)
            except Exception as error:
                self._calls.abort(context, "StreamAct", error)
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
            self._calls.abort(context, "GetPolicy", error)
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
        return self._calls.resolve(request.policy_name, _version(request), request.version_label)

    def _observations(
        self, tensor: pb.Tensor, served: ServedVersion, budget: RequestBudget
    ) -> tuple[np.ndarray, int | None]:
        """The observation array (validated further by the policy) and its batch size, if batched."""
        if tensor.dtype not in (pb.DATA_TYPE_FLOAT32, pb.DATA_TYPE_UINT8):
            raise ValueError(
                f"observations have data type {data_type_name(tensor.dtype)}; "
                f"expected DATA_TYPE_FLOAT32 (or DATA_TYPE_UINT8) for {served.policy.observation_space}"
            )
        batched_rank = len(served.policy.observation_space.shape) + 1
        observations = _decoded(tensor, "observations", budget, max_rank=batched_rank)
        if observations.ndim != batched_rank:
            return observations, None
        batch_size = len(observations)
        self._calls.limits.check_batch_size(batch_size)
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
        mode = mode_name(request.mode)
        epsilon = request.epsilon if request.HasField("epsilon") else None
        seed = request.seed if request.HasField("seed") else None

        def act(policy: Policy) -> tuple[PolicyStep, dict[str, np.ndarray]]:
            step = policy.action(observations, state, mode, epsilon=epsilon, seed=seed)
            distribution = policy.distribution(observations, state) if request.return_distribution else None
            return step, {} if distribution is None else distribution.parameters()

        batched = observations.ndim > len(served.policy.observation_space.shape)
        step, parameters = self._calls.run(served, len(observations) if batched else 1, context, act)
        response.policy_name = served.name
        response.policy_version = served.version
        fill_tensor(response.actions, step.action)
        for name, parameter in parameters.items():
            fill_tensor(response.distribution[name], parameter)
        return step.state

    def _describe_versions(self, name: str, versions: Any) -> None:
        for served in self._policies.versions(name):
            versions.add(
                version=served.version,
                state=pb.VERSION_STATE_AVAILABLE if served.available else pb.VERSION_STATE_FAILED,
                error=served.error,
                labels=self._policies.labels_of(name, served.version),
            )


def _decoded(tensor: pb.Tensor, what: str, budget: RequestBudget, max_rank: int = MAX_RANK) -> np.ndarray:
    """`tensor`'s array, once the shape it declares fits the request's budget.

    The array views the message's bytes, whose count must match the shape, so it is never
    larger than the message itself.
    """
    dtype = DTYPES.get(tensor.dtype)
    if dtype is not None:  # otherwise from_tensor names the data types it reads
        budget.take(len(tensor.shape), tensor.shape, dtype.itemsize, what, max_rank)
    return from_tensor(tensor, what)


def _version(request: pb.ActRequest | pb.GetPolicyRequest) -> int | None:
    return request.policy_version if request.HasField("policy_version") else None


def register(server: grpc.Server, context: ProtocolContext) -> None:
    pb_grpc.add_PolicyServiceServicer_to_server(PolicyService(context.calls), server)


PROTOCOL = Protocol(
    name="policy_service",
    rpcs=rpcs_of(pb.DESCRIPTOR.services_by_name["PolicyService"]),
    register=register,
    reflected_services=(SERVICE_NAME,),
)

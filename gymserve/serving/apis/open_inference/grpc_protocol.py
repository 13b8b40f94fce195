"""The Open Inference Protocol (KServe v2, Triton): `inference.GRPCInferenceService` on the policy server.

A model is a served policy; `model_version` a version number (empty: the latest that loaded).
ModelInfer takes `observations` (FP32, [batch, *observation shape]) and, for a recurrent
policy, its state parts `state_0`, `state_1`, ... (the initial state when absent), as the
policy's exports name them. It answers the outputs `outputs[].name` asks for: `action`, the
distribution's parameters (`logits`, or `mean` and `log_std`, ...) and `next_state_0`, ...;
by default `action` and the next state. Request `parameters` choose the action as
`core` says: `mode` a string_param, `epsilon` a double_param, `seed` an
int64_param. What these mean, and every check on them, is shared with the REST transport.

Inputs sent as `raw_input_contents` get `raw_output_contents` back, typed `contents` typed.
Calls go through `PolicyCalls`: the same request budget, batching, metrics and status codes as
PolicyService. ServerLive and ServerReady are answered without the bearer token, like health
checks; every other call needs it. The server is ready while it serves (not shutting down) and
at least one policy has a version that loaded; a model while the version asked for (or one,
when none is named) loaded and warmed up. A version that failed to load is not ready, and
ModelInfer on it answers FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import grpc
import numpy as np
from grpc_health.v1 import health_pb2

import gymserve
from gymserve.policies.signatures import OBSERVATIONS, SEED
from gymserve.serving.apis.inference import grpc_service_pb2 as pb
from gymserve.serving.apis.inference import grpc_service_pb2_grpc as pb_grpc
from gymserve.serving.apis.open_inference import core, grpc_tensors
from gymserve.serving.apis.protocol import Protocol, ProtocolContext, rpcs_of
from gymserve.serving.server.echo import echo
from gymserve.serving.server.request_limits import MAX_RANK, RequestError

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.request_limits import RequestBudget
    from gymserve.serving.server.served_policies import ServedVersion

SERVICE_NAME = "inference.GRPCInferenceService"
SERVER_NAME = "gymserve"
# the InferParameter field each parameter comes in
PARAMETER_KINDS = {core.MODE: "string_param", core.EPSILON: "double_param", SEED: "int64_param"}
PUBLIC_METHODS = ("ServerLive", "ServerReady")  # probes, answered without the token like health checks


class InferenceService(pb_grpc.GRPCInferenceServiceServicer):
    """The six calls of the Open Inference Protocol's gRPC service, answered by served policies."""

    def __init__(self, context: ProtocolContext):
        self._calls: PolicyCalls = context.calls
        self._health = context.health

    def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.ServicerContext
    ) -> pb.ServerReadyResponse:
        status = self._health.Check(health_pb2.HealthCheckRequest(service=""), context).status
        policies = self._calls.policies
        serving = any(policies.is_serving(name) for name in policies.names())
        return pb.ServerReadyResponse(ready=status == health_pb2.HealthCheckResponse.SERVING and serving)

    def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            self._resolve(request.name, request.version)
        except RequestError as error:
            if error.code != grpc.StatusCode.FAILED_PRECONDITION:
                self._calls.abort(context, "ModelReady", error)
            return pb.ModelReadyResponse(ready=False)
        except Exception as error:
            self._calls.abort(context, "ModelReady", error)
        return pb.ModelReadyResponse(ready=True)

    def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=gymserve.__version__)

    def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ModelMetadataResponse:
        response = pb.ModelMetadataResponse()
        try:
            served = self._resolve(request.name, request.version)
            response.name = served.name
            response.platform = core.PLATFORM
            response.versions.extend(
                str(v.version) for v in self._calls.policies.versions(served.name) if v.available
            )
            _describe(served.policy, response)
        except Exception as error:
            self._calls.abort(context, "ModelMetadata", error)
        return response

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        response = pb.ModelInferResponse()
        try:
            served = self._resolve(request.model_name, request.model_version)
            choice = core.action_choice(plain_parameters(request.parameters))
            inputs = self._inputs(request, served.policy, self._calls.limits.budget())
            observations = inputs.pop(OBSERVATIONS)
            batch_size = len(observations)
            self._calls.limits.check_batch_size(batch_size)
            wanted = core.wanted_outputs([output.name for output in request.outputs], served.policy)
            outputs = self._calls.run(
                served,
                batch_size,
                context,
                lambda policy: core.infer(policy, observations, inputs, choice, wanted),
            )
            outputs = core.select_outputs(outputs, wanted)
            response.model_name = served.name
            response.model_version = str(served.version)
            response.id = request.id
            _fill_outputs(response, outputs, raw=bool(request.raw_input_contents))
        except Exception as error:
            self._calls.abort(context, "ModelInfer", error)
        return response

    def _resolve(self, name: str, version: str) -> ServedVersion:
        if version and not version.isdecimal():
            raise ValueError(f"model version {echo(version)} is not a version number")
        return self._calls.resolve(name, int(version) if version else None, "")

    def _inputs(self, request: pb.ModelInferRequest, policy: Policy, budget: RequestBudget) -> dict:
        """Each input's array by name: observations and the policy's state parts, nothing else."""
        known = core.input_names(policy)
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise ValueError(
                f"the request has {len(request.inputs)} inputs and {len(raw)} raw_input_contents"
            )
        observation_rank = len(policy.observation_space.shape) + 1
        arrays: dict[str, np.ndarray] = {}
        for index, tensor in enumerate(request.inputs):
            core.check_input_name(tensor.name, known, arrays)
            what = f"input {tensor.name}"
            max_rank = observation_rank if tensor.name == OBSERVATIONS else MAX_RANK
            dtype, shape = core.declared_shape(tensor.datatype, tensor.shape, what, budget, max_rank)
            if tensor.name == OBSERVATIONS:
                core.check_observations(tensor.datatype, shape, policy.observation_space)
            if raw:
                if tensor.HasField("contents"):
                    raise ValueError(f"{what} has contents; with raw_input_contents no input may")
                arrays[tensor.name] = grpc_tensors.from_raw(raw[index], dtype, shape, what)
            else:
                arrays[tensor.name] = grpc_tensors.from_contents(tensor.contents, dtype, shape, what)
        if OBSERVATIONS not in arrays:
            raise ValueError(f"the request has no input {OBSERVATIONS}")
        core.check_state_inputs(arrays, policy)
        return arrays


def plain_parameters(parameters: Mapping[str, pb.InferParameter]) -> dict[str, object]:
    """Each parameter's value; a known one must come in the field `PARAMETER_KINDS` names."""
    values = {}
    for name, parameter in parameters.items():
        given = parameter.WhichOneof("parameter_choice")
        kind = PARAMETER_KINDS.get(name, given)
        if given != kind:
            raise ValueError(f"parameter {name} is a {given or 'empty value'}; expected a {kind}")
        values[name] = getattr(parameter, given) if given else None
    return values


def _fill_outputs(response: pb.ModelInferResponse, outputs: dict[str, np.ndarray], raw: bool) -> None:
    for name, array in outputs.items():
        tensor = response.outputs.add(name=name, shape=array.shape)
        if raw:
            tensor.datatype, content = grpc_tensors.to_raw(array)
            response.raw_output_contents.append(content)
        else:
            tensor.datatype = grpc_tensors.fill_contents(tensor.contents, array)


def _describe(policy: Policy, response: pb.ModelMetadataResponse) -> None:
    inputs, outputs = core.describe(policy)
    for tensor in inputs:
        response.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
    for tensor in outputs:
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)


def register(server: grpc.Server, context: ProtocolContext) -> None:
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceService(context), server)


PROTOCOL = Protocol(
    name="open_inference",
    rpcs=tuple(
        replace(rpc, public=rpc.method in PUBLIC_METHODS)
        for rpc in rpcs_of(pb.DESCRIPTOR.services_by_name["GRPCInferenceService"])
    ),
    register=register,
    reflected_services=(SERVICE_NAME,),
)

"""The Open Inference Protocol (KServe v2, Triton): `inference.GRPCInferenceService` on the policy server.

A model is a served policy; `model_version` a version number (empty: the latest that loaded).
ModelInfer takes `observations` (FP32, [batch, *observation shape]) and, for a recurrent
policy, its state parts `state_0`, `state_1`, ... (the initial state when absent), as the
policy's exports name them. It answers the outputs `outputs[].name` asks for: `action`, the
distribution's parameters (`logits`, or `mean` and `log_std`, ...) and `next_state_0`, ...;
by default `action` and the next state. Request `parameters` choose the action:

    mode      string  "greedy" (default), "stochastic", "epsilon_greedy" (or "epsilon")
    epsilon   double  the exploration rate of "epsilon_greedy"
    seed      int64   >= 0: a stochastic draw equal to gymserve Act's with the same seed

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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2

import gymserve
from gymserve.policies import ActionMode
from gymserve.policies.signatures import ACTION, OBSERVATIONS, SEED, next_state_name, state_name
from gymserve.serving.apis import oip_tensors
from gymserve.serving.apis.inference import grpc_service_pb2 as pb
from gymserve.serving.apis.inference import grpc_service_pb2_grpc as pb_grpc
from gymserve.serving.apis.protocol import Protocol, ProtocolContext, rpcs_of
from gymserve.serving.server.echo import echo, echo_all
from gymserve.serving.server.request_limits import MAX_RANK, RequestError

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.request_limits import RequestBudget
    from gymserve.serving.server.served_policies import ServedVersion

SERVICE_NAME = "inference.GRPCInferenceService"
SERVER_NAME = "gymserve"
PLATFORM = "gymserve"
MODE = "mode"
EPSILON = "epsilon"
MODES = {
    "greedy": ActionMode.GREEDY,
    "stochastic": ActionMode.STOCHASTIC,
    "epsilon_greedy": ActionMode.EPSILON_GREEDY,
    "epsilon": ActionMode.EPSILON_GREEDY,
}
PARAMETERS = (MODE, EPSILON, SEED)
PUBLIC_METHODS = ("ServerLive", "ServerReady")  # probes, answered without the token like health checks


@dataclass(frozen=True)
class ActionChoice:
    """How ModelInfer picks actions, from the request's parameters."""

    mode: ActionMode
    epsilon: float | None
    seed: int | None


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
            response.platform = PLATFORM
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
            choice = action_choice(request.parameters)
            inputs = self._inputs(request, served.policy, self._calls.limits.budget())
            observations = inputs.pop(OBSERVATIONS)
            batch_size = len(observations)
            self._calls.limits.check_batch_size(batch_size)
            wanted = [output.name for output in request.outputs]
            outputs = self._infer(served, observations, inputs, choice, wanted, context)
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
        state_names = [state_name(i) for i in range(len(policy.policy_state_spec))]
        known = [OBSERVATIONS, *state_names]
        raw = request.raw_input_contents
        if raw and len(raw) != len(request.inputs):
            raise ValueError(
                f"the request has {len(request.inputs)} inputs and {len(raw)} raw_input_contents"
            )
        observation_rank = len(policy.observation_space.shape) + 1
        arrays: dict[str, np.ndarray] = {}
        for index, tensor in enumerate(request.inputs):
            if tensor.name not in known or tensor.name in arrays:
                raise ValueError(
                    f"input {echo(tensor.name)} is unknown or repeated; model inputs: {', '.join(known)}"
                )
            what = f"input {tensor.name}"
            max_rank = observation_rank if tensor.name == OBSERVATIONS else MAX_RANK
            dtype, shape = oip_tensors.declared_shape(tensor.datatype, tensor.shape, what, budget, max_rank)
            if tensor.name == OBSERVATIONS:
                _check_observations(tensor.datatype, shape, policy)
            if raw:
                if tensor.HasField("contents"):
                    raise ValueError(f"{what} has contents; with raw_input_contents no input may")
                arrays[tensor.name] = oip_tensors.from_raw(raw[index], dtype, shape, what)
            else:
                arrays[tensor.name] = oip_tensors.from_contents(tensor.contents, dtype, shape, what)
        if OBSERVATIONS not in arrays:
            raise ValueError(f"the request has no input {OBSERVATIONS}")
        missing = [name for name in state_names if name not in arrays]
        if missing and len(missing) != len(state_names):
            raise ValueError(f"the request gives part of the state; missing: {', '.join(missing)}")
        return arrays

    def _infer(
        self,
        served: ServedVersion,
        observations: np.ndarray,
        state_inputs: dict[str, np.ndarray],
        choice: ActionChoice,
        wanted: list[str],
        context: grpc.ServicerContext,
    ) -> dict[str, np.ndarray]:
        """The outputs named in `wanted` (default: the action and the next state), in its order."""
        state_parts = len(served.policy.policy_state_spec)
        next_states = [next_state_name(i) for i in range(state_parts)]
        wanted = wanted or [ACTION, *next_states]
        needs_distribution = any(name not in (ACTION, *next_states) for name in wanted)

        def infer(policy: Policy) -> dict[str, np.ndarray]:
            if state_inputs:
                state = tuple(state_inputs[state_name(i)] for i in range(state_parts))
            else:
                state = policy.get_initial_state(len(observations))
            step = policy.action(observations, state, choice.mode, epsilon=choice.epsilon, seed=choice.seed)
            outputs = {ACTION: step.action, **dict(zip(next_states, step.state, strict=True))}
            if needs_distribution:
                outputs.update(policy.distribution(observations, state).parameters())
            return outputs

        outputs = self._calls.run(served, len(observations), context, infer)
        unknown = [name for name in wanted if name not in outputs]
        if unknown:
            raise ValueError(f"no output {echo_all(unknown)}; model outputs: {', '.join(outputs)}")
        return {name: np.asarray(outputs[name]) for name in wanted}


def action_choice(parameters: Mapping[str, pb.InferParameter]) -> ActionChoice:
    """The action mode, epsilon and seed the request's `parameters` ask for."""
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise ValueError(f"unknown parameter {echo_all(unknown)}; parameters: {', '.join(PARAMETERS)}")
    mode = _parameter(parameters, MODE, "string_param")
    if mode is not None and mode not in MODES:
        raise ValueError(f"parameter mode is {echo(mode)}; expected one of {', '.join(MODES)}")
    seed = _parameter(parameters, SEED, "int64_param")
    if seed is not None and seed < 0:
        raise ValueError(f"parameter seed is {seed}; expected an integer >= 0")
    epsilon = _parameter(parameters, EPSILON, "double_param")
    return ActionChoice(MODES[mode] if mode is not None else ActionMode.GREEDY, epsilon, seed)


def _parameter(parameters: Mapping[str, pb.InferParameter], name: str, kind: str) -> Any:
    """The value of parameter `name`, which must be of `kind`; None when the request has none."""
    if name not in parameters:
        return None
    parameter = parameters[name]
    given = parameter.WhichOneof("parameter_choice")
    if given != kind:
        raise ValueError(f"parameter {name} is a {given or 'empty value'}; expected a {kind}")
    return getattr(parameter, kind)


def _check_observations(datatype: str, shape: tuple[int, ...], policy: Policy) -> None:
    space = policy.observation_space
    if datatype != "FP32" or shape[1:] != space.shape or not shape:
        raise ValueError(
            f"input {OBSERVATIONS} is {echo(datatype)} of shape {list(shape)}; "
            f"expected FP32 of shape [batch, {', '.join(map(str, space.shape))}] for {space}"
        )


def _fill_outputs(response: pb.ModelInferResponse, outputs: dict[str, np.ndarray], raw: bool) -> None:
    for name, array in outputs.items():
        tensor = response.outputs.add(name=name, shape=array.shape)
        if raw:
            tensor.datatype, content = oip_tensors.to_raw(array)
            response.raw_output_contents.append(content)
        else:
            tensor.datatype = oip_tensors.fill_contents(tensor.contents, array)


def _describe(policy: Policy, response: pb.ModelMetadataResponse) -> None:
    """The inputs and outputs ModelInfer takes and gives for `policy`, from one call on a sample."""
    space = policy.observation_space
    sample = np.zeros((1, *space.shape), np.float32).clip(space.low, space.high)
    state = policy.get_initial_state(1)
    step = policy.action(sample, state)
    response.inputs.add(name=OBSERVATIONS, datatype="FP32", shape=(-1, *space.shape))
    outputs = {ACTION: step.action, **policy.distribution(sample, state).parameters()}
    for i, part in enumerate(state):
        part = np.asarray(part)
        response.inputs.add(
            name=state_name(i), datatype=oip_tensors.datatype_of(part), shape=(-1, *part.shape[1:])
        )
        outputs[next_state_name(i)] = part
    for name, array in outputs.items():
        array = np.asarray(array)
        response.outputs.add(name=name, datatype=oip_tensors.datatype_of(array), shape=(-1, *array.shape[1:]))


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

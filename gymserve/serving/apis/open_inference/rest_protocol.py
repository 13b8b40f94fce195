"""The Open Inference Protocol's REST API (KServe v2, Triton) on the HTTP port.

    GET  /v2/health/live                          {"live": true}               (no token)
    GET  /v2/health/ready                         200 while a policy serves    (no token)
    GET  /v2/models/NAME[/versions/N]             model metadata
    GET  /v2/models/NAME[/versions/N]/ready       200 when it serves           (no token)
    POST /v2/models/NAME[/versions/N]/infer       inference

An infer request has one input, "observations" (datatype FP32, shape [batch, *observation
shape], data flat or nested in row-major order); a recurrent policy starts from its initial
state. Outputs, their names and data types, the "parameters" that choose the action and every
check on them are those of the gRPC transport, shared in `core`; this module
only reads and writes JSON, and the binary tensor data extension tritonclient.http uses by
default: an input with parameter binary_data_size has its little-endian bytes after the JSON
header instead of "data"; an output whose parameter binary_data is true (by default the
request parameter binary_data_output, a transport parameter the policy never sees) comes back
the same way, with binary_data_size in place of "data".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies.signatures import OBSERVATIONS
from gymserve.policies.small_arrays import FLOAT32
from gymserve.serving.apis.http_protocol import (
    NAME,
    VERSION,
    HttpError,
    HttpProtocol,
    HttpRoute,
    Json,
    JsonWithBytes,
    NoDeadline,
    path_version,
)
from gymserve.serving.apis.json_tensors import numbers
from gymserve.serving.apis.open_inference import core
from gymserve.serving.server.echo import echo_all

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.served_policies import ServedVersion

_MODEL = f"/v2/models/{NAME}{VERSION}"
BINARY_DATA_SIZE = "binary_data_size"  # input and answer parameter: bytes of the tensor after the JSON
BINARY_DATA = "binary_data"  # output parameter: answer this output as bytes
BINARY_DATA_OUTPUT = "binary_data_output"  # request parameter: BINARY_DATA's default
_NO_PARAMETERS: Mapping[str, Json] = MappingProxyType({})  # what a message without "parameters" has
_INPUT_NAMES = (OBSERVATIONS,)
_INPUT = f"input {OBSERVATIONS}"
_DATA = f"{OBSERVATIONS} data"
_INT = {int}  # the type of every dimension of a shape
DECLARED_INPUTS = 1024  # input headers remembered as checked; all are forgotten when there are more


class OpenInferenceRest:
    """The route handlers, answering through the server's `PolicyCalls`."""

    def __init__(self, calls: PolicyCalls):
        self._calls = calls
        # (datatype, shape, observation space's shape and dtype) -> the input's dtype and shape, once
        # checked: a client sends the same header call after call, and its checks took a fifth of a
        # small policy's served call
        self._declared: dict[tuple, tuple[np.dtype, tuple[int, ...]]] = {}

    def live(self, path: Mapping[str, str], body: Json) -> Json:
        return {"live": True}

    def ready(self, path: Mapping[str, str], body: Json) -> Json:
        policies = self._calls.policies
        if not any(policies.is_serving(name) for name in policies.names()):
            raise HttpError(503, "no policy has a version that loaded")
        return {"ready": True}

    def model_ready(self, path: Mapping[str, str], body: Json) -> Json:
        served = self._resolve(path)
        return {"name": served.name, "version": str(served.version), "ready": True}

    def metadata(self, path: Mapping[str, str], body: Json) -> Json:
        served = self._resolve(path)
        inputs, outputs = core.describe(served.policy)
        available = [v.version for v in self._calls.policies.versions(served.name) if v.available]
        return {
            "name": served.name,
            "versions": [str(version) for version in available],
            "platform": core.PLATFORM,
            "inputs": _tensor_metadata(inputs),
            "outputs": _tensor_metadata(outputs),
        }

    def infer(self, path: Mapping[str, str], body: JsonWithBytes) -> Json | JsonWithBytes:
        request = body.document
        if not isinstance(request, dict):
            raise ValueError('the body must be a JSON object with "inputs"')
        served = self._resolve(path)
        observations = self._observations(request.get("inputs"), served.policy, body.data)
        self._calls.limits.check_batch_size(len(observations))
        parameters = request.get("parameters", _NO_PARAMETERS)
        binary_default = False
        if parameters is not _NO_PARAMETERS:
            parameters = _object(parameters, '"parameters"')
            if BINARY_DATA_OUTPUT in parameters:
                parameters = dict(parameters)
                binary_default = _flag(parameters.pop(BINARY_DATA_OUTPUT), f"parameter {BINARY_DATA_OUTPUT}")
        outputs = request.get("outputs")
        binary = {} if outputs is None else _requested_outputs(outputs, binary_default)
        # what a request without parameters asks needs no parsing
        choice = core.GREEDY if parameters is _NO_PARAMETERS else core.action_choice(parameters)
        wanted = core.wanted_outputs(list(binary), served.policy)
        outputs = self._calls.run(
            served,
            len(observations),
            NoDeadline(),
            lambda policy: core.infer(policy, observations, {}, choice, wanted),
        )
        tensors, data = [], []
        for name, array in core.select_outputs(outputs, wanted).items():
            if binary.get(name, binary_default):
                data.append(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
                tensors.append(_tensor(name, array, {"parameters": {BINARY_DATA_SIZE: len(data[-1])}}))
            else:
                tensors.append(_tensor(name, array, {"data": array.ravel().tolist()}))
        answer = {"model_name": served.name, "model_version": str(served.version), "outputs": tensors}
        if isinstance(request.get("id"), str):
            answer["id"] = request["id"]
        return JsonWithBytes(answer, b"".join(data)) if data else answer

    def _observations(self, inputs: Json, policy: Policy, binary: bytes | memoryview) -> np.ndarray:
        """The one input, observations, checked against the budget before its array is built."""
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise ValueError('"inputs" must be a list of one tensor, "observations"')
        tensor = inputs[0]
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise ValueError('the input needs a string "name" and "datatype"')
        if name != OBSERVATIONS:
            core.check_input_name(name, _INPUT_NAMES, {})  # raises, naming the inputs
        space = policy.observation_space
        space_shape = space.shape
        rank = len(space_shape) + 1
        # {*map(type, shape)} <= _INT: only ints (no bools), told without a Python call per dimension
        if not isinstance(shape, list) or len(shape) > rank or not {*map(type, shape)} <= _INT:
            raise ValueError(f'"shape" of {OBSERVATIONS} must be a list of at most {rank} integers')
        key = (datatype, tuple(shape), space_shape, space.dtype)
        declared = self._declared.get(key)
        if declared is None:  # the checks read nothing else but the server's fixed limits
            declared = core.declared_shape(datatype, shape, _INPUT, self._calls.limits.budget(), rank)
            core.check_observations(datatype, declared[1], space)
            if len(self._declared) >= DECLARED_INPUTS:
                self._declared.clear()
            self._declared[key] = declared
        dtype, shape = declared
        size = _binary_data_size(tensor["parameters"], _INPUT) if "parameters" in tensor else None
        if len(binary) != (size or 0):
            raise ValueError(
                f"the body has {len(binary)} bytes after its JSON header; "
                f"the inputs' {BINARY_DATA_SIZE} add up to {size or 0}"
            )
        if size is not None:
            needed = math.prod(shape) * dtype.itemsize
            if size != needed or "data" in tensor:
                raise ValueError(
                    f"{_INPUT} has {BINARY_DATA_SIZE} {size}; "
                    f'shape {list(shape)} needs {needed} and no "data"'
                )
            return np.frombuffer(binary, dtype).reshape(shape)
        data = tensor.get("data")
        values = numbers(data, FLOAT32, _DATA)
        count = math.prod(shape)
        if values.size != count:
            raise ValueError(f"{_DATA} has {values.size} values; shape {list(shape)} needs {count}")
        return values.reshape(shape)

    def _resolve(self, path: Mapping[str, str]) -> ServedVersion:
        return self._calls.resolve(path["name"], path_version(path["version"]), "")


def _is_int(value: Json) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _requested_outputs(outputs: Json, binary_default: bool) -> dict[str, bool]:
    """The outputs a request names, in its order, each with whether it is answered as bytes."""
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ValueError('"outputs" must be a list of {"name": ...} objects')
    requested = {}
    for output in outputs:
        what = f"parameters of output {output['name']!r}"
        parameters = _object(output.get("parameters", {}), what)
        _check_known(parameters, (BINARY_DATA,), what)
        binary = parameters.get(BINARY_DATA, binary_default)
        requested[output["name"]] = _flag(binary, f"{what}: {BINARY_DATA}")
    return requested


def _binary_data_size(parameters: Json, what: str) -> int | None:
    """The bytes an input's `parameters` say it has after the JSON header, or None (its data is JSON)."""
    parameters = _object(parameters, f"parameters of {what}")
    _check_known(parameters, (BINARY_DATA_SIZE,), f"parameters of {what}")
    size = parameters.get(BINARY_DATA_SIZE)
    if size is not None and not (_is_int(size) and size >= 0):
        raise ValueError(f"{BINARY_DATA_SIZE} of {what} must be an integer >= 0")
    return size


def _object(value: Json, what: str) -> dict[str, Json]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object")
    return value


def _check_known(parameters: Mapping[str, Json], known: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{what} has unknown {echo_all(unknown)}; known: {', '.join(known)}")


def _flag(value: Json, what: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{what} must be true or false")
    return value


def _tensor(name: str, array: np.ndarray, content: Json) -> Json:
    """An output's JSON: name, shape and datatype, then its `content` ("data" or "parameters")."""
    return {"name": name, "shape": list(array.shape), "datatype": core.datatype_of(array), **content}


def _tensor_metadata(tensors: list[core.TensorMetadata]) -> Json:
    return [
        {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)} for tensor in tensors
    ]


def routes(context: ProtocolContext) -> tuple[HttpRoute, ...]:
    rest = OpenInferenceRest(context.calls)
    return (
        HttpRoute("GET", "/v2/health/live", "oip_live", rest.live, public=True, runs_policy=False),
        HttpRoute("GET", "/v2/health/ready", "oip_ready", rest.ready, public=True, runs_policy=False),
        HttpRoute("GET", _MODEL, "oip_model_metadata", rest.metadata),
        HttpRoute(
            "GET", _MODEL + "/ready", "oip_model_ready", rest.model_ready, public=True, runs_policy=False
        ),
        HttpRoute("POST", _MODEL + "/infer", "oip_infer", rest.infer, binary=True),
    )


PROTOCOL = HttpProtocol(name="open_inference_rest", routes=routes)

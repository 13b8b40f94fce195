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
only reads and writes JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies.signatures import OBSERVATIONS
from gymserve.serving.apis.http_protocol import (
    NAME,
    VERSION,
    HttpError,
    HttpProtocol,
    HttpRoute,
    Json,
    NoDeadline,
    path_version,
)
from gymserve.serving.apis.json_tensors import implied_shape, numbers
from gymserve.serving.apis.open_inference import core

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.served_policies import ServedVersion

_MODEL = f"/v2/models/{NAME}{VERSION}"


class OpenInferenceRest:
    """The route handlers, answering through the server's `PolicyCalls`."""

    def __init__(self, calls: PolicyCalls):
        self._calls = calls

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

    def infer(self, path: Mapping[str, str], body: Json) -> Json:
        if not isinstance(body, dict):
            raise ValueError('the body must be a JSON object with "inputs"')
        served = self._resolve(path)
        observations = self._observations(body.get("inputs"), served.policy)
        self._calls.limits.check_batch_size(len(observations))
        wanted = core.wanted_outputs(_output_names(body.get("outputs")), served.policy)
        choice = core.action_choice(_parameters(body.get("parameters", {})))
        outputs = self._calls.run(
            served,
            len(observations),
            NoDeadline(),
            lambda policy: core.infer(policy, observations, {}, choice, wanted),
        )
        outputs = core.select_outputs(outputs, wanted)
        answer = {
            "model_name": served.name,
            "model_version": str(served.version),
            "outputs": [_tensor(name, array) for name, array in outputs.items()],
        }
        if isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        return answer

    def _observations(self, inputs: Json, policy: Policy) -> np.ndarray:
        """The one input, observations, checked against the budget before its array is built."""
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise ValueError('"inputs" must be a list of one tensor, "observations"')
        tensor = inputs[0]
        name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
        if not isinstance(name, str) or not isinstance(datatype, str):
            raise ValueError('the input needs a string "name" and "datatype"')
        core.check_input_name(name, [OBSERVATIONS], {})
        rank = len(policy.observation_space.shape) + 1
        if not isinstance(shape, list) or len(shape) > rank or not all(_is_int(size) for size in shape):
            raise ValueError(f'"shape" of {OBSERVATIONS} must be a list of at most {rank} integers')
        what = f"input {OBSERVATIONS}"
        _, shape = core.declared_shape(datatype, shape, what, self._calls.limits.budget(), rank)
        core.check_observations(datatype, shape, policy)
        data = tensor.get("data")
        values = numbers(data, np.float32, implied_shape(data, "observations data"), "observations data")
        if values.size != math.prod(shape):
            raise ValueError(
                f"observations data has {values.size} values; shape {list(shape)} needs {math.prod(shape)}"
            )
        return values.reshape(shape)

    def _resolve(self, path: Mapping[str, str]) -> ServedVersion:
        return self._calls.resolve(path["name"], path_version(path["version"]), "")


def _is_int(value: Json) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _output_names(outputs: Json) -> list[str]:
    if outputs is None:
        return []
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ValueError('"outputs" must be a list of {"name": ...} objects')
    return [output["name"] for output in outputs]


def _parameters(parameters: Json) -> dict[str, Json]:
    if not isinstance(parameters, dict):
        raise ValueError('"parameters" must be an object')
    return parameters


def _tensor(name: str, array: np.ndarray) -> Json:
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": core.datatype_of(array),
        "data": array.ravel().tolist(),
    }


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
        HttpRoute("POST", _MODEL + "/infer", "oip_infer", rest.infer),
    )


PROTOCOL = HttpProtocol(name="open_inference_rest", routes=routes)

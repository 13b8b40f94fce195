"""The Open Inference Protocol's REST API (KServe v2, Triton) on the HTTP port.

    GET  /v2/health/live                          {"live": true}               (no token)
    GET  /v2/health/ready                         200 while a policy serves    (no token)
    GET  /v2/models/NAME[/versions/N]             model metadata
    GET  /v2/models/NAME[/versions/N]/ready       200 when it serves           (no token)
    POST /v2/models/NAME[/versions/N]/infer       inference

An infer request has one input, "observations" (datatype FP32, shape [batch, *observation
shape], data flat or nested in row-major order). Outputs are "action" (INT64 for discrete
action spaces, FP32 for boxes; the default) and the distribution's parameters ("logits", or
"mean" and "log_std", ...), each named in "outputs" to get it. "parameters" choose the action
as gymserve's Act does: "mode" greedy (default) | stochastic | epsilon_greedy, "epsilon", and an
integer "seed" >= 0 that draws the same actions as Act with that seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

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
from gymserve.serving.apis.tf_signatures import check_seed, signature_specs
from gymserve.serving.server.echo import echo, echo_all

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.served_policies import ServedVersion

_MODEL = f"/v2/models/{NAME}{VERSION}"
DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}
PLATFORM = "gymserve"


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
        specs = signature_specs(served.policy)
        inputs = specs["greedy_action"][0]
        outputs = specs["greedy_action"][1] | specs["distribution"][1]
        available = [v.version for v in self._calls.policies.versions(served.name) if v.available]
        return {
            "name": served.name,
            "versions": [str(version) for version in available],
            "platform": PLATFORM,
            "inputs": _tensor_metadata(inputs),
            "outputs": _tensor_metadata(outputs),
        }

    def infer(self, path: Mapping[str, str], body: Json) -> Json:
        if not isinstance(body, dict):
            raise ValueError('the body must be a JSON object with "inputs"')
        served = self._resolve(path)
        observations = self._observations(body.get("inputs"), served.policy)
        self._calls.limits.check_batch_size(len(observations))
        wanted = _wanted_outputs(body.get("outputs"))
        mode, epsilon, seed = _parameters(body.get("parameters", {}))

        def infer(policy: Policy) -> dict[str, np.ndarray]:
            state = policy.get_initial_state(len(observations))
            step = policy.action(observations, state, mode, epsilon=epsilon, seed=seed)
            outputs = {"action": step.action}
            if wanted - {"action"}:
                outputs |= policy.distribution(observations, state).parameters()
            return outputs

        outputs = self._calls.run(served, len(observations), NoDeadline(), infer)
        unknown = sorted(wanted - outputs.keys())
        if unknown:
            raise ValueError(f"outputs names {echo_all(unknown)}; outputs: {', '.join(sorted(outputs))}")
        answer = {
            "model_name": served.name,
            "model_version": str(served.version),
            "outputs": [_tensor(name, outputs[name]) for name in sorted(wanted)],
        }
        if isinstance(body.get("id"), str):
            answer["id"] = body["id"]
        return answer

    def _observations(self, inputs: Json, policy: Policy) -> np.ndarray:
        """The one input, "observations", checked against the budget before its array is built."""
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise ValueError('"inputs" must be a list of one tensor, "observations"')
        tensor = inputs[0]
        if tensor.get("name") != "observations":
            raise ValueError(
                f'the input is named {echo(str(tensor.get("name")), 64)}; expected "observations"'
            )
        space = policy.observation_space
        expected = f"FP32 of shape [batch, {', '.join(map(str, space.shape))}] for {space}"
        if tensor.get("datatype") != "FP32":
            raise ValueError(
                f"observations have datatype {echo(str(tensor.get('datatype')), 64)}; expected {expected}"
            )
        shape = tensor.get("shape")
        rank = len(space.shape) + 1
        if not isinstance(shape, list) or len(shape) > rank or not all(_is_int(size) for size in shape):
            raise ValueError(f'"shape" of observations must be a list of at most {rank} integers')
        shape = self._calls.limits.budget().take(len(shape), shape, 4, "observations", max_rank=rank)
        if len(shape) != rank or shape[1:] != space.shape:
            raise ValueError(f"observations have shape {list(shape)}; expected {expected}")
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


def _wanted_outputs(outputs: Json) -> set[str]:
    if outputs is None:
        return {"action"}
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ValueError('"outputs" must be a list of {"name": ...} objects')
    return {output["name"] for output in outputs} or {"action"}


def _parameters(parameters: Json) -> tuple[str, float | None, int | None]:
    """mode, epsilon and seed from the request's "parameters" (checked further by the policy)."""
    if not isinstance(parameters, dict):
        raise ValueError('"parameters" must be an object')
    mode = parameters.get("mode", "greedy")
    if not isinstance(mode, str):
        raise ValueError('the "mode" parameter must be greedy, stochastic or epsilon_greedy')
    epsilon = parameters.get("epsilon")
    if epsilon is not None and (not isinstance(epsilon, (int, float)) or isinstance(epsilon, bool)):
        raise ValueError('the "epsilon" parameter must be a number')
    seed = parameters.get("seed")
    return mode, epsilon, None if seed is None else check_seed(seed)


def _tensor(name: str, array: np.ndarray) -> Json:
    dtype = np.dtype(np.int64) if array.dtype.kind in "iub" else np.dtype(np.float32)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": DATATYPES[dtype],
        "data": array.astype(dtype).ravel().tolist(),
    }


def _tensor_metadata(specs: dict) -> Json:
    return [
        {"name": name, "datatype": DATATYPES[dtype], "shape": list(shape)}
        for name, (dtype, shape) in specs.items()
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

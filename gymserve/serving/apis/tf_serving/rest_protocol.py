"""TensorFlow Serving's REST API on the HTTP port: model status, metadata and `:predict`.

    GET  /v1/models/NAME[/versions/N | /labels/L]             version status
    GET  /v1/models/NAME[/versions/N | /labels/L]/metadata    signatures
    POST /v1/models/NAME[/versions/N | /labels/L]:predict     {"instances": [...]} or {"inputs": ...}

The signatures, their inputs and outputs are those of the gRPC `PredictionService`
(`signatures`; `signature_name`, default serving_default). The row format's `instances`
is a list of observations (or of {"observations": ...} objects) and answers `predictions`,
one per observation; the columnar `inputs` is the observations or an object of named inputs
(the seed of stochastic_action is a scalar, so only this format carries it) and answers
`outputs`. A signature of several outputs (distribution) answers an object per observation
(rows) or of outputs (columns). Errors answer {"error": message}, as TensorFlow Serving does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from gymserve.serving.apis.http_protocol import NAME, HttpProtocol, HttpRoute, Json, NoDeadline, path_version
from gymserve.serving.apis.json_tensors import json_array
from gymserve.serving.apis.tf_serving.signatures import (
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    check_inputs,
    check_seed,
    run_signature,
    signature_specs,
)

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.apis.protocol import ProtocolContext
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.served_policies import ServedVersion

_MODEL = rf"/v1/models/{NAME}(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
_DTYPE_NAMES = {
    np.dtype(np.float32): "DT_FLOAT",
    np.dtype(np.int64): "DT_INT64",
    np.dtype(np.uint8): "DT_UINT8",
}
_OBJECT = {dict}  # the type of every row of instances given as objects


class TfServingRest:
    """The route handlers, answering through the server's `PolicyCalls`."""

    def __init__(self, calls: PolicyCalls):
        self._calls = calls

    def status(self, path: Mapping[str, str], body: Json) -> Json:
        """Every version of the policy, or the one the path names (one that failed to load, too)."""
        name, version, label = path["name"], path_version(path["version"]), path["label"] or ""
        versions = self._calls.policies.versions(name)
        if label:
            versions = [self._calls.resolve(name, None, label)]
        elif version is not None:
            versions = [served for served in versions if served.version == version]
        if not versions:
            self._calls.resolve(name, version, label)  # raises the NOT_FOUND naming what is served
        return {"model_version_status": [_version_status(served) for served in versions]}

    def metadata(self, path: Mapping[str, str], body: Json) -> Json:
        served = self._resolve(path)
        return {
            "model_spec": _model_spec(served, ""),
            "metadata": {"signature_def": {"signature_def": _signature_defs(served.policy)}},
        }

    def predict(self, path: Mapping[str, str], body: Json) -> Json:
        if not isinstance(body, dict):
            raise ValueError('the body must be a JSON object with "instances" or "inputs"')
        served = self._resolve(path)
        signature = body.get("signature_name", DEFAULT_SIGNATURE)
        if not isinstance(signature, str):
            raise ValueError("signature_name must be a string")
        if ("instances" in body) == ("inputs" in body):
            raise ValueError('give either "instances" (row format) or "inputs" (columnar format)')
        rows = "instances" in body
        inputs = _row_inputs(body["instances"]) if rows else _columnar_inputs(body["inputs"])
        check_inputs(signature, inputs)
        space = served.policy.observation_space
        budget = self._calls.limits.budget()
        observations = json_array(
            inputs["observations"], np.float32, "observations", budget, max_rank=len(space.shape) + 1
        )
        if observations.shape[1:] != space.shape or observations.ndim != len(space.shape) + 1:
            raise ValueError(
                f"observations have shape {list(observations.shape)}; "
                f"expected [batch, {', '.join(map(str, space.shape))}] for {space}"
            )
        self._calls.limits.check_batch_size(len(observations))
        seed = check_seed(inputs["seed"]) if "seed" in inputs else None

        def predict(policy: Policy) -> dict[str, np.ndarray]:
            return run_signature(policy, signature, observations, seed)

        outputs = self._calls.run(served, len(observations), NoDeadline(), predict)
        if len(outputs) == 1:  # the actions: the usual case
            (values,) = outputs.values()
            return {"predictions" if rows else "outputs": values.tolist()}
        listed = {key: value.tolist() for key, value in outputs.items()}
        if rows:
            rows_of_values = zip(*listed.values(), strict=True)
            return {"predictions": [dict(zip(listed, row, strict=True)) for row in rows_of_values]}
        return {"outputs": listed}

    def _resolve(self, path: Mapping[str, str]) -> ServedVersion:
        return self._calls.resolve(path["name"], path_version(path["version"]), path["label"] or "")


def _row_inputs(instances: Json) -> dict[str, Json]:
    """{"observations": [...]} from a list of observations or of {"observations": ...} objects."""
    if not isinstance(instances, list):
        raise ValueError('"instances" must be a list, one entry per observation')
    if instances and {*map(type, instances)} == _OBJECT:  # told without a Python call per row
        names = set(instances[0])
        if names != {"observations"} or any(set(row) != names for row in instances):
            raise ValueError(
                'each instance takes the one input "observations"; stochastic_action\'s scalar '
                'seed needs the columnar format {"inputs": {"observations": ..., "seed": N}}'
            )
        return {"observations": [row["observations"] for row in instances]}
    return {"observations": instances}


def _columnar_inputs(inputs: Json) -> dict[str, Json]:
    return dict(inputs) if isinstance(inputs, dict) else {"observations": inputs}


def _version_status(served: ServedVersion) -> Json:
    return {
        "version": str(served.version),
        "state": "AVAILABLE" if served.available else "END",
        "status": {
            "error_code": "OK" if served.available else "UNKNOWN",
            "error_message": served.error,
        },
    }


def _model_spec(served: ServedVersion, signature: str) -> Json:
    return {"name": served.name, "signature_name": signature, "version": str(served.version)}


def _signature_defs(policy: Policy) -> Json:
    """The signatures as TensorFlow Serving's REST metadata writes a SignatureDefMap."""

    def infos(specs: dict) -> Json:
        return {
            key: {
                "dtype": _DTYPE_NAMES[dtype],
                "tensor_shape": {
                    "dim": [{"size": str(size), "name": ""} for size in shape],
                    "unknown_rank": False,
                },
                "name": key,
            }
            for key, (dtype, shape) in specs.items()
        }

    return {
        name: {"inputs": infos(inputs), "outputs": infos(outputs), "method_name": PREDICT_METHOD}
        for name, (inputs, outputs) in signature_specs(policy).items()
    }


def routes(context: ProtocolContext) -> tuple[HttpRoute, ...]:
    rest = TfServingRest(context.calls)
    return (
        HttpRoute("GET", _MODEL, "tf_serving_status", rest.status),
        HttpRoute("GET", _MODEL + "/metadata", "tf_serving_metadata", rest.metadata),
        HttpRoute("POST", _MODEL + ":predict", "tf_serving_predict", rest.predict),
    )


PROTOCOL = HttpProtocol(name="tf_serving_rest", routes=routes)

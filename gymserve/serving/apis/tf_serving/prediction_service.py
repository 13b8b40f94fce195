"""TensorFlow Serving's `PredictionService`: Predict and GetModelMetadata answered by served policies.

`model_spec.name` is the policy; `model_spec.version` or `model_spec.version_label` picks the
version (neither: the latest that loaded). The signatures are those of a gymserve SavedModel:

    greedy_action (also serving_default, and the default)  observations -> action
    stochastic_action                                      observations, seed -> action
    distribution                                           observations -> logits | mean, log_std | ...

`observations` is a float32 tensor of shape [batch, *observation shape]; `seed` an int64 (or
int32) scalar >= 0. Actions are int64 for discrete action spaces and float32 for boxes.
Stochastic actions are drawn as gymserve's Act draws them for the same seed (numpy), so they
match gymserve's clients but not a SavedModel run by TensorFlow Serving, which samples with
TensorFlow's stateless random ops. Calls go through `PolicyCalls`: the same version
resolution, dynamic batching, metrics and status codes as PolicyService.

Importing this module imports TensorFlow (through tensorflow-serving-api's messages).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, model_pb2, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc as pb_grpc

from gymserve.policies.signatures import observation_dtype
from gymserve.serving.apis.tf_serving.signatures import (
    DEFAULT_SIGNATURE,
    PREDICT_METHOD,
    SIGNATURES,
    check_inputs,
    run_signature,
    signature_specs,
)
from gymserve.serving.apis.tf_serving.tensor_protos import DATA_TYPES, declared_tensor, to_tensor_proto
from gymserve.serving.server.echo import echo_all

if TYPE_CHECKING:
    from gymserve.policies import Policy
    from gymserve.serving.server.policy_calls import PolicyCalls
    from gymserve.serving.server.request_limits import RequestBudget
    from gymserve.serving.server.served_policies import ServedVersion

__all__ = ["DEFAULT_SIGNATURE", "SIGNATURES", "PredictionService", "signature_defs"]
SIGNATURE_DEF_FIELD = "signature_def"


class PredictionService(pb_grpc.PredictionServiceServicer):
    """Predict and GetModelMetadata; Classify, Regress and MultiInference answer UNIMPLEMENTED."""

    def __init__(self, calls: PolicyCalls):
        self._calls = calls

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        response = predict_pb2.PredictResponse()
        try:
            served = self._resolve(request.model_spec)
            signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
            outputs = self._predict(served, signature, request.inputs, context)
            wanted = list(request.output_filter) or list(outputs)
            unknown = sorted(set(wanted) - outputs.keys())
            if unknown:
                raise ValueError(
                    f"output_filter names {echo_all(unknown)}; signature {signature} has outputs "
                    f"{', '.join(sorted(outputs))}"
                )
            _fill_spec(response.model_spec, served, signature)
            for name in wanted:
                response.outputs[name].CopyFrom(to_tensor_proto(outputs[name]))
        except Exception as error:
            self._calls.abort(context, "Predict", error)
        return response

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        try:
            fields = list(request.metadata_field)
            if fields != [SIGNATURE_DEF_FIELD]:
                raise ValueError(
                    f"metadata_field is {echo_all(fields) or 'empty'}; the only field served "
                    f"is {SIGNATURE_DEF_FIELD!r}"
                )
            served = self._resolve(request.model_spec)
            _fill_spec(response.model_spec, served, "")
            response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs(served.policy))
        except Exception as error:
            self._calls.abort(context, "GetModelMetadata", error)
        return response

    def _resolve(self, spec: model_pb2.ModelSpec) -> ServedVersion:
        version = spec.version.value if spec.HasField("version") else None
        return self._calls.resolve(spec.name, version, spec.version_label)

    def _predict(
        self, served: ServedVersion, signature: str, inputs: dict, context: grpc.ServicerContext
    ) -> dict[str, np.ndarray]:
        """The outputs of `signature` for `inputs`, computed by the served policy."""
        check_inputs(signature, inputs)
        space = served.policy.observation_space
        budget = self._calls.limits.budget()
        declared = declared_tensor(inputs["observations"], "observations", budget, len(space.shape) + 1)
        expected = observation_dtype(space.dtype)
        if (
            declared.dtype not in (np.float32, expected)
            or declared.shape[1:] != space.shape
            or not declared.shape
        ):
            raise ValueError(
                f"observations are {declared.dtype} of shape {list(declared.shape)}; "
                f"expected {expected} of shape [batch, {', '.join(map(str, space.shape))}] for {space}"
            )
        self._calls.limits.check_batch_size(declared.shape[0])
        observations = declared.array()
        seed = _seed(inputs["seed"], budget) if "seed" in inputs else None

        def predict(policy: Policy) -> dict[str, np.ndarray]:
            return run_signature(policy, signature, observations, seed)

        return self._calls.run(served, len(observations), context, predict)


def signature_defs(policy: Policy) -> get_model_metadata_pb2.SignatureDefMap:
    """The signatures Predict answers for `policy`, with their inputs' and outputs' dtypes and shapes."""
    defs = get_model_metadata_pb2.SignatureDefMap()
    for name, (inputs, outputs) in signature_specs(policy).items():
        defs.signature_def[name].CopyFrom(
            meta_graph_pb2.SignatureDef(
                inputs={key: _tensor_info(key, dtype, shape) for key, (dtype, shape) in inputs.items()},
                outputs={key: _tensor_info(key, dtype, shape) for key, (dtype, shape) in outputs.items()},
                method_name=PREDICT_METHOD,
            )
        )
    return defs


def _tensor_info(name: str, dtype: np.dtype, shape: tuple[int, ...]) -> meta_graph_pb2.TensorInfo:
    info = meta_graph_pb2.TensorInfo(name=name, dtype=DATA_TYPES[dtype.newbyteorder("<")])
    for size in shape:
        info.tensor_shape.dim.add(size=size)
    return info


def _seed(tensor: object, budget: RequestBudget) -> int:
    declared = declared_tensor(tensor, "seed", budget)
    if declared.shape == () and declared.dtype.kind == "i":
        seed = int(declared.array())
        if seed >= 0:
            return seed
    raise ValueError(
        f"seed is {declared.dtype} of shape {list(declared.shape)}; expected an integer scalar >= 0"
    )


def _fill_spec(spec: model_pb2.ModelSpec, served: ServedVersion, signature: str) -> None:
    spec.name = served.name
    spec.version.value = served.version
    spec.signature_name = signature

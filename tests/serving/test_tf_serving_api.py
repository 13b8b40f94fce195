"""The TensorFlow Serving API, called with tensorflow-serving-api's own PredictionServiceStub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from serving_support import WEIGHTS, greedy_by_hand, observations, standard_policies, start_server
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from gymserve.serving import PolicyClient
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer

SENT = observations(5, seed=3)


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    policies = standard_policies()
    policies.set_labels("linear", {"stable": 1})
    server = start_server(policies)
    yield server
    server.stop(grace=0)


@pytest.fixture
def stub(server: PolicyServer) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(name: str, signature: str = "", **inputs: np.ndarray) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def call_error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value


@pytest.mark.parametrize("signature", ["", "serving_default", "greedy_action"])
def test_predict_answers_greedy_actions_of_the_latest_version(stub, signature: str):
    response = stub.Predict(predict_request("linear", signature, observations=SENT), timeout=30)
    assert response.model_spec.name == "linear"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == (signature or "serving_default")
    action = tf.make_ndarray(response.outputs["action"])
    assert action.dtype == np.int64
    np.testing.assert_array_equal(action, greedy_by_hand(SENT, 2))


def test_versions_are_picked_by_number_or_label(stub):
    request = predict_request("linear", observations=SENT)
    request.model_spec.version.value = 1
    by_number = stub.Predict(request, timeout=30)
    request.model_spec.ClearField("version")
    request.model_spec.version_label = "stable"
    by_label = stub.Predict(request, timeout=30)
    for response in (by_number, by_label):
        assert response.model_spec.version.value == 1
        np.testing.assert_array_equal(tf.make_ndarray(response.outputs["action"]), greedy_by_hand(SENT, 1))


def test_stochastic_actions_match_gymserve_act_for_the_same_seed(stub, server: PolicyServer):
    for seed in (0, 1, 2):
        request = predict_request(
            "linear", "stochastic_action", observations=SENT, seed=np.array(seed, np.int64)
        )
        sampled = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["action"])
        with PolicyClient(server.address) as client:
            expected = client.act(SENT, "linear", mode="stochastic", seed=seed)
        np.testing.assert_array_equal(sampled, expected)


def test_distribution_outputs_and_output_filter(stub):
    response = stub.Predict(predict_request("linear", "distribution", observations=SENT), timeout=30)
    assert set(response.outputs) == {"logits"}
    np.testing.assert_allclose(tf.make_ndarray(response.outputs["logits"]), SENT @ WEIGHTS[2], rtol=1e-6)
    request = predict_request("linear", observations=SENT)
    request.output_filter.append("logits")
    error = call_error(stub.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "output_filter names 'logits'; signature serving_default has outputs action"


def test_typed_value_lists_are_read_like_tensor_content(stub):
    request = predict_request("linear")
    tensor = request.inputs["observations"]
    tensor.dtype = types_pb2.DT_FLOAT
    tensor.tensor_shape.dim.add(size=2)
    tensor.tensor_shape.dim.add(size=4)
    tensor.float_val.extend(SENT[:2].ravel().tolist())
    action = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["action"])
    np.testing.assert_array_equal(action, greedy_by_hand(SENT[:2], 2))


@pytest.mark.parametrize(
    "request_, code, details",
    [
        (
            predict_request("nope", observations=SENT),
            grpc.StatusCode.NOT_FOUND,
            "no policy named 'nope'; serving: broken, linear, scripted",
        ),
        (
            predict_request("broken", observations=SENT),
            grpc.StatusCode.FAILED_PRECONDITION,
            "policy 'broken' has no version that loaded "
            "(version 1: PolicyLoadError: policy.json is truncated)",
        ),
        (
            predict_request("linear", "classify", observations=SENT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "no signature 'classify'; "
            "signatures: greedy_action, serving_default, stochastic_action, distribution",
        ),
        (
            predict_request("linear", "stochastic_action", observations=SENT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "signature stochastic_action takes inputs observations, seed; the request has 'observations'",
        ),
        (
            predict_request("linear", observations=SENT.astype(np.float64)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "observations are float64 of shape [5, 4]; expected float32 of shape [batch, 4] for "
            "Box(-inf, inf, (4,), float32)",
        ),
        (
            predict_request("linear", observations=SENT[:, :3]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "observations are float32 of shape [5, 3]; expected float32 of shape [batch, 4] for "
            "Box(-inf, inf, (4,), float32)",
        ),
        (
            predict_request("linear", "stochastic_action", observations=SENT, seed=np.array([1, 2])),
            grpc.StatusCode.INVALID_ARGUMENT,
            "seed is int64 of shape [2]; expected an integer scalar >= 0",
        ),
    ],
    ids=["unknown", "failed", "signature", "missing-input", "dtype", "shape", "seed"],
)
def test_bad_predict_requests_get_clear_errors(stub, request_, code, details):
    error = call_error(stub.Predict, request_)
    assert (error.code(), error.details()) == (code, details)


def test_get_model_metadata_describes_every_signature(stub):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "linear"
    response = stub.GetModelMetadata(request, timeout=30)
    assert (response.model_spec.name, response.model_spec.version.value) == ("linear", 2)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    described = {
        name: {
            side: {
                key: (types_pb2.DataType.Name(info.dtype), [dim.size for dim in info.tensor_shape.dim])
                for key, info in getattr(signature, side).items()
            }
            for side in ("inputs", "outputs")
        }
        for name, signature in signatures.signature_def.items()
    }
    observations_in = {"observations": ("DT_FLOAT", [-1, 4])}
    greedy = {"inputs": observations_in, "outputs": {"action": ("DT_INT64", [-1])}}
    assert described == {
        "greedy_action": greedy,
        "serving_default": greedy,
        "stochastic_action": {
            "inputs": {**observations_in, "seed": ("DT_INT64", [])},
            "outputs": {"action": ("DT_INT64", [-1])},
        },
        "distribution": {"inputs": observations_in, "outputs": {"logits": ("DT_FLOAT", [-1, 2])}},
    }
    assert {s.method_name for s in signatures.signature_def.values()} == {"tensorflow/serving/predict"}
    request.metadata_field[:] = ["model_status"]
    error = call_error(stub.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "metadata_field is 'model_status'; the only field served is 'signature_def'"


def test_an_export_answers_predict_as_its_saved_model_serving_default(discrete_export: Path):
    config = ServerConfig(address="127.0.0.1:0", policies={"cartpole": discrete_export}, poll_interval=0)
    sent = observations(64, seed=9)
    with PolicyServer(config) as server, grpc.insecure_channel(server.address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(predict_request("cartpole", observations=sent), timeout=30)
    saved_model = tf.saved_model.load(str(discrete_export / "saved_model"))
    expected = saved_model.signatures["serving_default"](observations=tf.constant(sent))["action"]
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["action"]), expected.numpy())

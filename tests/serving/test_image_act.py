"""A served CNN policy: uint8 frames cross the wire at one byte per pixel, and the served actions
(Act, StreamAct, TensorFlow Serving's Predict and Open Inference's ModelInfer) equal the
in-process policy's."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from image_policies import frames, image_policy
from serving_support import start_server
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from gymserve.policies import export_policy, load
from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.apis.inference import grpc_service_pb2 as inference_pb
from gymserve.serving.apis.inference import grpc_service_pb2_grpc as inference_grpc
from gymserve.serving.client.policy_client import act_request
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.server.served_policies import ServedPolicies


@pytest.fixture(scope="module")
def policy():
    return image_policy()


@pytest.fixture(scope="module")
def address(policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    export = tmp_path_factory.mktemp("exports") / "bright_side"
    export_policy(policy, export, metadata={"env_id": "gymserve/BrightSide-v0", "algorithm": "dqn"})
    served = ServedPolicies()
    served.add("bright_side", 1, load(export, "onnx"))
    server = start_server(served)
    try:
        yield server.address
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(address) -> Iterator[PolicyClient]:
    with PolicyClient(address) as client:
        yield client


def test_the_client_sends_uint8_frames_as_uint8():
    batch = frames(8, seed=4)
    request = act_request(batch, "bright_side", None, "greedy", None, None, False)
    assert request.observations.dtype == pb.DATA_TYPE_UINT8
    assert request.observations.content == batch.tobytes()  # one byte per pixel, no float copy
    float_request = act_request(batch.astype(np.float64), "bright_side", None, "greedy", None, None, False)
    assert float_request.observations.dtype == pb.DATA_TYPE_FLOAT32


def test_served_greedy_and_stochastic_actions_equal_the_in_process_ones(client, policy):
    batch = frames(300, seed=5)
    expected = policy.action(batch).action
    assert len(np.unique(expected)) >= 2
    np.testing.assert_array_equal(client.act(batch, "bright_side"), expected)
    np.testing.assert_array_equal(
        client.act(batch, "bright_side", mode="stochastic", seed=11),
        policy.action(batch, mode="stochastic", seed=11).action,
    )


def test_a_stream_of_frames_gets_the_in_process_actions(client, policy):
    batch = frames(20, seed=6)
    with client.stream("bright_side") as session:
        served = [session.step(frame, episode_start=index == 0) for index, frame in enumerate(batch)]
    np.testing.assert_array_equal(np.array(served), policy.action(batch).action)


def test_tf_serving_predict_takes_dt_uint8_frames_as_the_signature_declares(address, policy):
    batch = frames(50, seed=7)
    with grpc.insecure_channel(address) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        metadata_request.model_spec.name = "bright_side"
        signatures = get_model_metadata_pb2.SignatureDefMap()
        stub.GetModelMetadata(metadata_request, timeout=30).metadata["signature_def"].Unpack(signatures)
        declared = signatures.signature_def["greedy_action"].inputs["observations"].dtype
        assert declared == types_pb2.DT_UINT8
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "bright_side"
        request.model_spec.signature_name = "greedy_action"
        request.inputs["observations"].CopyFrom(tf.make_tensor_proto(batch))
        assert request.inputs["observations"].dtype == types_pb2.DT_UINT8
        response = stub.Predict(request, timeout=30)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["action"]), policy.action(batch).action)


def test_open_inference_model_infer_takes_uint8_frames(address, policy):
    batch = frames(50, seed=8)
    tensor = inference_pb.ModelInferRequest.InferInputTensor(
        name="observations", datatype="UINT8", shape=batch.shape
    )
    request = inference_pb.ModelInferRequest(model_name="bright_side", inputs=[tensor])
    request.raw_input_contents.append(batch.tobytes())
    with grpc.insecure_channel(address) as channel:
        stub = inference_grpc.GRPCInferenceServiceStub(channel)
        metadata = stub.ModelMetadata(inference_pb.ModelMetadataRequest(name="bright_side"), timeout=30)
        assert [(i.name, i.datatype) for i in metadata.inputs] == [("observations", "UINT8")]
        response = stub.ModelInfer(request, timeout=30)
    (index,) = [i for i, output in enumerate(response.outputs) if output.name == "action"]
    actions = np.frombuffer(response.raw_output_contents[index], "<i8")
    np.testing.assert_array_equal(actions, policy.action(batch).action)


def test_frames_that_are_not_integers_0_to_255_are_invalid_arguments(client):
    batch = frames(2, seed=9).astype(np.float32) + 0.5
    with pytest.raises(PolicyServiceError) as raised:
        client.act(batch, "bright_side")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "integers 0..255" in raised.value.details

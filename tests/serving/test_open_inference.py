"""The Open Inference Protocol (KServe v2 / Triton gRPC) on a real server: health, metadata, ModelInfer."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from serving_support import WEIGHTS, LinearPolicy, greedy_by_hand, observations, start_server
from serving_support import policies_with_a_box as policies

from gymserve.serving.apis.inference import grpc_service_pb2 as pb
from gymserve.serving.apis.inference import grpc_service_pb2_grpc as pb_grpc
from gymserve.serving.client import PolicyClient
from gymserve.serving.server.policy_server import PolicyServer

TOKEN = "oip-token"


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    server = start_server(policies())
    yield server
    server.stop(grace=0)


@pytest.fixture(scope="module")
def stub(server: PolicyServer) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.address) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def client(server: PolicyServer) -> Iterator[PolicyClient]:
    with PolicyClient(server.address, timeout=30) as client:
        yield client


def infer_request(model: str, batch: np.ndarray, raw: bool, **fields: object) -> pb.ModelInferRequest:
    tensor = pb.ModelInferRequest.InferInputTensor(name="observations", datatype="FP32", shape=batch.shape)
    request = pb.ModelInferRequest(model_name=model, inputs=[tensor], **fields)
    if raw:
        request.raw_input_contents.append(batch.tobytes())
    else:
        tensor = request.inputs[0]
        tensor.contents.fp32_contents.extend(batch.ravel())
    return request


def output(response: pb.ModelInferResponse, name: str) -> np.ndarray:
    """The array of output `name`, read from raw or typed contents as the response carries it."""
    (index,) = [i for i, tensor in enumerate(response.outputs) if tensor.name == name]
    tensor = response.outputs[index]
    dtype = {"INT64": "<i8", "FP32": "<f4"}[tensor.datatype]
    if response.raw_output_contents:
        return np.frombuffer(response.raw_output_contents[index], dtype).reshape(tensor.shape)
    values = tensor.contents.int64_contents if tensor.datatype == "INT64" else tensor.contents.fp32_contents
    return np.asarray(values, dtype).reshape(tensor.shape)


def test_the_server_is_live_ready_and_describes_itself(stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    metadata = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert (metadata.name, list(metadata.extensions)) == ("gymserve", [])
    assert metadata.version == __import__("gymserve").__version__


def test_model_readiness_follows_loaded_failed_and_unknown_versions(stub):
    ready = {
        (name, version): stub.ModelReady(pb.ModelReadyRequest(name=name, version=version)).ready
        for name, version in [("linear", ""), ("linear", "1"), ("box", ""), ("broken", ""), ("broken", "1")]
    }
    assert ready == {
        ("linear", ""): True,
        ("linear", "1"): True,
        ("box", ""): True,
        ("broken", ""): False,
        ("broken", "1"): False,
    }
    for name, version in [("nope", ""), ("linear", "7")]:
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelReady(pb.ModelReadyRequest(name=name, version=version))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_readiness_and_metadata_follow_a_reload():
    served = policies()
    server = start_server(served)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            served.add("linear", 3, LinearPolicy(WEIGHTS[1]))
            served.add_failure("linear", 4, "PolicyLoadError: bad hash")
            metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="linear"))
            assert list(metadata.versions) == ["1", "2", "3"]
            assert stub.ModelReady(pb.ModelReadyRequest(name="linear", version="3")).ready
            assert not stub.ModelReady(pb.ModelReadyRequest(name="linear", version="4")).ready
            response = stub.ModelInfer(infer_request("linear", observations(8), raw=True))
            assert response.model_version == "3"
            assert output(response, "action").tolist() == greedy_by_hand(observations(8), 1).tolist()
            with pytest.raises(grpc.RpcError) as raised:
                stub.ModelInfer(infer_request("linear", observations(1), raw=True, model_version="4"))
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        server.stop(grace=0)


def test_model_metadata_names_the_inputs_and_outputs_modelinfer_takes(stub):
    def described(name: str) -> dict:
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=name))
        return {
            "platform": metadata.platform,
            "versions": list(metadata.versions),
            "inputs": [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs],
            "outputs": [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs],
        }

    assert described("linear") == {
        "platform": "gymserve",
        "versions": ["1", "2"],
        "inputs": [("observations", "FP32", [-1, 4])],
        "outputs": [("action", "INT64", [-1]), ("logits", "FP32", [-1, 2])],
    }
    assert described("box")["outputs"] == [
        ("action", "FP32", [-1, 2]),
        ("mean", "FP32", [-1, 2]),
        ("log_std", "FP32", [-1, 2]),
    ]


@pytest.mark.parametrize("raw", [False, True], ids=["typed", "raw"])
@pytest.mark.parametrize("model", ["linear", "box"])
def test_greedy_actions_equal_the_policy_clients(stub, client, model, raw):
    batch = observations(100, seed=5)
    response = stub.ModelInfer(infer_request(model, batch, raw, model_version="1", id="req-1"))
    assert (response.model_name, response.model_version, response.id) == (model, "1", "req-1")
    assert [tensor.name for tensor in response.outputs] == ["action"]
    assert bool(response.raw_output_contents) is raw
    actions = output(response, "action")
    expected = client.act(batch, model, version=1)
    assert actions.shape == expected.shape
    assert np.array_equal(actions, expected)  # 100 of 100
    if model == "linear":
        assert actions.tolist() == greedy_by_hand(batch, 1).tolist()


@pytest.mark.parametrize("model", ["linear", "box"])
def test_a_seeded_stochastic_call_equals_act_with_that_seed(stub, client, model):
    batch = observations(64, seed=9)
    parameters = {
        "mode": pb.InferParameter(string_param="stochastic"),
        "seed": pb.InferParameter(int64_param=11),
    }
    response = stub.ModelInfer(infer_request(model, batch, raw=True, parameters=parameters))
    expected = client.act(batch, model, mode="stochastic", seed=11)
    assert np.array_equal(output(response, "action"), expected)
    greedy = client.act(batch, model)
    assert not np.array_equal(expected, greedy)  # the draw is not the greedy answer


def test_epsilon_greedy_accepts_its_short_name_and_matches_act(stub, client):
    batch = observations(64, seed=2)
    parameters = {
        "mode": pb.InferParameter(string_param="epsilon"),
        "epsilon": pb.InferParameter(double_param=0.5),
        "seed": pb.InferParameter(int64_param=3),
    }
    response = stub.ModelInfer(infer_request("linear", batch, raw=False, parameters=parameters))
    expected = client.act(batch, "linear", mode="epsilon_greedy", epsilon=0.5, seed=3)
    assert np.array_equal(output(response, "action"), expected)


def test_requested_outputs_come_in_the_order_asked(stub):
    batch = observations(3)
    outputs = [pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in ("logits", "action")]
    response = stub.ModelInfer(infer_request("linear", batch, raw=False, model_version="1", outputs=outputs))
    assert [tensor.name for tensor in response.outputs] == ["logits", "action"]
    np.testing.assert_allclose(output(response, "logits"), batch @ WEIGHTS[1], rtol=1e-6)


def test_a_recurrent_policy_takes_its_state_and_returns_the_next(stub):
    batch = observations(2)
    first = stub.ModelInfer(infer_request("scripted", batch, raw=True))
    assert [tensor.name for tensor in first.outputs] == ["action", "next_state_0"]
    assert (output(first, "action").tolist(), output(first, "next_state_0").tolist()) == ([0, 0], [1, 1])
    second = infer_request("scripted", batch, raw=True)
    second.inputs.add(name="state_0", datatype="INT64", shape=[2])
    second.raw_input_contents.append(np.array([3, 5], "<i8").tobytes())
    answer = stub.ModelInfer(second)
    assert (output(answer, "action").tolist(), output(answer, "next_state_0").tolist()) == ([3, 5], [4, 6])


def bad_requests() -> dict[str, tuple[pb.ModelInferRequest, grpc.StatusCode, str]]:
    batch = observations(2)
    invalid = grpc.StatusCode.INVALID_ARGUMENT

    def request(**changes: object) -> pb.ModelInferRequest:
        made = infer_request("linear", batch, raw=True)
        for field, value in changes.items():
            if field in ("name", "datatype"):
                setattr(made.inputs[0], field, value)
            elif field == "shape":
                made.inputs[0].shape[:] = value
            elif field == "raw":
                made.raw_input_contents[:] = value
            elif field == "outputs":
                made.outputs.add(name=value)
            elif field == "parameters":
                for key, parameter in value.items():
                    made.parameters[key].CopyFrom(parameter)
            else:
                setattr(made, field, value)
        return made

    return {
        "wrong name": (
            request(name="obs"),
            invalid,
            "input 'obs' is unknown or repeated; model inputs: observations",
        ),
        "wrong dtype": (
            request(datatype="FP64"),
            invalid,
            "input observations is 'FP64' of shape [2, 4]; expected FP32 of shape [batch, 4]",
        ),
        "unknown dtype": (
            request(datatype="STRING"),
            invalid,
            "input observations has datatype 'STRING'; expected",
        ),
        "wrong shape": (
            request(shape=[4, 2]),
            invalid,
            "input observations is 'FP32' of shape [4, 2]; expected FP32 of shape [batch, 4]",
        ),
        "huge shape, few bytes": (
            request(shape=[125_000_000, 4]),
            invalid,
            "input observations of shape [125000000, 4] takes 2000000000 bytes; the tensors of one request",
        ),
        "raw size mismatch": (
            request(raw=[batch.tobytes()[:-4]]),
            invalid,
            "raw contents of input observations have 28 bytes; FP32 of shape [2, 4] takes 32",
        ),
        "raw count mismatch": (
            request(raw=[batch.tobytes(), b""]),
            invalid,
            "the request has 1 inputs and 2 raw_input_contents",
        ),
        "unknown model": (request(model_name="nope"), grpc.StatusCode.NOT_FOUND, "no policy named 'nope'"),
        "unknown version": (
            request(model_version="9"),
            grpc.StatusCode.NOT_FOUND,
            "policy 'linear' has no version 9; versions: 1, 2",
        ),
        "version not a number": (
            request(model_version="v1"),
            invalid,
            "model version 'v1' is not a version number",
        ),
        "unknown mode": (
            request(parameters={"mode": pb.InferParameter(string_param="wild")}),
            invalid,
            "parameter mode is 'wild'; expected one of greedy, stochastic, epsilon_greedy, epsilon",
        ),
        "seed of the wrong kind": (
            request(parameters={"seed": pb.InferParameter(string_param="1")}),
            invalid,
            "parameter seed is a string_param; expected a int64_param",
        ),
        "negative seed": (
            request(parameters={"seed": pb.InferParameter(int64_param=-1)}),
            invalid,
            "parameter seed is -1; expected an integer >= 0",
        ),
        "unknown parameter": (
            request(parameters={"temperature": pb.InferParameter(double_param=2.0)}),
            invalid,
            "unknown parameter 'temperature'; parameters: mode, epsilon, seed",
        ),
        "unknown output": (
            request(outputs="value"),
            invalid,
            "no output 'value'; model outputs: action, logits",
        ),
    }


@pytest.mark.parametrize("case", list(bad_requests()))
def test_bad_requests_get_small_clear_errors(stub, case):
    request, code, message = bad_requests()[case]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == code
    assert raised.value.details().startswith(message)
    assert len(raised.value.details()) < 400


def test_typed_contents_must_match_the_declared_shape(stub):
    request = infer_request("linear", observations(2), raw=False)
    request.inputs[0].shape[:] = [3, 4]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == "input observations has 8 values in fp32_contents; shape [3, 4] takes 12"


def test_model_infer_needs_the_token_and_liveness_does_not():
    server = start_server(policies(), auth_token=TOKEN)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest()).live
            assert stub.ServerReady(pb.ServerReadyRequest()).ready
            request = infer_request("linear", observations(4), raw=True)
            with pytest.raises(grpc.RpcError) as raised:
                stub.ModelInfer(request)
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            response = stub.ModelInfer(request, metadata=[("authorization", f"Bearer {TOKEN}")])
            assert output(response, "action").tolist() == greedy_by_hand(observations(4), 2).tolist()
    finally:
        server.stop(grace=0)

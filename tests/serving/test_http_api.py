"""The HTTP port: TensorFlow Serving REST and Open Inference Protocol REST, called with http.client."""

from __future__ import annotations

import http.client
import json
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import gymnasium as gym
import numpy as np
import pytest
from serving_support import (
    OBSERVATION_SPACE,
    WEIGHTS,
    LinearPolicy,
    greedy_by_hand,
    infer_body,
    observations,
    self_signed_certificate,
    standard_policies,
    start_server,
)

from gymserve.policies import Categorical, Distribution, Normal, Policy
from gymserve.serving import PolicyClient
from gymserve.serving.apis.inference import grpc_service_pb2 as pb
from gymserve.serving.apis.inference import grpc_service_pb2_grpc as pb_grpc
from gymserve.serving.server import http_server
from gymserve.serving.server.config import ServerConfig, ServerConfigError
from gymserve.serving.server.policy_server import PolicyServer
from gymserve.serving.server.served_policies import ServedPolicies

TOKEN = "http-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SENT = observations(5, seed=7)
MAX_BODY = 64 * 1024
README = Path(__file__).resolve().parents[2] / "README.md"


class GaussianLinearPolicy(Policy):
    """Two unbounded continuous actions: mean = observations @ weights, standard deviation 0.5."""

    def __init__(self) -> None:
        super().__init__(OBSERVATION_SPACE, gym.spaces.Box(-np.inf, np.inf, (2,), np.float32))

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        return Normal(observations @ WEIGHTS[1], 0.5)


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    policies = standard_policies()
    policies.add("gaussian", 1, GaussianLinearPolicy())
    policies.add("cartpole", 1, LinearPolicy(WEIGHTS[1]))  # the policy name the README's commands use
    policies.set_labels("linear", {"stable": 1})
    server = start_server(policies, http_address="127.0.0.1:0", auth_token=TOKEN, max_message_bytes=MAX_BODY)
    yield server
    server.stop(grace=0)


@pytest.fixture(scope="module")
def client(server: PolicyServer) -> Iterator[PolicyClient]:
    with PolicyClient(server.address, token=TOKEN, timeout=30) as client:
        yield client


def call(
    server: PolicyServer, method: str, path: str, body: object = None, headers: dict | None = AUTH
) -> tuple[int, dict]:
    """The status and decoded JSON answer of one request (a body of bytes is sent as it is)."""
    connection = http.client.HTTPConnection(*server.http_address.split(":"), timeout=30)
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    connection.request(method, path, data, {"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    assert response.getheader("Content-Type").startswith("application/json")
    return response.status, json.loads(raw)


def test_tf_serving_rows_and_columns_answer_greedy_actions_of_the_latest_version(server):
    rows = call(server, "POST", "/v1/models/linear:predict", {"instances": SENT.tolist()})
    columns = call(server, "POST", "/v1/models/linear:predict", {"inputs": {"observations": SENT.tolist()}})
    assert rows == (200, {"predictions": greedy_by_hand(SENT, 2).tolist()})
    assert columns == (200, {"outputs": greedy_by_hand(SENT, 2).tolist()})


@pytest.mark.parametrize(
    "path", ["/v1/models/linear/versions/1:predict", "/v1/models/linear/labels/stable:predict"]
)
def test_tf_serving_versions_by_number_or_label(server, path: str):
    assert call(server, "POST", path, {"instances": SENT.tolist()}) == (
        200,
        {"predictions": greedy_by_hand(SENT, 1).tolist()},
    )


def test_oip_infer_answers_greedy_actions(server):
    status, answer = call(
        server,
        "POST",
        "/v2/models/linear/versions/1/infer",
        infer_body(SENT.ravel().tolist(), [5, 4], id="a1"),
    )
    assert status == 200
    assert answer == {
        "model_name": "linear",
        "model_version": "1",
        "id": "a1",
        "outputs": [
            {"name": "action", "shape": [5], "datatype": "INT64", "data": greedy_by_hand(SENT, 1).tolist()}
        ],
    }


def test_box_policy_answers_what_policy_client_answers(server, client):
    expected = client.act(SENT, "gaussian")
    _, rows = call(server, "POST", "/v1/models/gaussian:predict", {"instances": SENT.tolist()})
    _, infer = call(server, "POST", "/v2/models/gaussian/infer", infer_body(SENT.tolist(), [5, 4]))
    np.testing.assert_array_equal(np.array(rows["predictions"], np.float32), expected)
    assert infer["outputs"][0]["datatype"] == "FP32" and infer["outputs"][0]["shape"] == [5, 2]
    np.testing.assert_array_equal(np.array(infer["outputs"][0]["data"], np.float32).reshape(5, 2), expected)


@pytest.mark.parametrize("name", ["linear", "gaussian"])
def test_seeded_stochastic_calls_match_act_with_the_same_seed(server, client, name: str):
    expected = client.act(SENT, name, mode="stochastic", seed=11)
    tf_body = {"signature_name": "stochastic_action", "inputs": {"observations": SENT.tolist(), "seed": 11}}
    _, predicted = call(server, "POST", f"/v1/models/{name}:predict", tf_body)
    oip_body = infer_body(SENT.ravel().tolist(), [5, 4], parameters={"mode": "stochastic", "seed": 11})
    _, inferred = call(server, "POST", f"/v2/models/{name}/infer", oip_body)
    np.testing.assert_array_equal(np.array(predicted["outputs"], expected.dtype), expected)
    np.testing.assert_array_equal(
        np.array(inferred["outputs"][0]["data"], expected.dtype).reshape(expected.shape), expected
    )


def test_epsilon_greedy_parameters_match_act(server, client):
    expected = client.act(SENT, "linear", mode="epsilon_greedy", epsilon=0.5, seed=3)
    body = infer_body(SENT.tolist(), [5, 4], parameters={"mode": "epsilon_greedy", "epsilon": 0.5, "seed": 3})
    _, answer = call(server, "POST", "/v2/models/linear/infer", body)
    assert answer["outputs"][0]["data"] == expected.tolist()


def test_epsilon_is_the_short_name_of_epsilon_greedy(server, client):
    expected = client.act(SENT, "linear", mode="epsilon_greedy", epsilon=0.5, seed=3)
    body = infer_body(SENT.tolist(), [5, 4], parameters={"mode": "epsilon", "epsilon": 0.5, "seed": 3})
    _, answer = call(server, "POST", "/v2/models/linear/infer", body)
    assert answer["outputs"][0]["data"] == expected.tolist()


SAME_ERROR_BOTH_WAYS = [
    # (parameters over REST, the same over gRPC, the message both give)
    (
        {"mode": "wild"},
        {"mode": pb.InferParameter(string_param="wild")},
        "parameter mode is 'wild'; expected one of greedy, stochastic, epsilon_greedy, epsilon",
    ),
    (
        {"seed": -1},
        {"seed": pb.InferParameter(int64_param=-1)},
        "parameter seed is -1; expected an integer >= 0",
    ),
    (
        {"temperature": 2.0},
        {"temperature": pb.InferParameter(double_param=2.0)},
        "unknown parameter 'temperature'; parameters: mode, epsilon, seed",
    ),
    (
        {"mode": "epsilon_greedy", "epsilon": 1.5},
        {
            "mode": pb.InferParameter(string_param="epsilon_greedy"),
            "epsilon": pb.InferParameter(double_param=1.5),
        },
        "epsilon-greedy mode needs epsilon in [0, 1], got 1.5",
    ),
]


@pytest.mark.parametrize(("rest_parameters", "grpc_parameters", "error"), SAME_ERROR_BOTH_WAYS)
def test_a_bad_parameter_gets_the_same_message_over_rest_and_grpc(
    server, rest_parameters, grpc_parameters, error
):
    body = infer_body([1, 2, 3, 4], [1, 4], parameters=rest_parameters)
    assert call(server, "POST", "/v2/models/linear/infer", body) == (400, {"error": error})
    tensor = pb.ModelInferRequest.InferInputTensor(name="observations", datatype="FP32", shape=[1, 4])
    tensor.contents.fp32_contents.extend([1, 2, 3, 4])
    request = pb.ModelInferRequest(model_name="linear", inputs=[tensor], parameters=grpc_parameters)
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as raised:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, metadata=[("authorization", f"Bearer {TOKEN}")]
        )
    assert (raised.value.code(), raised.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, error)


def test_distribution_outputs(server):
    body = {"signature_name": "distribution", "instances": SENT[:2].tolist()}
    _, rows = call(server, "POST", "/v1/models/gaussian:predict", body)
    assert set(rows["predictions"][0]) == {"loc", "scale"}
    np.testing.assert_allclose(rows["predictions"][1]["loc"], SENT[1] @ WEIGHTS[1], rtol=1e-6)
    body = infer_body(SENT[:2].tolist(), [2, 4], outputs=[{"name": "logits"}])
    _, answer = call(server, "POST", "/v2/models/linear/versions/1/infer", body)
    assert [output["name"] for output in answer["outputs"]] == ["logits"]
    np.testing.assert_allclose(answer["outputs"][0]["data"], (SENT[:2] @ WEIGHTS[1]).ravel(), rtol=1e-6)


def binary_infer(server: PolicyServer, model: str, request: dict, data: bytes) -> tuple[dict, bytes]:
    """The JSON header and the raw bytes after it of the answer to `request` with `data` after it."""
    header = json.dumps(request).encode()
    headers = {**AUTH, "Inference-Header-Content-Length": str(len(header))}
    connection = http.client.HTTPConnection(*server.http_address.split(":"), timeout=30)
    connection.request("POST", f"/v2/models/{model}/infer", header + data, headers)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    assert response.status == 200, raw
    length = response.getheader("Inference-Header-Content-Length")
    if length is None:  # no output was asked for as bytes
        assert response.getheader("Content-Type").startswith("application/json")
        return json.loads(raw), b""
    assert response.getheader("Content-Type") == "application/octet-stream"
    return json.loads(raw[: int(length)]), raw[int(length) :]


def binary_input(shape: list, size: int) -> dict:
    return {
        "name": "observations",
        "shape": shape,
        "datatype": "FP32",
        "parameters": {"binary_data_size": size},
    }


@pytest.mark.parametrize(
    ("name", "dtype", "datatype"), [("linear", "<i8", "INT64"), ("gaussian", "<f4", "FP32")]
)
def test_binary_inputs_and_outputs_answer_what_policy_client_answers(server, client, name, dtype, datatype):
    expected = client.act(SENT, name)
    sent = SENT.astype("<f4").tobytes()
    request = {"inputs": [binary_input([5, 4], len(sent))], "parameters": {"binary_data_output": True}}
    answer, data = binary_infer(server, name, request, sent)
    (output,) = answer["outputs"]
    shape = list(expected.shape)
    assert output == {
        "name": "action",
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": len(data)},
    }
    np.testing.assert_array_equal(np.frombuffer(data, dtype).reshape(shape), expected)
    # bytes in, JSON out
    answer, data = binary_infer(server, name, {"inputs": [binary_input([5, 4], len(sent))]}, sent)
    assert data == b"" and answer["outputs"][0]["data"] == expected.ravel().tolist()
    # JSON in, bytes out for the output that asks for them
    outputs = [{"name": "action", "parameters": {"binary_data": True}}]
    answer, data = binary_infer(server, name, infer_body(SENT.tolist(), [5, 4], outputs=outputs), b"")
    assert answer["outputs"][0]["parameters"] == {"binary_data_size": len(data)}
    np.testing.assert_array_equal(np.frombuffer(data, dtype).reshape(shape), expected)


def test_binary_outputs_follow_each_outputs_parameter_over_the_requests_default(server):
    outputs = [{"name": "logits", "parameters": {"binary_data": False}}, {"name": "action"}]
    request = infer_body(SENT.tolist(), [5, 4], outputs=outputs, parameters={"binary_data_output": True})
    answer, data = binary_infer(server, "linear", request, b"")
    logits, action = answer["outputs"]
    np.testing.assert_allclose(logits["data"], (SENT @ WEIGHTS[2]).ravel(), rtol=1e-6)
    assert action["parameters"] == {"binary_data_size": 40}
    assert np.frombuffer(data, "<i8").tolist() == greedy_by_hand(SENT, 2).tolist()


def binary_body(request: dict, data: bytes) -> tuple[bytes, dict]:
    header = json.dumps(request).encode()
    return header + data, {**AUTH, "Inference-Header-Content-Length": str(len(header))}


BAD_BINARY_REQUESTS = [
    (
        binary_body({"inputs": [binary_input([2, 4], 16)]}, bytes(16)),
        'input observations has binary_data_size 16; shape [2, 4] needs 32 and no "data"',
    ),
    (
        binary_body({"inputs": [binary_input([2, 4], 32)]}, bytes(31)),
        "the body has 31 bytes after its JSON header; the inputs' binary_data_size add up to 32",
    ),
    (
        binary_body(infer_body([1, 2, 3, 4], [1, 4]), bytes(4)),
        "the body has 4 bytes after its JSON header; the inputs' binary_data_size add up to 0",
    ),
    (
        binary_body({"inputs": [binary_input([1 << 40, 4], 16)]}, bytes(16)),
        "input observations of shape [1099511627776, 4] takes 17592186044416 bytes; "
        f"the tensors of one request may take at most {MAX_BODY} bytes on this server",
    ),
    (
        binary_body(infer_body([1, 2, 3, 4], [1, 4], parameters={"binary_data_output": "yes"}), b""),
        "parameter binary_data_output must be true or false",
    ),
    (
        binary_body(
            infer_body([1, 2, 3, 4], [1, 4], outputs=[{"name": "action", "parameters": {"x": 1}}]), b""
        ),
        "parameters of output 'action' has unknown 'x'; known: binary_data",
    ),
]


@pytest.mark.parametrize(("request_", "error"), BAD_BINARY_REQUESTS)
def test_bad_binary_requests_get_400_and_a_short_error(server, request_, error):
    body, headers = request_
    assert call(server, "POST", "/v2/models/linear/infer", body, headers=headers) == (400, {"error": error})


@pytest.mark.parametrize("length", ["1000", "-1", "12x", "1e3"])
def test_a_json_length_beyond_the_body_or_no_number_gets_400(server, length):
    body, headers = binary_body({"inputs": [binary_input([1, 4], 16)]}, bytes(16))
    headers["Inference-Header-Content-Length"] = length
    error = f"Inference-Header-Content-Length is {length!r}; expected an integer from 0 to the body's "
    assert call(server, "POST", "/v2/models/linear/infer", body, headers=headers) == (
        400,
        {"error": f"{error}{len(body)} bytes"},
    )


class ThreeObservationsPolicy(Policy):
    """Two actions from three observations: a space the header of a LinearPolicy's call does not fit."""

    def __init__(self) -> None:
        super().__init__(gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Discrete(2))

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        return Categorical(observations[:, :2])


class FourFramesPolicy(ThreeObservationsPolicy):
    """Four uint8 values: the shape of a LinearPolicy's observations, in another data type."""

    def __init__(self) -> None:
        Policy.__init__(self, gym.spaces.Box(0, 255, (4,), np.uint8), gym.spaces.Discrete(2))


def test_an_input_header_once_accepted_is_judged_again_by_each_policy_and_each_dimension():
    policies = ServedPolicies()
    policies.add("four", 1, LinearPolicy(WEIGHTS[1]))
    policies.add("three", 1, ThreeObservationsPolicy())
    server = start_server(policies, http_address="127.0.0.1:0")
    try:
        body = infer_body(SENT[:1].tolist(), [1, 4])
        for _ in range(3):  # answered, and its header's checks remembered
            status, answer = call(server, "POST", "/v2/models/four/infer", body)
            assert status == 200 and answer["outputs"][0]["data"] == greedy_by_hand(SENT[:1]).tolist()
        status, answer = call(server, "POST", "/v2/models/three/infer", body)
        assert status == 400 and "expected FP32 of shape [batch, 3]" in answer["error"]
        for shape, error in (([True, 4], "at most 2 integers"), ([1.0, 4], "at most 2 integers")):
            status, answer = call(
                server, "POST", "/v2/models/four/infer", infer_body(SENT[:1].tolist(), shape)
            )
            assert status == 400 and error in answer["error"]
        body_fp64 = infer_body(SENT[:1].tolist(), [1, 4], "FP64")
        status, answer = call(server, "POST", "/v2/models/four/infer", body_fp64)
        assert status == 400 and "is 'FP64' of shape [1, 4]" in answer["error"]
        policies.add("frames", 1, FourFramesPolicy())
        frames = infer_body([0, 1, 2, 255], [1, 4], "UINT8")
        assert call(server, "POST", "/v2/models/frames/infer", frames)[0] == 200
        status, answer = call(server, "POST", "/v2/models/four/infer", frames)  # same shape, float space
        assert status == 400 and "is 'UINT8' of shape [1, 4]" in answer["error"]
        policies.add("four", 2, ThreeObservationsPolicy())  # the latest version now takes three
        status, answer = call(server, "POST", "/v2/models/four/infer", body)
        assert status == 400 and "expected FP32 of shape [batch, 3]" in answer["error"]
    finally:
        server.stop(grace=0)


def test_paths_are_routed_alike_past_the_paths_remembered(monkeypatch):
    monkeypatch.setattr(http_server, "MATCHED_PATHS", 2)
    server = start_server(standard_policies(), http_address="127.0.0.1:0")
    try:
        paths = ["/v2/models/linear", "/v2/models/linear/versions/1", "/v2/models/linear/versions/2"]
        for _ in range(2):
            for path in paths:
                status, answer = call(server, "GET", path)
                assert status == 200 and answer["name"] == "linear"
                assert len(server._http._matched) <= 2  # the routes remembered stay within the limit
            status, answer = call(server, "POST", paths[0], {})  # remembered for GET, not for POST
            assert status == 405 and "use GET" in answer["error"]
        status, answer = call(server, "GET", "/v2/models/linear/versions/x")
        assert status == 400 and "not an integer" in answer["error"]
    finally:
        server.stop(grace=0)


def test_bad_parameters_and_outputs_are_told_in_the_order_of_the_checks(server):
    body = infer_body(SENT[:1].tolist(), [1, 4], parameters={"mode": "bogus"}, outputs=5)
    status, answer = call(server, "POST", "/v2/models/linear/infer", body)
    assert status == 400 and answer["error"] == '"outputs" must be a list of {"name": ...} objects'


def test_status_and_metadata(server):
    assert call(server, "GET", "/v1/models/broken") == (
        200,
        {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "END",
                    "status": {
                        "error_code": "UNKNOWN",
                        "error_message": "PolicyLoadError: policy.json is truncated",
                    },
                }
            ]
        },
    )
    status, answer = call(server, "GET", "/v1/models/linear/versions/1")
    assert status == 200 and [v["version"] for v in answer["model_version_status"]] == ["1"]
    _, metadata = call(server, "GET", "/v1/models/linear/metadata")
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    assert metadata["model_spec"] == {"name": "linear", "signature_name": "", "version": "2"}
    assert set(signatures) == {"greedy_action", "serving_default", "stochastic_action", "distribution"}
    assert signatures["stochastic_action"]["inputs"]["seed"]["dtype"] == "DT_INT64"
    assert call(server, "GET", "/v2/models/gaussian") == (
        200,
        {
            "name": "gaussian",
            "versions": ["1"],
            "platform": "gymserve",
            "inputs": [{"name": "observations", "datatype": "FP32", "shape": [-1, 4]}],
            "outputs": [
                {"name": "action", "datatype": "FP32", "shape": [-1, 2]},
                {"name": "loc", "datatype": "FP32", "shape": [-1, 2]},
                {"name": "scale", "datatype": "FP32", "shape": [-1, 2]},
            ],
        },
    )


def test_health_and_readiness_need_no_token(server):
    assert call(server, "GET", "/v2/health/live", headers=None) == (200, {"live": True})
    assert call(server, "GET", "/v2/health/ready", headers=None) == (200, {"ready": True})
    assert call(server, "GET", "/v2/models/linear/versions/1/ready", headers=None) == (
        200,
        {"name": "linear", "version": "1", "ready": True},
    )
    assert call(server, "GET", "/v2/models/broken/ready", headers=None)[0] == 503


BAD_REQUESTS = [
    # (method, path, body, status, error)
    ("POST", "/v2/models/linear/infer", b"{not json", 400, "the body is not JSON: "),
    (
        "POST",
        "/v1/models/linear:predict",
        b"[1, 2]",
        400,
        'the body must be a JSON object with "instances" or "inputs"',
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"instances": [[1, 2, 3]]},
        400,
        "observations have shape [1, 3]; expected [batch, 4] for Box(-inf, inf, (4,), float32)",
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"instances": [[1, 2, 3, 4], [1]]},
        400,
        "observations must be numbers in nested lists of shape [2, 4]",
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"instances": [["1", 2, 3, 4]]},
        400,
        "observations must be numbers in nested lists of shape [1, 4]",
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"instances": [], "inputs": []},
        400,
        'give either "instances" (row format) or "inputs" (columnar format)',
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"signature_name": "nope", "instances": [[1, 2, 3, 4]]},
        400,
        "no signature 'nope'; signatures: greedy_action, serving_default, stochastic_action, distribution",
    ),
    (
        "POST",
        "/v1/models/linear:predict",
        {"signature_name": "stochastic_action", "inputs": {"observations": [[1, 2, 3, 4]], "seed": -1}},
        400,
        "seed is -1; expected an integer scalar >= 0",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], "FP64"),
        400,
        "input observations is 'FP64' of shape [1, 4]; expected FP32 of shape [batch, 4] for "
        "Box(-inf, inf, (4,), float32)",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        {"inputs": [{"name": "obs", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
        400,
        "input 'obs' is unknown or repeated; model inputs: observations",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3], [1, 4]),
        400,
        "observations data has 3 values; shape [1, 4] needs 4",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1.0], [125000000, 4]),
        400,
        "input observations of shape [125000000, 4] takes 2000000000 bytes; the tensors of one request "
        "may take at most 65536 bytes on this server",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], outputs=[{"name": "q"}]),
        400,
        "no output 'q'; model outputs: action, logits",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], parameters={"mode": "epsilon_greedy"}),
        400,
        "epsilon-greedy mode needs epsilon in [0, 1], got None",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], parameters={"mode": 3}),
        400,
        "parameter mode is of type int; expected one of greedy, stochastic, epsilon_greedy, epsilon",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], parameters={"seed": 1.5}),
        400,
        "parameter seed is of type float; expected an integer >= 0",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], parameters={"mode": "epsilon", "epsilon": True}),
        400,
        "parameter epsilon is of type bool; expected a number",
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        infer_body([1, 2, 3, 4], [1, 4], parameters=None),
        400,
        '"parameters" must be an object',
    ),
    (
        "POST",
        "/v2/models/linear/infer",
        {"inputs": [{"name": "observations", "shape": [1, 4], "datatype": "FP32", "parameters": None}]},
        400,
        "parameters of input observations must be an object",
    ),
    (
        "POST",
        "/v2/models/nope/infer",
        infer_body([1, 2, 3, 4], [1, 4]),
        404,
        "no policy named 'nope'; serving: broken, cartpole, gaussian, linear, scripted",
    ),
    (
        "POST",
        "/v2/models/linear/versions/9/infer",
        infer_body([1, 2, 3, 4], [1, 4]),
        404,
        "policy 'linear' has no version 9; versions: 1, 2",
    ),
    (
        "POST",
        "/v1/models/linear/labels/gold:predict",
        {"instances": [[1, 2, 3, 4]]},
        404,
        "policy 'linear' has no label 'gold'; labels: stable",
    ),
    (
        "GET",
        "/v2/models/broken",
        None,
        503,
        "policy 'broken' has no version that loaded (version 1: PolicyLoadError: policy.json is truncated)",
    ),
    (
        "GET",
        "/v3/anything",
        None,
        404,
        "no route for /v3/anything; see /v1/models/NAME, /v2/models/NAME and the page at /",
    ),
    ("GET", "/v2/models/linear/infer", None, 405, "GET is not allowed here; use POST"),
    (
        "POST",
        "/v2/models/linear/infer",
        b" " * (MAX_BODY + 1),
        413,
        f"the body of {MAX_BODY + 1} bytes exceeds this server's limit of {MAX_BODY} bytes",
    ),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "error"), BAD_REQUESTS)
def test_bad_requests_get_a_status_and_a_short_json_error(server, method, path, body, status, error):
    answer_status, answer = call(server, method, path, body)
    assert answer_status == status
    assert set(answer) == {"error"}
    assert answer["error"].startswith(error) if error.endswith(": ") else answer["error"] == error


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        (None, "missing 'authorization: Bearer <token>' header"),
        ({"Authorization": "Bearer nope"}, "invalid bearer token"),
    ],
)
def test_calls_without_the_token_are_refused(server, headers, error):
    for method, path in (
        ("GET", "/v2/models/linear"),
        ("POST", "/v1/models/linear:predict"),
        ("GET", "/v1/models/linear"),
    ):
        assert call(server, method, path, {"instances": [[1, 2, 3, 4]]}, headers=headers) == (
            401,
            {"error": error},
        )


def test_http_calls_are_counted_per_route_method_and_status(server):
    def count(route: str, method: str, code: str) -> float:
        labels = {"route": route, "method": method, "code": code}
        return server.metrics.registry.get_sample_value("gymserve_http_requests_total", labels) or 0.0

    before = count("oip_infer", "POST", "200"), count("tf_serving_predict", "POST", "404")
    call(server, "POST", "/v2/models/linear/infer", infer_body([1, 2, 3, 4], [1, 4]))
    call(server, "POST", "/v1/models/nope:predict", {"instances": [[1, 2, 3, 4]]})
    expected = (before[0] + 1, before[1] + 1)
    deadline = time.monotonic() + 5  # a call is counted just after its answer is written
    while (count("oip_infer", "POST", "200"), count("tf_serving_predict", "POST", "404")) != expected:
        assert time.monotonic() < deadline, "the calls were not counted"
        time.sleep(0.01)
    labels = {"route": "oip_infer", "method": "POST", "code": "200"}
    assert (
        server.metrics.registry.get_sample_value("gymserve_http_request_seconds_count", labels)
        == before[0] + 1
    )


def test_tls_uses_the_grpc_certificate(tmp_path: Path):
    certificate, key = self_signed_certificate(tmp_path)
    policies = standard_policies()
    server = start_server(
        policies, http_address="127.0.0.1:0", tls_certificate=certificate, tls_private_key=key
    )
    try:
        context = ssl.create_default_context(cafile=certificate)
        host, port = server.http_address.split(":")
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=30)
        connection.request("GET", "/v2/health/live")
        assert json.loads(connection.getresponse().read()) == {"live": True}
        connection.close()
    finally:
        server.stop(grace=0)


def readme_curl_commands() -> list[str]:
    """The curl commands of the README's HTTP section, joined across line continuations."""
    section = re.split(r"\n#{2,3} ", README.read_text().split("\n### HTTP\n", 1)[1])[0]
    text = section.replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_curl_commands_work(server):
    commands = readme_curl_commands()
    assert len(commands) >= 4
    for command in commands:
        command = re.sub(r"localhost:8501", server.http_address, command)
        command = command.replace("$GYMSERVE_AUTH_TOKEN", TOKEN)
        finished = subprocess.run(
            ["bash", "-c", command + " --fail-with-body"], capture_output=True, text=True, timeout=60
        )
        assert finished.returncode == 0, (shlex.split(command), finished.stdout, finished.stderr)
        json.loads(finished.stdout)


def test_an_http_port_in_use_fails_the_start_with_its_address(server):
    config = ServerConfig(address="127.0.0.1:0", http_address=server.http_address)
    with pytest.raises(ServerConfigError, match=f"cannot listen on {server.http_address}: "):
        PolicyServer(config, standard_policies()).start()


def expecting_continue(server: PolicyServer, headers: str, body: bytes) -> tuple[bytes, bytes]:
    """What the port answers to headers with `Expect: 100-continue` before the body is sent
    (within a second), and its whole answer once the body is sent."""
    host, port = server.http_address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(headers.encode())
        connection.settimeout(1)
        try:
            interim = connection.recv(65536)
        except TimeoutError:
            interim = b""
        if interim.startswith(b"HTTP/1.1 100 "):
            connection.settimeout(10)
            connection.sendall(body)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return interim, answer
        return interim, b""


def continue_headers(body: bytes, expect: str = "100-continue", token: str = TOKEN) -> str:
    return (
        "POST /v2/models/linear/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nExpect: {expect}\r\n\r\n"
    )


def test_a_client_that_expects_100_continue_is_answered_before_it_sends_the_body(server):
    body = json.dumps(infer_body(SENT.tolist(), [5, 4])).encode()
    interim, answer = expecting_continue(server, continue_headers(body), body)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answer.startswith(b"HTTP/1.1 200 ")
    outputs = json.loads(answer.split(b"\r\n\r\n", 1)[1])["outputs"]
    assert outputs[0]["data"] == greedy_by_hand(SENT, 2).tolist()


@pytest.mark.parametrize(
    ("expect", "token", "status"), [("100-continue", "wrong", b"401"), ("something-else", TOKEN, b"417")]
)
def test_a_body_that_would_be_refused_is_refused_before_it_is_sent(server, expect, token, status):
    body = json.dumps(infer_body(SENT.tolist(), [5, 4])).encode()
    interim, _ = expecting_continue(server, continue_headers(body, expect, token), body)
    assert interim.startswith(b"HTTP/1.1 " + status + b" ")
    assert b'"error"' in interim

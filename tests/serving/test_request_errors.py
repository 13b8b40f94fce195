"""Every bad request gets its exact status code and a message naming the problem; serving goes on."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from serving_support import greedy_by_hand, observations, standard_policies, start_server

from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.protos import policy_service_pb2_grpc as pb_grpc
from gymserve.serving.client.tensors import to_tensor
from gymserve.serving.server.policy_server import PolicyServer

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
EXHAUSTED, FAILED = grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION
GOOD = observations(8, seed=5)

CLIENT_CALLS = {
    "wrong shape": (dict(observations=np.zeros(3)), INVALID, "expected (4,) or a batch"),
    "wrong batched shape": (dict(observations=np.zeros((2, 5))), INVALID, "expected (4,) or a batch"),
    "NaN": (dict(observations=[0.0, np.nan, 0.0, 0.0]), INVALID, "NaN or infinite"),
    "infinity": (dict(observations=[[0.0, 0.0, np.inf, 0.0]]), INVALID, "NaN or infinite"),
    "empty batch": (dict(observations=np.zeros((0, 4))), INVALID, "batch is empty"),
    "epsilon above 1": (
        dict(observations=GOOD, mode="epsilon_greedy", epsilon=1.5),
        INVALID,
        "epsilon in [0, 1]",
    ),
    "epsilon missing": (dict(observations=GOOD, mode="epsilon_greedy"), INVALID, "epsilon in [0, 1]"),
    "epsilon NaN": (dict(observations=GOOD, mode="epsilon_greedy", epsilon=float("nan")), INVALID, "epsilon"),
    "unknown policy": (dict(observations=GOOD, policy="nope"), NOT_FOUND, "no policy named 'nope'"),
    "unknown version": (dict(observations=GOOD, version=9), NOT_FOUND, "no version 9; versions: 1, 2"),
    "failed policy": (dict(observations=GOOD, policy="broken"), FAILED, "no version that loaded"),
    "batch over the limit": (dict(observations=np.zeros((2049, 4))), EXHAUSTED, "limit of 2048"),
    "message over the limit": (
        dict(observations=np.zeros((2 * 2048 * 16, 4))),
        EXHAUSTED,
        # the request's 1 MiB of float32 plus its framing, against the server's 256 KiB limit
        "Received message larger than max (1048602 vs. 262144)",
    ),
}


def assert_still_serving(client: PolicyClient) -> None:
    np.testing.assert_array_equal(client.act(GOOD, "linear", version=1), greedy_by_hand(GOOD, version=1))


@pytest.mark.parametrize("case", list(CLIENT_CALLS))
def test_bad_calls_get_their_status_code_and_the_server_keeps_serving(client: PolicyClient, case: str):
    arguments, code, message = CLIENT_CALLS[case]
    arguments = {"policy": "linear", **arguments}
    with pytest.raises(PolicyServiceError) as raised:
        client.act(**arguments)
    assert raised.value.code == code
    assert message in raised.value.details, raised.value.details
    assert str(raised.value).startswith(code.name)
    assert_still_serving(client)


def malformed(**fields: object) -> pb.ActRequest:
    return pb.ActRequest(policy_name="linear", observations=to_tensor(GOOD), **fields)


RAW_REQUESTS = {
    "int64 observations": (
        pb.ActRequest(policy_name="linear", observations=to_tensor(np.zeros((2, 4), np.int64))),
        "expected DATA_TYPE_FLOAT32",
    ),
    "missing data type": (
        pb.ActRequest(policy_name="linear", observations=pb.Tensor(shape=[4])),
        "DATA_TYPE_UNSPECIFIED",
    ),
    "bytes disagree with shape": (
        pb.ActRequest(
            policy_name="linear",
            observations=pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, shape=[2, 4], content=b"\0" * 12),
        ),
        "holds 12 bytes; shape (2, 4) of float32 needs 32",
    ),
    "negative dimension": (
        pb.ActRequest(
            policy_name="linear", observations=pb.Tensor(dtype=pb.DATA_TYPE_FLOAT32, shape=[-1, 4])
        ),
        "must not be negative",
    ),
    "unknown mode": (malformed(mode=9), "unknown action mode 9"),
}


@pytest.mark.parametrize("case", list(RAW_REQUESTS))
def test_malformed_wire_requests_are_invalid_arguments(server: PolicyServer, client: PolicyClient, case: str):
    request, message = RAW_REQUESTS[case]
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as raised:
        pb_grpc.PolicyServiceStub(channel).Act(request, timeout=10)
    assert raised.value.code() == INVALID
    assert message in raised.value.details()
    assert_still_serving(client)


def test_unknown_policies_are_not_found_in_get_policy(client: PolicyClient):
    with pytest.raises(PolicyServiceError) as raised:
        client.get_policy("nope")
    assert raised.value.code == NOT_FOUND and "serving: broken, linear, scripted" in raised.value.details


def test_a_bad_step_ends_its_stream_with_the_status_and_a_new_stream_works(client: PolicyClient):
    with client.stream("linear", version=1) as session:
        session.step(GOOD[0])
        with pytest.raises(PolicyServiceError) as raised:
            session.step([1.0, 2.0])
        assert raised.value.code == INVALID and session.closed
        with pytest.raises(RuntimeError, match="session is closed"):
            session.step(GOOD[0])
    with client.stream("linear", version=1) as session:
        assert session.step(GOOD[0]) == greedy_by_hand(GOOD[0], version=1)


def test_mistakes_the_client_can_see_are_raised_before_sending(client: PolicyClient):
    with pytest.raises(ValueError, match="unknown action mode 'greediest'; expected one of: greedy"):
        client.act(GOOD, "linear", mode="greediest")
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
        client.act(GOOD, "linear", seed=-1)
    with pytest.raises(ValueError, match="observations must be numbers"):
        client.act(["a", "b", "c", "d"], "linear")


def test_streams_beyond_the_free_threads_are_refused_until_one_closes():
    server = start_server(standard_policies(), workers=3)
    try:
        with PolicyClient(server.address) as client:
            first, second = client.stream("linear"), client.stream("linear")
            first.step(GOOD[0]), second.step(GOOD[0])
            with client.stream("linear") as third, pytest.raises(PolicyServiceError) as raised:
                third.step(GOOD[0])
            assert raised.value.code == EXHAUSTED and "all 2 stream slots are in use" in raised.value.details
            assert_still_serving(client)  # the thread kept free answers unary calls
            first.close()
            with client.stream("linear") as fourth:
                assert fourth.step(GOOD[0]) == greedy_by_hand(GOOD[0], version=2)
            second.close()
    finally:
        server.stop(grace=0)

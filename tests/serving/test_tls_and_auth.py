"""TLS and bearer-token authentication work when enabled and refuse clients that get them wrong."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_support import (
    greedy_by_hand,
    observations,
    self_signed_certificate,
    standard_policies,
    start_server,
)

from gymserve.serving import PolicyClient, PolicyServiceError

TOKEN = "s3cret-token"
BATCH = observations(5, seed=9)


def refused_with(code: grpc.StatusCode, call) -> str:
    with pytest.raises(PolicyServiceError) as raised:
        call()
    assert raised.value.code == code
    return raised.value.details


@pytest.fixture(scope="module")
def token_server():
    server = start_server(standard_policies(), auth_token=TOKEN)
    yield server
    server.stop(grace=0)


def test_calls_with_the_token_are_answered(token_server):
    with PolicyClient(token_server.address, token=TOKEN) as client:
        np.testing.assert_array_equal(client.act(BATCH, "linear", version=1), greedy_by_hand(BATCH))
        assert [summary.name for summary in client.list_policies()] == ["broken", "linear", "scripted"]
        with client.stream("scripted") as session:
            assert session.step(BATCH[0]) == 0


@pytest.mark.parametrize(
    ("token", "problem"), [(None, "missing 'authorization: Bearer"), ("wrong", "invalid bearer")]
)
def test_calls_without_the_right_token_are_unauthenticated(token_server, token, problem):
    with PolicyClient(token_server.address, token=token) as client:
        assert problem in refused_with(grpc.StatusCode.UNAUTHENTICATED, lambda: client.act(BATCH, "linear"))
        refused_with(grpc.StatusCode.UNAUTHENTICATED, client.list_policies)
        refused_with(grpc.StatusCode.UNAUTHENTICATED, lambda: client.get_policy("linear"))
        with client.stream("linear") as session:
            refused_with(grpc.StatusCode.UNAUTHENTICATED, lambda: session.step(BATCH[0]))
    with PolicyClient(token_server.address, token=TOKEN) as client:
        np.testing.assert_array_equal(client.act(BATCH, "linear", version=1), greedy_by_hand(BATCH))


def test_health_checks_need_no_token(token_server):
    with grpc.insecure_channel(token_server.address) as channel:
        request = health_pb2.HealthCheckRequest(service="linear")
        response = health_pb2_grpc.HealthStub(channel).Check(request, timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_serves_clients_that_trust_the_certificate_and_refuses_the_others(tmp_path: Path):
    trusted = self_signed_certificate(tmp_path)
    (tmp_path / "other").mkdir()
    untrusted = self_signed_certificate(tmp_path / "other")
    certificate, key = trusted
    server = start_server(
        standard_policies(), tls_certificate=certificate, tls_private_key=key, auth_token=TOKEN
    )
    try:
        with PolicyClient(server.address, token=TOKEN, tls_root_certificates=certificate) as client:
            np.testing.assert_array_equal(client.act(BATCH, "linear", version=1), greedy_by_hand(BATCH))
        environ = {"GYMSERVE_AUTH_TOKEN": TOKEN, "GYMSERVE_TLS_CA": str(certificate)}
        with PolicyClient.from_environment(server.address, environ) as client:
            np.testing.assert_array_equal(client.act(BATCH, "linear", version=1), greedy_by_hand(BATCH))
        for refused in (
            PolicyClient(server.address, token=TOKEN, timeout=5),  # plaintext to a TLS port
            PolicyClient(server.address, token=TOKEN, tls_root_certificates=untrusted[0], timeout=5),
        ):
            with refused, pytest.raises(PolicyServiceError) as raised:
                refused.act(BATCH, "linear")
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(grace=0)


def test_a_client_from_the_environment_sends_the_token_and_checks_the_ca_file(token_server, tmp_path):
    with PolicyClient.from_environment(token_server.address, {"GYMSERVE_AUTH_TOKEN": TOKEN}) as client:
        np.testing.assert_array_equal(client.act(BATCH, "linear", version=1), greedy_by_hand(BATCH))
    with PolicyClient.from_environment(token_server.address, {}) as client:
        refused_with(grpc.StatusCode.UNAUTHENTICATED, lambda: client.act(BATCH, "linear"))
    missing = tmp_path / "ca.pem"
    with pytest.raises(ValueError, match=f"GYMSERVE_TLS_CA names {missing}, which is not a file"):
        PolicyClient.from_environment(token_server.address, {"GYMSERVE_TLS_CA": str(missing)})

"""Prometheus metrics scraped over HTTP move by exactly the calls made, by status code."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from serving_support import observations, standard_policies, start_server

from gymserve.serving import PolicyClient, PolicyServiceError

GOOD = observations(3, seed=1)


def scrape(address: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_move_by_exactly_the_calls_made_by_status_code():
    server = start_server(standard_policies(), metrics_address="127.0.0.1:0")
    act = {"grpc_type": "unary", "grpc_service": "gymserve.serving.v1.PolicyService", "grpc_method": "Act"}
    try:
        with PolicyClient(server.address) as client:
            before = scrape(server.metrics_address)
            for _ in range(7):
                client.act(GOOD, "linear", version=1)
            for name in ("nope", "broken", "nope"):
                with pytest.raises(PolicyServiceError):
                    client.act(GOOD, name)
            with client.stream("linear", version=2) as session:
                session.step(GOOD[0])
                during = scrape(server.metrics_address)
            after = scrape(server.metrics_address)
    finally:
        server.stop(grace=0)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("grpc_server_started_total", **act) == 10
    assert moved("grpc_server_handled_total", **act, grpc_code="OK") == 7
    assert moved("grpc_server_handled_total", **act, grpc_code="NOT_FOUND") == 2
    assert moved("grpc_server_handled_total", **act, grpc_code="FAILED_PRECONDITION") == 1
    assert moved("grpc_server_handling_seconds_count", **act) == 10
    assert moved("gymserve_policy_requests_total", policy="linear", version="1") == 7
    assert moved("gymserve_policy_requests_total", policy="linear", version="2") == 1
    assert moved("gymserve_batch_size_sum", policy="linear") == 7 * 3 + 1
    assert moved("gymserve_model_inference_seconds_count", policy="linear", version="1") == 7
    assert value(during, "gymserve_open_streams", grpc_method="StreamAct") == 1
    assert value(after, "gymserve_open_streams", grpc_method="StreamAct") == 0
    assert value(after, "gymserve_policy_versions", policy="linear", state="available") == 2
    assert value(after, "gymserve_policy_versions", policy="broken", state="failed") == 1
    assert value(after, "process_resident_memory_bytes") > 0
    stream = {"grpc_type": "bidi_stream", "grpc_service": "gymserve.serving.v1.PolicyService"}
    assert moved("grpc_server_handled_total", **stream, grpc_method="StreamAct", grpc_code="OK") == 1


def test_the_latency_histograms_have_sub_millisecond_buckets():
    server = start_server(standard_policies(), metrics_address="127.0.0.1:0")
    try:
        with PolicyClient(server.address) as client:
            client.act(GOOD, "linear", version=1)
        buckets = {
            dict(labels)["le"]
            for name, labels in scrape(server.metrics_address)
            if name == "gymserve_policy_request_seconds_bucket"
        }
    finally:
        server.stop(grace=0)
    assert {"5e-05", "0.0001", "0.00025", "0.0005"} <= buckets


def test_refused_and_answered_calls_of_one_method_are_each_counted_under_their_own_code():
    # the interceptors keep each method's wrapped handler; a refusal in between must not stick
    server = start_server(standard_policies(), metrics_address="127.0.0.1:0", auth_token="token")
    act = {"grpc_type": "unary", "grpc_service": "gymserve.serving.v1.PolicyService", "grpc_method": "Act"}
    try:
        with PolicyClient(server.address, token="token") as client, PolicyClient(server.address) as stranger:
            before = scrape(server.metrics_address)
            for _ in range(3):
                client.act(GOOD, "linear", version=1)
                with pytest.raises(PolicyServiceError, match="UNAUTHENTICATED"):
                    stranger.act(GOOD, "linear", version=1)
            client.act(GOOD, "linear", version=1)
            after = scrape(server.metrics_address)
    finally:
        server.stop(grace=0)
    assert (
        value(after, "grpc_server_handled_total", **act, grpc_code="OK")
        - value(before, "grpc_server_handled_total", **act, grpc_code="OK")
        == 4
    )
    assert (
        value(after, "grpc_server_handled_total", **act, grpc_code="UNAUTHENTICATED")
        - value(before, "grpc_server_handled_total", **act, grpc_code="UNAUTHENTICATED")
        == 3
    )
    assert value(after, "gymserve_policy_requests_total", policy="linear", version="1") == 4

"""Health, reflection and graceful shutdown of a server loading a repository with a broken export."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from serving_support import SlowPolicy, greedy_by_hand, observations, start_server

from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.client.protos import SERVICE_NAME
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import load_configured_policies
from gymserve.serving.server.served_policies import ServedPolicies
from tools.generate_protos import PROTO_ROOT

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def make_repository(root: Path, export: Path) -> Path:
    """good/1 and good/3 (the same export), broken/1 whose policy.json is cut short."""
    repository = root / "repository"
    for version in ("1", "3"):
        shutil.copytree(export, repository / "good" / version)
    broken = shutil.copytree(export, repository / "broken" / "1")
    metadata = broken / "policy.json"
    metadata.write_text(metadata.read_text()[:40])
    return repository


def health_status(channel: grpc.Channel, service: str) -> int:
    request = health_pb2.HealthCheckRequest(service=service)
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status


@pytest.fixture(scope="module")
def repository_server(continuous_export: Path, tmp_path_factory: pytest.TempPathFactory):
    repository = make_repository(tmp_path_factory.mktemp("health"), continuous_export)
    settings = {"good": {"versions": "all"}}
    server = start_server(
        load_configured_policies(ServerConfig(repository=repository, policy_settings=settings))
    )
    yield server
    server.stop(grace=0)


def test_a_policy_that_failed_to_load_is_not_serving_while_the_others_serve(repository_server):
    with grpc.insecure_channel(repository_server.address) as channel:
        assert health_status(channel, "") == SERVING
        assert health_status(channel, "good") == SERVING
        assert health_status(channel, "broken") == NOT_SERVING
    with PolicyClient(repository_server.address) as client:
        summaries = {summary.name: summary.versions for summary in client.list_policies()}
        assert [(v.version, v.available) for v in summaries["good"]] == [(1, True), (3, True)]
        (broken,) = summaries["broken"]
        assert not broken.available and "truncated or invalid" in broken.error
        assert broken.error.startswith(
            "broken/1/policy.json: "
        )  # named in the repository, not by server path
        assert client.act_with_details(np.zeros(4), "good").policy_version == 3
        with pytest.raises(PolicyServiceError) as raised:
            client.act(np.zeros(4), "broken")
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


def test_reflection_lists_the_policy_and_health_services(repository_server):
    with grpc.insecure_channel(repository_server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"gymserve.serving.v1.PolicyService", "grpc.health.v1.Health"} <= services


def test_reflection_names_the_proto_by_its_path_under_protos_with_its_language_options(repository_server):
    with grpc.insecure_channel(repository_server.address) as channel:
        proto = ProtoReflectionDescriptorDatabase(channel).FindFileContainingSymbol(SERVICE_NAME)
    assert proto.name == "gymserve/serving/v1/policy_service.proto"
    assert (PROTO_ROOT / proto.name).is_file()
    assert proto.package == "gymserve.serving.v1"
    assert proto.options.go_package.endswith("gymserve/serving/v1;servingv1")
    assert (proto.options.java_package, proto.options.csharp_namespace) == (
        "io.gymserve.serving.v1",
        "Gymserve.Serving.V1",
    )


def test_stop_lets_an_in_flight_call_finish_and_refuses_new_ones():
    policies = ServedPolicies()
    slow = SlowPolicy(seconds=0.5)
    policies.add("slow", 1, slow)
    server = start_server(policies)
    batch = observations(4)
    results: list[np.ndarray] = []
    with PolicyClient(server.address) as client:
        caller = threading.Thread(target=lambda: results.append(client.act(batch, "slow")))
        caller.start()
        assert slow.started.wait(10)
        server.stop(grace=10)
        caller.join(10)
        np.testing.assert_array_equal(results[0], greedy_by_hand(batch))
        with pytest.raises(PolicyServiceError) as raised:
            client.act(batch, "slow")
        assert raised.value.code == grpc.StatusCode.UNAVAILABLE

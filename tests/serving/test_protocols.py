"""The protocol registry drives the server: registration, reflection, auth, metrics; missing ones skipped."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from serving_support import standard_policies, start_server, status_without_token

from gymserve.serving import apis
from gymserve.serving.apis.protocol import Rpc, load_protocols, rpcs_of
from gymserve.serving.server.policy_server import PolicyServer

TOKEN = "s3cret-token"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


@pytest.fixture(scope="module")
def token_server() -> Iterator[PolicyServer]:
    server = start_server(standard_policies(), auth_token=TOKEN)
    yield server
    server.stop(grace=0)


def reflected_rpcs(channel: grpc.Channel) -> set[Rpc]:
    """Every method of every service the server's reflection lists, described through reflection."""
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = DescriptorPool(database)
    return {rpc for name in database.get_services() for rpc in rpcs_of(pool.FindServiceByName(name))}


def test_the_registry_lists_each_method_reflection_shows_with_its_kind():
    protocols, skipped = load_protocols(apis.PROTOCOLS)
    assert skipped == []
    registered = {rpc for protocol in protocols if protocol.reflected_services for rpc in protocol.rpcs}
    server = start_server(standard_policies())
    try:
        with grpc.insecure_channel(server.address) as channel:
            reflected = reflected_rpcs(channel)
    finally:
        server.stop(grace=0)
    reflection_rpc = Rpc(f"/{REFLECTION}/ServerReflectionInfo", "bidi_stream")
    assert {(rpc.path, rpc.kind) for rpc in reflected} == {
        (rpc.path, rpc.kind) for rpc in {*registered, reflection_rpc}
    }


def test_every_method_but_health_needs_the_token_on_every_protocol(token_server):
    protocols, _ = load_protocols(apis.PROTOCOLS)
    rpcs = [rpc for protocol in protocols for rpc in protocol.rpcs]
    rpcs.append(Rpc(f"/{REFLECTION}/ServerReflectionInfo", "bidi_stream"))  # server machinery, not a protocol
    assert {
        "/tensorflow.serving.PredictionService/Predict",
        "/inference.GRPCInferenceService/ModelInfer",
    } <= {rpc.path for rpc in rpcs}
    with grpc.insecure_channel(token_server.address) as channel:
        statuses = {rpc.path: status_without_token(channel, rpc) for rpc in rpcs}
    public = {rpc.path for rpc in rpcs if rpc.public}
    # List is in the descriptor but not in grpcio-health-checking's servicer: answered, unimplemented
    assert {path: statuses[path] for path in public} == {
        "/grpc.health.v1.Health/Check": grpc.StatusCode.OK,
        "/grpc.health.v1.Health/List": grpc.StatusCode.UNIMPLEMENTED,
        "/grpc.health.v1.Health/Watch": grpc.StatusCode.OK,
        "/inference.GRPCInferenceService/ServerLive": grpc.StatusCode.OK,
        "/inference.GRPCInferenceService/ServerReady": grpc.StatusCode.OK,
    }
    refused = {path: code for path, code in statuses.items() if path not in public}
    assert refused == dict.fromkeys(refused, grpc.StatusCode.UNAUTHENTICATED)
    assert len(refused) == len(rpcs) - len(public) >= 7


def test_a_protocol_whose_optional_package_is_missing_is_skipped_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow_serving", None)  # find_spec: not installed
    with caplog.at_level(logging.WARNING, logger="gymserve.serving"):
        server = start_server(standard_policies())
    try:
        with grpc.insecure_channel(server.address) as channel:
            predict = Rpc("/tensorflow.serving.PredictionService/Predict")
            assert status_without_token(channel, predict) == grpc.StatusCode.UNIMPLEMENTED
    finally:
        server.stop(grace=0)
    assert [protocol.name for protocol in server.protocols] == ["policy_service", "health", "open_inference"]
    skipped = [record.fields for record in caplog.records if record.getMessage() == "protocol_skipped"]
    assert skipped == [
        {
            "protocol": "gymserve.serving.apis.tf_serving.grpc_protocol:PROTOCOL",
            "reason": "the tf_serving protocol needs tensorflow_serving, which is not installed: "
            'pip install "gymserve[train]"',
        }
    ]


def test_a_protocol_module_that_imports_a_missing_optional_package_is_skipped(tmp_path, monkeypatch):
    (tmp_path / "needs_ray_protocol.py").write_text("import ray\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)
    protocols, skipped = load_protocols(["needs_ray_protocol:PROTOCOL", apis.PROTOCOLS[0]])
    assert [protocol.name for protocol in protocols] == ["policy_service"]
    assert [(entry.entry, entry.reason) for entry in skipped] == [
        (
            "needs_ray_protocol:PROTOCOL",
            "protocol needs_ray_protocol:PROTOCOL needs ray, which is not installed: "
            'pip install "gymserve[ray]"',
        )
    ]


def test_a_started_server_has_not_imported_tensorflow():
    script = (
        "import json, sys\n"
        "from gymserve.serving.server.config import ServerConfig\n"
        "from gymserve.serving.server.policy_server import PolicyServer\n"
        "from gymserve.serving.server.served_policies import ServedPolicies\n"
        "server = PolicyServer(ServerConfig(address='127.0.0.1:0'), ServedPolicies()).start()\n"
        "print(json.dumps([p.name for p in server.protocols]), 'tensorflow' in sys.modules)\n"
        "server.stop(grace=0)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    protocols, tensorflow_imported = run.stdout.rsplit(" ", 1)
    assert json.loads(protocols) == ["policy_service", "health", "tf_serving", "open_inference"]
    assert tensorflow_imported.strip() == "False"


def test_every_registered_method_has_a_metrics_series_at_zero_from_the_start():
    server = start_server(standard_policies())
    try:
        started = {
            (
                sample.labels["grpc_type"],
                sample.labels["grpc_service"],
                sample.labels["grpc_method"],
            ): sample.value
            for family in server.metrics.registry.collect()
            if family.name == "grpc_server_started"
            for sample in family.samples
        }
    finally:
        server.stop(grace=0)
    rpcs = [rpc for protocol in server.protocols for rpc in protocol.rpcs]
    assert started == {(rpc.kind, rpc.service, rpc.method): 0 for rpc in rpcs}
    assert ("unary", "tensorflow.serving.PredictionService", "GetModelMetadata") in started

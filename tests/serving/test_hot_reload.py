"""Hot reload: new versions appear, broken ones never replace working ones, streams keep theirs."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serving_support import (
    RELOAD_POLL_INTERVAL,
    cartpole_versions,
    corrupt_model,
    publish,
    start_reloading_server,
    wait_until,
)

from gymserve.policies import load
from gymserve.serving import PolicyClient, PolicyServiceError

OBSERVATION = np.array([0.5, -1.0, 0.25, 2.0], np.float32)


@pytest.mark.parametrize("batching", [{}, {"batching_max_size": 16}], ids=["unbatched", "batched"])
def test_versions_come_and_go_under_load_without_a_failed_request(
    discrete_export: Path, tmp_path: Path, batching: dict
):
    began = time.perf_counter()
    load(discrete_export).action(OBSERVATION)
    load_seconds = time.perf_counter() - began  # measured here, independently of the server
    versions = cartpole_versions(tmp_path)
    published = {1: publish(discrete_export, versions, 1)}
    removed: dict[int, float] = {}
    server = start_reloading_server(tmp_path / "repository", **batching)
    results: list[tuple[float, float, int]] = []  # (sent, answered, version)
    failures: list[Exception] = []
    stop = threading.Event()

    def act_continuously(client: PolicyClient) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                version = client.act_with_details(OBSERVATION, "cartpole").policy_version
                results.append((sent, time.monotonic(), version))
            except Exception as error:
                failures.append(error)

    try:
        with PolicyClient(server.address) as client:
            threads = [threading.Thread(target=act_continuously, args=(client,)) for _ in range(16)]
            for thread in threads:
                thread.start()
            for version in (2, 3, 4):
                published[version] = publish(discrete_export, versions, version)
                time.sleep(0.4)
            publish(discrete_export, versions, 5, damage=corrupt_model)
            wait_until(lambda: any(not v.available for v in client.get_policy("cartpole").versions))
            (failed,) = [v for v in client.get_policy("cartpole").versions if not v.available]
            assert failed.version == 5 and failed.error.startswith("cartpole/5/policy.onnx: ")
            with grpc.insecure_channel(server.address) as channel:
                request = health_pb2.HealthCheckRequest(service="cartpole")
                assert (
                    health_pb2_grpc.HealthStub(channel).Check(request).status
                    == health_pb2.HealthCheckResponse.SERVING
                )
            for version in (6, 7):
                published[version] = publish(discrete_export, versions, version)
                time.sleep(0.4)
            for version in (1, 2, 3):
                shutil.rmtree(versions / str(version))
                removed[version] = time.monotonic()
            wait_until(lambda: results and results[-1][2] == 7)
            time.sleep(0.5)
            stop.set()
            for thread in threads:
                thread.join()
    finally:
        stop.set()
        server.stop(grace=0)
    assert failures == []
    assert {version for _, _, version in results} <= set(published)
    # A call reaches the server some time after the client sends it, so a version published in
    # between may answer it: what no version may do is answer before it was published, or long
    # after it was removed.
    for sent, answered, version in results:
        assert published[version] < answered, f"version {version} answered before it was published"
        if version in removed:
            assert sent < removed[version] + 2 * RELOAD_POLL_INTERVAL + 1
    first_seven = min(answered for _, answered, version in results if version == 7)
    assert first_seven - published[7] <= RELOAD_POLL_INTERVAL + 3 * load_seconds + 1


def test_an_open_stream_keeps_its_version_until_its_episode_ends(discrete_export: Path, tmp_path: Path):
    versions = cartpole_versions(tmp_path)
    publish(discrete_export, versions, 1)
    server = start_reloading_server(tmp_path / "repository")
    try:
        with PolicyClient(server.address) as client, client.stream("cartpole") as session:
            assert session.step_with_details(OBSERVATION, episode_start=True).policy_version == 1
            publish(discrete_export, versions, 2)
            wait_until(lambda: client.act_with_details(OBSERVATION, "cartpole").policy_version == 2)
            assert session.step_with_details(OBSERVATION).policy_version == 1
            assert session.step_with_details(OBSERVATION, episode_end=True).policy_version == 1
            assert session.step_with_details(OBSERVATION, episode_start=True).policy_version == 2
    finally:
        server.stop(grace=0)


def test_labels_name_versions_and_the_version_policy_chooses_what_is_loaded(
    discrete_export: Path, tmp_path: Path
):
    versions = cartpole_versions(tmp_path)
    for version in (1, 2, 3, 4):
        publish(discrete_export, versions, version)
    settings = {"cartpole": {"versions": {"latest": 2}, "labels": {"stable": 1, "canary": 4}}}
    server = start_reloading_server(tmp_path / "repository", policy_settings=settings)
    try:
        with PolicyClient(server.address) as client:
            info = client.get_policy("cartpole")
            assert [(v.version, v.labels) for v in info.versions] == [
                (1, ("stable",)),
                (3, ()),
                (4, ("canary",)),
            ]
            assert client.act_with_details(OBSERVATION, "cartpole", label="stable").policy_version == 1
            assert client.get_policy("cartpole", label="canary").version == 4
            with pytest.raises(PolicyServiceError) as raised:
                client.act(OBSERVATION, "cartpole", label="beta")
            assert raised.value.code == grpc.StatusCode.NOT_FOUND
            assert "has no label 'beta'; labels: canary, stable" in raised.value.details
            with pytest.raises(PolicyServiceError) as raised:
                client.act(OBSERVATION, "cartpole", label="stable", version=1)
            assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        server.stop(grace=0)


def test_a_repository_with_stray_folders_serves_the_good_versions_and_lists_the_rest(
    discrete_export: Path, tmp_path: Path
):
    versions = cartpole_versions(tmp_path)
    for name in ("1", "01", "2", "²", "20250101120000000000"):
        shutil.copytree(discrete_export, versions / name)
    (versions / "3").mkdir()
    settings = {"cartpole": {"versions": "all"}}
    server = start_reloading_server(tmp_path / "repository", policy_settings=settings)
    try:
        with PolicyClient(server.address) as client:
            assert [(v.version, v.available) for v in client.get_policy("cartpole").versions] == [
                (1, True),
                (2, True),
            ]
            assert client.act_with_details(OBSERVATION, "cartpole").policy_version == 2
            assert dict(client.ignored_entries()) == {
                "cartpole/01": "version 1 is spelled more than once (01, 1)",
                "cartpole/20250101120000000000": (
                    "version 20250101120000000000 is larger than 9223372036854775807, the largest int64"
                ),
                "cartpole/3": "empty version directory (an export still being copied in?)",
                "cartpole/²": "not a version: version directories are named by decimal integers",
            }
    finally:
        server.stop(grace=0)

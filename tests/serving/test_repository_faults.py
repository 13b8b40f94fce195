"""A repository changed under a running server: broken, unreadable, half-copied and mismatched versions."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from serving_support import (
    RELOAD_POLL_INTERVAL,
    cartpole_versions,
    corrupt_model,
    publish,
    start_reloading_server,
    wait_until,
)

from gymserve.serving import PolicyClient

OBSERVATION = np.array([0.5, -1.0, 0.25, 2.0], np.float32)
CONTINUOUS_ACTIONS = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 3.0], np.float32))


def policy_json_as_directory(version: Path) -> None:
    (version / "policy.json").unlink()
    (version / "policy.json").mkdir()


def unreadable(version: Path) -> None:
    version.chmod(0)


def listed(client: PolicyClient, name: str) -> list:
    (versions,) = [summary.versions for summary in client.list_policies() if summary.name == name]
    return versions


def versions_of(client: PolicyClient, name: str) -> list[tuple[int, bool]]:
    return [(v.version, v.available) for v in listed(client, name)]


def error_of(client: PolicyClient, name: str, version: int) -> str:
    (error,) = [v.error for v in listed(client, name) if v.version == version]
    return error


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (policy_json_as_directory, "policy.json"),
        pytest.param(
            unreadable,
            "Permission denied",
            marks=pytest.mark.skipif(os.geteuid() == 0, reason="root reads a directory of mode 000"),
        ),
    ],
    ids=["policy.json is a directory", "mode 000"],
)
def test_a_broken_version_fails_alone_logged_once_while_other_policies_keep_reloading(
    damage, problem: str, discrete_export: Path, continuous_export: Path, tmp_path: Path, caplog
):
    versions = cartpole_versions(tmp_path)
    publish(discrete_export, versions, 1)
    pendulum = tmp_path / "repository" / "pendulum"
    pendulum.mkdir()
    publish(continuous_export, pendulum, 1)
    server = start_reloading_server(tmp_path / "repository")
    try:
        with caplog.at_level(logging.INFO, "gymserve.serving"), PolicyClient(server.address) as client:
            publish(discrete_export, versions, 2, damage=damage)
            wait_until(lambda: versions_of(client, "cartpole") == [(1, True), (2, False)])
            publish(continuous_export, pendulum, 2)
            wait_until(lambda: client.get_policy("pendulum").version == 2)
            time.sleep(5 * RELOAD_POLL_INTERVAL)  # five more scans see the broken version unchanged
            error = error_of(client, "cartpole", 2)
            assert error.startswith("cartpole/2") and problem in error
            assert str(tmp_path) not in error
            assert client.act_with_details(OBSERVATION, "cartpole").policy_version == 1
    finally:
        server.stop(grace=0)
    failures = [r.fields for r in caplog.records if r.getMessage() == "policy_load_failed"]
    assert [(f["policy"], f["version"], f["error"]) for f in failures] == [("cartpole", 2, error)]
    assert not [
        r for r in caplog.records if r.levelno >= logging.ERROR and r.getMessage() != "policy_load_failed"
    ]


@pytest.mark.parametrize("allowed", [False, True], ids=["refused", "allowed"])
def test_a_version_whose_spaces_differ_is_failed_naming_both_unless_space_changes_are_allowed(
    allowed: bool, discrete_export: Path, continuous_export: Path, tmp_path: Path
):
    versions = cartpole_versions(tmp_path)
    publish(discrete_export, versions, 1)
    server = start_reloading_server(tmp_path / "repository", allow_space_changes=allowed)
    try:
        with PolicyClient(server.address) as client:
            publish(continuous_export, versions, 2)  # same observations, continuous actions
            if allowed:
                wait_until(lambda: versions_of(client, "cartpole") == [(2, True)])
                assert np.shape(client.act(OBSERVATION, "cartpole")) == (2,)
                return
            wait_until(lambda: versions_of(client, "cartpole") == [(1, True), (2, False)])
            assert error_of(client, "cartpole", 2) == (
                f"cartpole/2: action space {CONTINUOUS_ACTIONS} differs from {gym.spaces.Discrete(2)} "
                "(version 1's); start the server with --allow-space-changes to serve it"
            )
            assert client.act_with_details(OBSERVATION, "cartpole").policy_version == 1
            shutil.rmtree(versions / "1")  # nothing left that version 2 would replace
            wait_until(lambda: versions_of(client, "cartpole") == [(2, True)])
    finally:
        server.stop(grace=0)


def test_a_version_copied_in_file_by_file_is_served_once_complete(discrete_export: Path, tmp_path: Path):
    versions = cartpole_versions(tmp_path)
    publish(discrete_export, versions, 1)
    server = start_reloading_server(tmp_path / "repository")
    try:
        with PolicyClient(server.address) as client:
            copying = versions / "2"
            copying.mkdir()
            shutil.copy2(discrete_export / "policy.json", copying)  # names files not there yet
            wait_until(lambda: versions_of(client, "cartpole") == [(1, True), (2, False)])
            assert error_of(client, "cartpole", 2).startswith("cartpole/2/policy.onnx: ")
            for entry in sorted(discrete_export.iterdir()):
                if entry.is_dir():
                    shutil.copytree(entry, copying / entry.name)
                elif entry.name != "policy.json":
                    shutil.copy2(entry, copying)  # keeps the source's modification time
            wait_until(lambda: versions_of(client, "cartpole") == [(2, True)])
    finally:
        server.stop(grace=0)


def test_a_broken_version_repaired_in_place_is_served_once_repaired(discrete_export: Path, tmp_path: Path):
    versions = cartpole_versions(tmp_path)
    publish(discrete_export, versions, 1)
    server = start_reloading_server(tmp_path / "repository")
    try:
        with PolicyClient(server.address) as client:
            publish(discrete_export, versions, 2, damage=corrupt_model)
            wait_until(lambda: versions_of(client, "cartpole") == [(1, True), (2, False)])
            time.sleep(3 * RELOAD_POLL_INTERVAL)
            shutil.copy2(discrete_export / "policy.onnx", versions / "2")
            wait_until(lambda: versions_of(client, "cartpole") == [(2, True)])
            assert client.act_with_details(OBSERVATION, "cartpole").policy_version == 2
    finally:
        server.stop(grace=0)

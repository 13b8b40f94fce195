"""A served CNN policy: uint8 frames cross the wire at one byte per pixel, and the served actions
(Act and StreamAct, greedy and seeded stochastic) equal the in-process policy's."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from image_policies import frames, image_policy
from serving_support import start_server

from gymserve.policies import export_policy, load
from gymserve.serving import PolicyClient
from gymserve.serving.client.policy_client import act_request
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.server.served_policies import ServedPolicies


@pytest.fixture(scope="module")
def policy():
    return image_policy()


@pytest.fixture(scope="module")
def client(policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyClient]:
    export = tmp_path_factory.mktemp("exports") / "bright_side"
    export_policy(policy, export, metadata={"env_id": "gymserve/BrightSide-v0", "algorithm": "dqn"})
    served = ServedPolicies()
    served.add("bright_side", 1, load(export, "onnx"))
    server = start_server(served)
    try:
        with PolicyClient(server.address) as client:
            yield client
    finally:
        server.stop()


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

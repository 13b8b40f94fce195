"""Served actions equal the actions of the same policy in process, and hand-computed ones."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest
from serving_support import WEIGHTS, LinearPolicy, greedy_by_hand, observations, start_server

from gymserve.policies import load
from gymserve.serving import PolicyClient
from gymserve.serving.client.protos import policy_service_pb2 as pb
from gymserve.serving.client.protos import policy_service_pb2_grpc
from gymserve.serving.client.tensors import to_tensor
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer, load_configured_policies


def test_greedy_actions_of_a_thousand_observations_are_computed_by_hand(client: PolicyClient):
    batch = observations(1000)
    served = client.act(batch, "linear", version=1)
    assert served.dtype == np.int64 and served.shape == (1000,)
    np.testing.assert_array_equal(served, greedy_by_hand(batch, version=1))


def test_one_observation_gets_one_action_like_a_local_policy(client: PolicyClient):
    observation = observations(1)[0]
    action = client.act(observation, "linear", version=1)
    assert action == LinearPolicy(WEIGHTS[1]).action(observation).action
    assert np.shape(action) == ()


def test_on_the_wire_one_observation_gets_an_unbatched_action_and_a_batch_of_one_distribution(
    server: PolicyServer,
):
    observation = observations(1, seed=4)[0]
    with grpc.insecure_channel(server.address) as channel:
        stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
        single, batch_of_one = (
            stub.Act(
                pb.ActRequest(
                    policy_name="linear",
                    policy_version=1,
                    observations=to_tensor(o),
                    return_distribution=True,
                )
            )
            for o in (observation, observation[None])
        )
    assert (single.actions.dtype, list(single.actions.shape)) == (pb.DATA_TYPE_INT64, [])
    assert list(batch_of_one.actions.shape) == [1]
    assert single.actions.content == batch_of_one.actions.content == greedy_by_hand(observation).tobytes()
    assert (
        list(single.distribution["logits"].shape) == list(batch_of_one.distribution["logits"].shape) == [1, 2]
    )


def test_the_latest_version_answers_unless_one_is_asked_for(client: PolicyClient):
    batch = observations(50, seed=1)
    latest = client.act_with_details(batch, "linear")
    assert (latest.policy_name, latest.policy_version) == ("linear", 2)
    np.testing.assert_array_equal(latest.actions, greedy_by_hand(batch, version=2))
    first = client.act_with_details(batch, "linear", version=1)
    assert first.policy_version == 1
    np.testing.assert_array_equal(first.actions, greedy_by_hand(batch, version=1))


@pytest.mark.parametrize(("mode", "epsilon"), [("stochastic", None), ("epsilon_greedy", 0.3)])
def test_seeded_random_choices_are_reproducible_and_equal_in_process_ones(
    client: PolicyClient, mode, epsilon
):
    batch = observations(500, seed=2)
    first = client.act(batch, "linear", mode=mode, epsilon=epsilon, seed=7)
    again = client.act(batch, "linear", mode=mode, epsilon=epsilon, seed=7)
    other_seed = client.act(batch, "linear", mode=mode, epsilon=epsilon, seed=8)
    local = LinearPolicy(WEIGHTS[2]).action(batch, mode=mode, epsilon=epsilon, seed=7).action
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, local)
    assert not np.array_equal(first, other_seed)


def test_distribution_parameters_are_the_policy_logits(client: PolicyClient):
    batch = observations(20, seed=3)
    result = client.act_with_details(batch, "linear", version=1, return_distribution=True)
    assert list(result.distribution) == ["logits"]
    np.testing.assert_array_equal(result.distribution["logits"], batch @ WEIGHTS[1])


def test_policy_descriptions_list_spaces_versions_and_failures(client: PolicyClient):
    info = client.get_policy("linear")
    assert (info.name, info.version) == ("linear", 2)
    assert info.observation_space.kind == "box" and info.observation_space.shape == (4,)
    assert np.all(np.isinf(info.observation_space.low)) and info.observation_space.dtype == np.float32
    assert (info.action_space.kind, info.action_space.n) == ("discrete", 2)
    assert [(v.version, v.available) for v in info.versions] == [(1, True), (2, True)]
    summaries = {summary.name: summary for summary in client.list_policies()}
    assert sorted(summaries) == ["broken", "linear", "scripted"]
    (broken,) = summaries["broken"].versions
    assert not broken.available and "truncated" in broken.error


def test_an_exported_onnx_policy_serves_the_actions_it_gives_in_process(continuous_export: Path):
    local = load(continuous_export)
    policies = load_configured_policies(ServerConfig(policies={"pendulum": continuous_export}))
    server = start_server(policies)
    batch = np.random.default_rng(4).normal(0.0, 2.0, (1000, 4)).astype(np.float32)
    try:
        with PolicyClient(server.address) as client:
            served = client.act(batch, "pendulum")
            with client.stream("pendulum") as session:
                one_by_one = np.stack([session.step(observation) for observation in batch])
            sampled = client.act(batch, "pendulum", mode="stochastic", seed=11)
            info = client.get_policy("pendulum")
    finally:
        server.stop(grace=0)
    assert served.dtype == np.float32 and served.shape == (1000, 2)
    np.testing.assert_array_equal(served, local.action(batch).action)
    np.testing.assert_array_equal(
        one_by_one, np.stack([local.action(observation).action for observation in batch])
    )
    np.testing.assert_array_equal(sampled, local.action(batch, mode="stochastic", seed=11).action)
    assert (info.metadata["algorithm"], info.metadata["train_step"]) == ("sac", 42)
    np.testing.assert_array_equal(info.action_space.high, [1.0, 3.0])


def test_the_tensorflow_backend_serves_the_savedmodel_export(discrete_export: Path):
    policies = load_configured_policies(
        ServerConfig(policies={"cartpole": discrete_export}, backend="tensorflow")
    )
    assert policies.resolve("cartpole").policy.backend == "tensorflow"
    server = start_server(policies)
    batch = np.random.default_rng(5).normal(0.0, 2.0, (300, 4)).astype(np.float32)
    try:
        with PolicyClient(server.address) as client:
            served = client.act(batch, "cartpole")
    finally:
        server.stop(grace=0)
    np.testing.assert_array_equal(served, load(discrete_export, backend="tensorflow").action(batch).action)

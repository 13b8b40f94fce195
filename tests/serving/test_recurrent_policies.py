"""A recurrent policy acts alike in process, in its SavedModel, in ONNX and over gRPC, state and all.

The policy is the LSTM actor of a recurrent PPO run on `gymserve/CartPoleNoVelocity-v1` (the
shipped config, seed 0, best checkpoint at step 92,160), its weights kept in
`tests/policies/data/`; it balances the pole without seeing velocities, so an episode lasts long
enough to compare 200 steps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from serving_support import start_server

from gymserve.agents.networks import recurrent_actor_critic
from gymserve.agents.training.config import shipped_config_path
from gymserve.policies import load
from gymserve.policies.actor_policy import ActorPolicy
from gymserve.policies.export.policy_export import export_policy
from gymserve.serving import PolicyClient
from gymserve.serving.client.policy_client import PolicyServiceError
from gymserve.serving.server.policy_server import PolicyServer
from gymserve.serving.server.served_policies import ServedPolicies

ENV_ID = "gymserve/CartPoleNoVelocity-v1"
WEIGHTS = Path(__file__).parents[1] / "policies" / "data" / "ppo_lstm_cartpole_no_velocity.weights.h5"
STEPS = 200


@pytest.fixture(scope="module")
def policy() -> ActorPolicy:
    config = json.loads(shipped_config_path("ppo", ENV_ID).read_text())
    env = gym.make(ENV_ID)
    networks = recurrent_actor_critic(
        env.observation_space, env.action_space, config["lstm_units"], tuple(config["hidden_sizes"])
    )
    networks.actor.load_weights(WEIGHTS)
    return ActorPolicy(networks.actor, env.observation_space, env.action_space)


@pytest.fixture(scope="module")
def export(policy: ActorPolicy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("recurrent") / "lstm"
    export_policy(policy, out_dir, metadata={"env_id": ENV_ID, "algorithm": "ppo"})
    return out_dir


@pytest.fixture(scope="module")
def server(export: Path) -> Iterator[PolicyServer]:
    """The recurrent export served as "lstm" (conftest's `client` connects to it)."""
    served = ServedPolicies()
    served.add("lstm", 1, load(export))
    server = start_server(served)
    yield server
    server.stop(grace=0)


@pytest.fixture(scope="module")
def episode(policy: ActorPolicy) -> tuple[np.ndarray, np.ndarray]:
    """The observations and greedy actions of the first STEPS steps of an in-process episode."""
    env = gym.make(ENV_ID)
    observation, _ = env.reset(seed=0)
    state = policy.get_initial_state()
    observations, actions = [], []
    for _ in range(STEPS):
        step = policy.action(observation, state)
        observations.append(observation)
        actions.append(int(step.action))
        state = step.state
        observation, _, terminated, truncated, _ = env.step(step.action)
        assert not (terminated or truncated), "the trained policy keeps the pole up for 200 steps"
    return np.array(observations), np.array(actions)


def test_the_export_records_the_state_and_starts_it_at_zero(export: Path, policy: ActorPolicy):
    metadata = json.loads((export / "policy.json").read_text())
    assert metadata["policy_state_spec"] == [
        {"shape": [64], "dtype": "float32"},
        {"shape": [64], "dtype": "float32"},
    ]
    assert policy.policy_state_spec == (((64,), np.dtype(np.float32)),) * 2
    initial = tf.saved_model.load(str(export / "saved_model")).get_initial_state(3)
    assert sorted(initial) == ["state_0", "state_1"]
    np.testing.assert_array_equal(initial["state_0"].numpy(), np.zeros((3, 64), np.float32))


def test_the_savedmodel_alone_acts_as_in_process(export: Path, episode: tuple[np.ndarray, np.ndarray]):
    observations, actions = episode
    model = tf.saved_model.load(str(export / "saved_model"))
    greedy = model.signatures["greedy_action"]
    state = model.signatures["get_initial_state"](batch_size=tf.constant(1, tf.int64))
    served = []
    for observation in observations:
        outputs = greedy(observations=tf.constant(observation[None]), **state)
        state = {name: outputs[f"next_{name}"] for name in state}
        served.append(int(outputs["action"][0]))
    np.testing.assert_array_equal(served, actions)


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_loaded_exports_act_as_in_process(export: Path, backend: str, episode: tuple[np.ndarray, np.ndarray]):
    observations, actions = episode
    loaded = load(export, backend=backend)
    state = loaded.get_initial_state()
    served = []
    for observation in observations:
        step = loaded.action(observation, state)
        state = step.state
        served.append(int(step.action))
    np.testing.assert_array_equal(served, actions)


def test_a_stream_keeps_the_state_and_acts_as_in_process(
    client: PolicyClient, episode: tuple[np.ndarray, np.ndarray]
):
    observations, actions = episode
    with client.stream("lstm") as session:
        served = [int(session.step(o, episode_start=t == 0)) for t, o in enumerate(observations)]
        np.testing.assert_array_equal(served, actions)
        # episode_start forgets the state: the same opening gets the same actions again.
        again = [int(session.step(o, episode_start=t == 0)) for t, o in enumerate(observations[:20])]
    np.testing.assert_array_equal(again, actions[:20])


def test_unary_act_passing_the_state_back_acts_as_in_process(
    client: PolicyClient, episode: tuple[np.ndarray, np.ndarray]
):
    observations, actions = episode
    state: tuple[np.ndarray, ...] = ()
    served = []
    for observation in observations:
        result = client.act_with_details(observation, "lstm", state=state)
        assert [part.shape for part in result.state] == [(1, 64), (1, 64)]
        state = result.state
        served.append(int(result.actions))
    np.testing.assert_array_equal(served, actions)


def test_a_batch_of_episodes_carries_one_state_row_each(
    client: PolicyClient, policy: ActorPolicy, episode: tuple[np.ndarray, np.ndarray]
):
    observations, actions = episode
    state: tuple[np.ndarray, ...] = ()
    for observation, action in zip(observations[:30], actions[:30], strict=True):
        result = client.act_with_details(np.stack([observation, observation]), "lstm", state=state)
        np.testing.assert_array_equal(result.actions, [action, action])
        state = result.state


BAD_STATES = [
    (
        (np.zeros((1, 3), np.float32), np.zeros((1, 64), np.float32)),
        r"policy state part 0 has shape \(1, 3\); expected \(1, 64\), \(1, 64\) for 1 observation",
    ),
    (
        (np.zeros((1,), np.int64),),
        r"policy state is tuple of 1 parts; this recurrent policy takes a tuple of 2 float32 arrays",
    ),
]


@pytest.mark.parametrize(("state", "message"), BAD_STATES)
def test_a_wrong_state_is_refused_in_process_and_by_the_loaded_export(
    policy: ActorPolicy, export: Path, state: tuple, message: str
):
    observation = np.zeros(2, np.float32)
    for acting in (policy, load(export)):
        with pytest.raises(ValueError, match=message):
            acting.action(observation, state)


@pytest.mark.parametrize("foreign", ["state", {"h": np.zeros((1, 64))}, None])
def test_a_foreign_state_object_is_refused(policy: ActorPolicy, foreign: object):
    with pytest.raises(ValueError, match=r"policy state is a \w+; this recurrent policy takes a tuple of 2"):
        policy.action(np.zeros(2, np.float32), foreign)


def test_a_state_of_strings_is_refused(policy: ActorPolicy):
    with pytest.raises(ValueError, match=r"policy state part 0 is a str, not a numeric array"):
        policy.action(np.zeros(2, np.float32), ("a", "b"))


@pytest.mark.parametrize(("state", "message"), BAD_STATES)
def test_a_wrong_state_over_grpc_is_invalid_argument(client: PolicyClient, state: tuple, message: str):
    with pytest.raises(PolicyServiceError, match=message) as caught:
        client.act_with_details(np.zeros(2, np.float32), "lstm", state=state)
    assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT


def test_a_stream_refuses_a_state_in_its_requests(server: PolicyServer):
    from gymserve.serving.client.protos import policy_service_pb2 as pb
    from gymserve.serving.client.protos import policy_service_pb2_grpc
    from gymserve.serving.client.tensors import to_tensor

    request = pb.ActRequest(policy_name="lstm", observations=to_tensor(np.zeros(2, np.float32)))
    request.state.add().CopyFrom(to_tensor(np.zeros((1, 64), np.float32)))
    with grpc.insecure_channel(server.address) as channel:
        stub = policy_service_pb2_grpc.PolicyServiceStub(channel)
        responses = stub.StreamAct(iter([pb.StreamActRequest(act=request, episode_start=True)]))
        with pytest.raises(grpc.RpcError) as caught:
            next(responses)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "StreamAct keeps the policy state itself; send no state in its requests"

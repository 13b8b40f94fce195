"""A RemotePolicy plays episodes through the server exactly as the policy plays them in process."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from serving_support import WEIGHTS, LinearPolicy, scripted_policy

from gymserve.policies import Categorical
from gymserve.policies import time_step as ts
from gymserve.policies.episodes import evaluate, run_episode
from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.client.remote_policy import RemotePolicy
from gymserve.serving.server.policy_server import PolicyServer


@pytest.mark.parametrize(
    ("mode", "epsilon"), [("greedy", None), ("stochastic", None), ("epsilon_greedy", 0.2)]
)
def test_episodes_through_the_server_equal_episodes_in_process(client: PolicyClient, mode, epsilon):
    env = gym.make("gymserve/CartPole-v1")
    with RemotePolicy(client, "linear", version=1) as remote:
        remote_episodes = [run_episode(env, remote, mode, seed=seed, epsilon=epsilon) for seed in range(3)]
    local = LinearPolicy(WEIGHTS[1])
    local_episodes = [run_episode(env, local, mode, seed=seed, epsilon=epsilon) for seed in range(3)]
    env.close()
    remote_results = [(e.total_return, e.length) for e in remote_episodes]
    assert remote_results == [(e.total_return, e.length) for e in local_episodes]
    assert len(set(remote_results)) > 1  # the seeds matter, so equality is not a coincidence


def test_batched_evaluation_through_the_server_equals_in_process(client: PolicyClient):
    with RemotePolicy(client, "linear") as remote:
        served = evaluate(remote, "gymserve/CartPole-v1", episodes=4, mode="stochastic", seed=3)
    local = evaluate(LinearPolicy(WEIGHTS[2]), "gymserve/CartPole-v1", episodes=4, mode="stochastic", seed=3)
    np.testing.assert_array_equal(served.returns, local.returns)


def test_reset_starts_a_new_episode_of_a_stateful_policy(client: PolicyClient):
    observation = np.zeros(4, np.float32)
    with RemotePolicy(client, "scripted") as remote:
        remote.reset()
        assert [remote.action(observation).action for _ in range(3)] == [0, 1, 2]
        remote.reset()
        assert remote.action(observation).action == 0
    assert remote.action_space == scripted_policy().action_space


def test_a_first_time_step_starts_a_new_episode_like_reset(client: PolicyClient):
    observation = np.zeros(4, np.float32)
    with RemotePolicy(client, "scripted") as remote:
        played = [remote.action(ts.restart(observation)).action]
        played += [remote.action(ts.transition(observation, reward=1.0)).action for _ in range(2)]
        played.append(remote.action(ts.restart(observation)).action)
    assert played == [0, 1, 2, 0]


def test_spaces_version_and_distribution_come_from_the_server(client: PolicyClient):
    remote = RemotePolicy(client, "linear")
    assert remote.info.version == 2
    assert remote.observation_space == gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
    assert remote.action_space == gym.spaces.Discrete(2)
    batch = np.ones((2, 4), np.float32)
    distribution = remote.distribution(batch)
    assert isinstance(distribution, Categorical)
    np.testing.assert_array_equal(distribution.logits, batch @ WEIGHTS[2])


def test_server_errors_reach_the_caller_and_the_next_call_reconnects(
    client: PolicyClient, server: PolicyServer
):
    with RemotePolicy(client, "linear") as remote:
        with pytest.raises(PolicyServiceError, match="INVALID_ARGUMENT: observation has shape"):
            remote.action(np.zeros(5))
        assert remote.action(np.ones(4)).action == np.argmax(np.ones(4) @ WEIGHTS[2])

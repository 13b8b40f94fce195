"""The pretrained policies shipped in the package: intact files, solved tasks, every way to play them."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from tensorflow_threads import limit_tensorflow_threads

import gymserve
from gymserve.cli import main
from gymserve.policies import load
from gymserve.policies.episodes import evaluate, run_episode
from gymserve.policies.repository import pretrained_repository
from gymserve.pretrained import pretrained_policies, pretrained_policy_for_env
from gymserve.serving.client.policy_client import PolicyClient
from gymserve.serving.client.remote_policy import RemotePolicy
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer

CARTPOLE = "gymserve/CartPole-v1"
MINITAUR = "gymserve/Minitaur-v0"
PONG = "gymserve/AtariPong-v0"
# Fresh greedy Minitaur episodes, on other seeds than the recorded 20-episode evaluation's.
MINITAUR_EPISODES = 10
# Fresh greedy Pong games; a game the policy wins 21-x lasts about 1,700 steps.
PONG_EPISODES = 3
# Pong in Mnih et al. (2015): their professional human games tester scored 9.3 (random play -20.7).
HUMAN_PONG_SCORE = 9.3
# Files of a pretrained policy that are not part of the export itself.
NOT_EXPORTED = {"policy.json", "TRAINING.md"}

PRETRAINED = pretrained_policies()


def test_the_package_ships_a_pretrained_cartpole_policy():
    assert pretrained_repository() == Path(gymserve.__file__).resolve().parent / "pretrained"
    cartpole = pretrained_policy_for_env(CARTPOLE)
    assert cartpole.name == "cartpole"
    assert cartpole.metadata.algorithm == "ppo"
    assert (cartpole.metadata.evaluation.average_return, cartpole.metadata.evaluation.during_training) == (
        500.0,
        True,
    )


def test_an_installed_package_s_bytecode_folder_is_not_a_policy(tmp_path):
    """pip compiles a non-editable install, which puts `__pycache__` beside the pretrained policies."""
    repository = tmp_path / "pretrained"
    shutil.copytree(pretrained_repository(), repository, ignore=shutil.ignore_patterns("__pycache__"))
    (repository / "__pycache__").mkdir()
    (repository / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"bytecode")
    assert [policy.name for policy in pretrained_policies(repository)] == ["cartpole", "minitaur", "pong"]


@pytest.mark.parametrize("pretrained", PRETRAINED, ids=[policy.name for policy in PRETRAINED])
def test_policy_json_hashes_match_the_bytes_on_disk(pretrained):
    recorded = json.loads((pretrained.path / "policy.json").read_text())["files"]
    on_disk = {
        path.relative_to(pretrained.path).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in pretrained.path.rglob("*")
        if path.is_file() and path.name not in NOT_EXPORTED
    }
    assert "policy.onnx" in recorded
    assert on_disk == recorded


@pytest.mark.parametrize("pretrained", PRETRAINED, ids=[policy.name for policy in PRETRAINED])
def test_training_md_gives_the_commands_that_made_the_policy(pretrained):
    training = (pretrained.path / "TRAINING.md").read_text()
    metadata = pretrained.metadata
    assert f"gymserve train {metadata.algorithm} --env {metadata.env_id} --seed " in training
    assert "gymserve export " in training and f"--out gymserve/pretrained/{pretrained.name}" in training
    assert f"{metadata.train_step:,}" in training


def test_the_pretrained_cartpole_policy_balances_for_500_steps_through_the_server():
    config = ServerConfig(address="127.0.0.1:0")  # no policies: the pretrained ones are served
    env = gym.make(CARTPOLE)
    with PolicyServer(config) as server, PolicyClient(server.address) as client:
        assert "cartpole" in [summary.name for summary in client.list_policies()]
        with RemotePolicy(client, "cartpole") as policy:
            returns = [run_episode(env, policy, "greedy", seed=seed).total_return for seed in range(3)]
    env.close()
    assert returns == [500.0, 500.0, 500.0]


@pytest.mark.slow  # ten Minitaur episodes, about 30 s
def test_the_pretrained_minitaur_policy_walks_as_its_recorded_evaluation_says():
    minitaur = pretrained_policy_for_env(MINITAUR)
    assert minitaur.metadata.algorithm == "sac"
    recorded = minitaur.metadata.evaluation
    assert (recorded.episodes, recorded.mode) == (20, "greedy")
    assert not recorded.during_training, "an evaluation of the export, apart from training"
    fresh = evaluate(load(minitaur.path), MINITAUR, MINITAUR_EPISODES, "greedy", seed=1000)
    # Returns vary with each episode's randomized dynamics. Both means estimate the same expected
    # return; their difference has a standard deviation of std * sqrt(1/10 + 1/20): allow three.
    margin = 3 * recorded.return_std * math.sqrt(1 / MINITAUR_EPISODES + 1 / recorded.episodes)
    assert fresh.average_return >= recorded.average_return - margin, (fresh.returns, margin)


@pytest.mark.slow  # three games of Pong, about 10 s
def test_the_pretrained_pong_policy_beats_the_dqn_paper_s_human_tester():
    pong = pretrained_policy_for_env(PONG)
    assert pong.metadata.algorithm == "dqn"
    recorded = pong.metadata.evaluation
    assert (recorded.episodes, recorded.mode, recorded.during_training) == (10, "greedy", False)
    fresh = evaluate(load(pong.path), PONG, PONG_EPISODES, "greedy", seed=1000)
    assert fresh.average_return > HUMAN_PONG_SCORE, fresh.returns


@pytest.mark.parametrize("env_id", [MINITAUR, PONG])
def test_a_pretrained_policy_acts_through_the_server_as_in_process(env_id):
    pretrained = pretrained_policy_for_env(env_id)
    env = gym.make(env_id)
    with (
        PolicyServer(ServerConfig(address="127.0.0.1:0")) as server,
        PolicyClient(server.address) as client,
        RemotePolicy(client, pretrained.name) as policy,
    ):
        served = run_episode(env, policy, "greedy", seed=7)
    in_process = run_episode(env, load(pretrained.path), "greedy", seed=7)
    env.close()
    assert served.length > 100, "the walker does not fall at once, a game of Pong lasts longer"
    assert (served.total_return, served.length) == (in_process.total_return, in_process.length)


def test_savedmodel_and_onnx_of_the_pretrained_cartpole_policy_act_alike():
    limit_tensorflow_threads()
    path = pretrained_policy_for_env(CARTPOLE).path
    observations = np.random.default_rng(0).uniform(-2.0, 2.0, (256, 4)).astype(np.float32)
    onnx_actions = load(path, backend="onnx").action(observations).action
    tensorflow_actions = load(path, backend="tensorflow").action(observations).action
    np.testing.assert_array_equal(onnx_actions, tensorflow_actions)
    assert set(onnx_actions.tolist()) == {0, 1}


def test_savedmodel_and_onnx_of_the_pretrained_minitaur_policy_act_alike():
    onnx, tensorflow, observations = backends_and_met_observations(MINITAUR)
    onnx_actions = onnx.action(observations).action
    np.testing.assert_allclose(onnx_actions, tensorflow.action(observations).action, rtol=0, atol=1e-5)
    assert len(np.unique(onnx_actions.round(3), axis=0)) > 200
    for name, value in onnx.distribution(observations).parameters().items():
        np.testing.assert_allclose(value, tensorflow.distribution(observations).parameters()[name], atol=1e-5)
    samples = [
        backend.action(observations, mode="stochastic", seed=3).action for backend in (onnx, tensorflow)
    ]
    np.testing.assert_allclose(*samples, rtol=0, atol=1e-5)


def test_savedmodel_and_onnx_of_the_pretrained_pong_policy_act_alike():
    onnx, tensorflow, observations = backends_and_met_observations(PONG)
    onnx_actions = onnx.action(observations).action
    np.testing.assert_array_equal(onnx_actions, tensorflow.action(observations).action)
    assert len(set(onnx_actions.tolist())) >= 3
    (name,) = onnx.distribution(observations).parameters()
    np.testing.assert_allclose(
        onnx.distribution(observations).parameters()[name],
        tensorflow.distribution(observations).parameters()[name],
        rtol=0,
        atol=1e-4,
    )
    samples = [
        backend.action(observations, mode="stochastic", seed=3).action for backend in (onnx, tensorflow)
    ]
    np.testing.assert_array_equal(*samples)


def backends_and_met_observations(env_id: str, count: int = 256):
    """The pretrained policy of `env_id` on onnxruntime and TensorFlow, and `count` observations
    its greedy ONNX model meets, so its actions differ from one observation to the next."""
    limit_tensorflow_threads()
    path = pretrained_policy_for_env(env_id).path
    onnx, tensorflow = load(path, backend="onnx"), load(path, backend="tensorflow")
    return onnx, tensorflow, met_observations(env_id, onnx, count)


def met_observations(env_id: str, policy, count: int) -> np.ndarray:
    env = gym.make(env_id)
    observation, _ = env.reset(seed=0)
    observations = []
    while len(observations) < count:
        observations.append(observation)
        observation, _, terminated, truncated, _ = env.step(policy.action(observation).action)
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    return np.stack(observations)


def test_play_with_the_pretrained_policy(capsys):
    assert main(["play", "--env", CARTPOLE, "--policy", "pretrained", "--episodes", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "episode 1: return 500.000, length 500",
        "episode 2: return 500.000, length 500",
    ]


def test_play_pretrained_names_the_environments_that_have_a_pretrained_policy(capsys):
    assert main(["play", "--env", "gymserve/CartPoleBullet-v1", "--policy", "pretrained"]) == 2
    error = capsys.readouterr().err
    assert "no pretrained policy for gymserve/CartPoleBullet-v1; pretrained policies: " in error
    assert f"cartpole ({CARTPOLE})" in error


def test_a_repository_without_policies_has_no_pretrained_policy(tmp_path):
    assert pretrained_policies(tmp_path) == []
    with pytest.raises(
        LookupError, match=r"no pretrained policy for gymserve/CartPole-v1; pretrained policies: none"
    ):
        pretrained_policy_for_env(CARTPOLE, tmp_path)

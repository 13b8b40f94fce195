"""The C++ example client (examples/cpp) against a real server: the same actions as the Python client.

The client is built once per session with CMake against the system's gRPC C++ and protobuf; without
them these tests skip, except under CI=true (see the `cmake` fixture in conftest.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from gymserve.serving import PolicyClient
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer
from tools.generate_protos import SOURCE_ROOT

CPP_CLIENT = SOURCE_ROOT / "examples" / "cpp"
STEPS = 100


@pytest.fixture(scope="session")
def cpp_client(cmake: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gymserve_client executable, configured and built in a session's temporary folder."""
    build = tmp_path_factory.mktemp("cpp_client")
    for command in ([cmake, "-S", CPP_CLIENT, "-B", build], [cmake, "--build", build, "--parallel", "2"]):
        finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert finished.returncode == 0, finished.stdout + finished.stderr
    return build / "gymserve_client"


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A server of the pretrained cartpole (Discrete) and minitaur (Box) policies on a loopback port."""
    server = PolicyServer(ServerConfig(address="127.0.0.1:0")).start()
    yield server.address
    server.stop(grace=0)


def run_client(client: Path, *arguments: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [client, *arguments], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def observation_lines(observations: np.ndarray) -> str:
    """One line of space-separated floats per observation; repr round-trips each float32 exactly."""
    return "".join(" ".join(repr(float(value)) for value in row) + "\n" for row in observations)


def cartpole_rollout(address: str) -> np.ndarray:
    """STEPS observations of a seeded CartPole-v1 episode played by the Python client."""
    env = gym.make("gymserve/CartPole-v1")
    observation, _ = env.reset(seed=7)
    observations = []
    with PolicyClient(address) as client:
        for _ in range(STEPS):
            observations.append(observation)
            observation, _, terminated, truncated, _ = env.step(int(client.act(observation, "cartpole")))
            assert not (terminated or truncated), "the pretrained policy balances the pole for STEPS steps"
    return np.array(observations, np.float32)


@pytest.mark.parametrize("rpc", ["act", "stream"])
def test_cpp_client_gives_the_python_clients_greedy_cartpole_actions(
    cpp_client: Path, address: str, rpc: str
):
    observations = cartpole_rollout(address)
    arguments = ["--stream"] if rpc == "stream" else []
    finished = run_client(cpp_client, address, "cartpole", *arguments, stdin=observation_lines(observations))
    assert finished.returncode == 0, finished.stderr
    assert finished.stderr == "cartpole version 1: observations Box[4], actions Discrete(2)\n"
    cpp_actions = [int(line) for line in finished.stdout.splitlines()]
    with PolicyClient(address) as client, client.stream("cartpole") as session:
        act_actions = [int(client.act(observation, "cartpole")) for observation in observations]
        stream_actions = [int(session.step(o, episode_start=i == 0)) for i, o in enumerate(observations)]
    assert len(cpp_actions) == STEPS
    assert cpp_actions == act_actions == stream_actions
    assert set(cpp_actions) == {0, 1}


def test_cpp_client_prints_box_actions_that_read_back_as_the_same_float32(cpp_client: Path, address: str):
    observations = np.random.default_rng(8).uniform(-1.0, 1.0, (5, 28)).astype(np.float32)
    lines = observation_lines(observations)
    single, streamed = (
        run_client(cpp_client, address, "minitaur", *extra, stdin=lines) for extra in ([], ["--stream"])
    )
    with PolicyClient(address) as client:
        expected = client.act(observations, "minitaur")
    for finished in (single, streamed):
        assert finished.returncode == 0, finished.stderr
        actions = np.array([line.split() for line in finished.stdout.splitlines()], np.float32)
        np.testing.assert_array_equal(actions, expected)


def test_cpp_client_names_the_line_with_too_few_numbers(cpp_client: Path, address: str):
    finished = run_client(cpp_client, address, "cartpole", "--stream", stdin="0 0 0 0\n0.1 0.2 0.3\n")
    with PolicyClient(address) as client:
        first_action = int(client.act(np.zeros(4, np.float32), "cartpole"))
    assert finished.returncode == 1
    assert finished.stdout == f"{first_action}\n"
    assert finished.stderr.endswith("gymserve_client: line 2: expected 4 numbers, got 3\n")


def test_cpp_client_reports_the_servers_status_for_an_unknown_policy(cpp_client: Path, address: str):
    finished = run_client(cpp_client, address, "acrobot", stdin="")
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.startswith("gymserve_client: GetPolicy failed with status 5: ")  # NOT_FOUND

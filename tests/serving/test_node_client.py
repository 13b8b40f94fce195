"""The Node.js example client (examples/node) against a real `gymserve serve`: same actions as Python.

The client is installed with `npm ci` from its committed lockfile; without Node.js and npm these
tests skip, except under CI=true (see the `node_tools` fixture in conftest.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from serving_support import GYMSERVE, NodeTools

from gymserve.serving import PolicyClient
from tools.generate_protos import SOURCE_ROOT

NODE_CLIENT = SOURCE_ROOT / "examples" / "node"
UINT64_MAX = 2**64 - 1


@pytest.fixture(scope="module")
def node(node_tools: NodeTools) -> str:
    """The node executable, once `npm ci` installed the client's locked dependencies."""
    subprocess.run(
        [node_tools.npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_CLIENT, check=True, timeout=300,
    )  # fmt: skip
    return node_tools.node


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `gymserve serve` process serving the pretrained cartpole (Discrete) and minitaur (Box) policies."""
    log = tmp_path_factory.mktemp("node_client") / "server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen([*GYMSERVE, "serve", "--address", "127.0.0.1:0"], stderr=log_file)
    try:
        yield started_address(server, log)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def started_address(server: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["event"] == "server_started":
                return event["address"]
        time.sleep(0.2)
    raise AssertionError(f"the server did not start; it logged:\n{log.read_text()}")


def run_node(node: str, script: str, *arguments: str, stdin: str = "") -> dict:
    finished = subprocess.run(
        [node, script, *arguments], cwd=NODE_CLIENT, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


def test_node_plays_cartpole_over_a_stream_with_the_python_clients_actions(node: str, address: str):
    env = gym.make("gymserve/CartPole-v1")
    initial, _ = env.reset(seed=3)
    steps = 80
    episode = run_node(
        node,
        "play_cartpole.js",
        address,
        "--steps",
        str(steps),
        "--initial-state",
        json.dumps(initial.tolist()),
    )
    observations = np.array(episode["observations"], np.float32)
    assert (episode["policy"], episode["version"], episode["return"]) == ("cartpole", 1, steps)
    assert all(type(action) is int for action in episode["actions"])
    np.testing.assert_array_equal(observations[0], initial)
    with PolicyClient(address) as client, client.stream("cartpole") as session:
        python_actions = [int(session.step(o, episode_start=i == 0)) for i, o in enumerate(observations)]
    assert episode["actions"] == python_actions
    # The example's physics is CartPole-v1's: stepping the Python env with its actions agrees.
    env.unwrapped._state = tuple(initial.astype(np.float64).tolist())
    stepped = [env.step(action)[0] for action in episode["actions"][:-1]]
    np.testing.assert_allclose(observations[1:], stepped, rtol=1e-5, atol=1e-6)


def test_node_reads_int64_and_float32_actions_for_single_observations_and_batches(node: str, address: str):
    rng = np.random.default_rng(5)
    cases = {"cartpole": rng.uniform(-0.2, 0.2, (5, 4)), "minitaur": rng.uniform(-1.0, 1.0, (5, 28))}
    with PolicyClient(address) as client:
        for policy, batch in cases.items():
            batch = batch.astype(np.float32)
            answer = run_node(node, "act.js", address, policy, stdin=json.dumps(batch.tolist()))
            expected = client.act(batch, policy)
            assert np.array(answer["batch"]).shape == expected.shape
            np.testing.assert_array_equal(np.array(answer["batch"], expected.dtype), expected)
            for single, observation in zip(answer["single"], batch, strict=True):
                action = client.act(observation, policy)
                assert np.shape(single) == np.shape(action)  # [] for a discrete action, [8] for Minitaur
                assert isinstance(single, int) == (policy == "cartpole")  # int64 arrives as a JS number
                np.testing.assert_array_equal(np.array(single, action.dtype), action)


def test_node_sends_uint64_seeds_for_reproducible_stochastic_actions(node: str, address: str):
    batch = np.random.default_rng(6).uniform(-1.0, 1.0, (3, 28)).astype(np.float32)
    arguments = ("--mode", "stochastic", "--seed", str(UINT64_MAX))
    answer = run_node(node, "act.js", address, "minitaur", *arguments, stdin=json.dumps(batch.tolist()))
    with PolicyClient(address) as client:
        expected = client.act(batch, "minitaur", mode="stochastic", seed=UINT64_MAX)
        other_seed = client.act(batch, "minitaur", mode="stochastic", seed=0)
    np.testing.assert_array_equal(np.array(answer["batch"], np.float32), expected)
    assert not np.array_equal(expected, other_seed)

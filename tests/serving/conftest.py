"""Servers and exports shared by the serving tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from serving_support import NodeTools, skip_unless_ci, standard_policies, start_server
from tensorflow_threads import limit_tensorflow_threads

from gymserve.serving import PolicyClient
from gymserve.serving.server.policy_server import PolicyServer


@pytest.fixture(scope="session")
def node_tools() -> NodeTools:
    """node and npm from PATH. Without them a test skips, except under CI=true, where it must run."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        skip_unless_ci("Node.js 18.3+ and npm are not on PATH (the Node.js client tests need them)")
    return NodeTools(node, npm)


CPP_PACKAGES = "cmake g++ pkg-config libgrpc++-dev libprotobuf-dev protobuf-compiler-grpc"


@pytest.fixture(scope="session")
def cmake() -> str:
    """cmake, once the C++ client's compiler, gRPC and protobuf are found. Without them: skip_unless_ci."""
    missing = [
        tool for tool in ("cmake", "c++", "pkg-config", "protoc", "grpc_cpp_plugin") if not shutil.which(tool)
    ]
    if "pkg-config" not in missing:
        found = subprocess.run(["pkg-config", "--exists", "grpc++", "protobuf"], check=False)
        missing += [] if found.returncode == 0 else ["the grpc++ and protobuf pkg-config modules"]
    if missing:
        skip_unless_ci(
            f"the C++ client tests need {', '.join(missing)} (Debian: apt-get install {CPP_PACKAGES})"
        )
    return shutil.which("cmake")


@pytest.fixture(scope="module")
def server() -> Iterator[PolicyServer]:
    """linear v1 and v2, scripted v1, and broken (failed to load), on a free loopback port."""
    server = start_server(standard_policies(), max_request_observations=2048, max_message_bytes=256 * 1024)
    yield server
    server.stop(grace=0)


@pytest.fixture
def client(server: PolicyServer) -> Iterator[PolicyClient]:
    with PolicyClient(server.address, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def continuous_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ONNX export over 4 observations and 2 continuous actions in [-1, 1] x [0, 3]."""
    action_space = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 3.0], np.float32))
    out_dir = tmp_path_factory.mktemp("serving_exports") / "pendulum"
    export_small_mlp(
        out_dir, action_space, seed=3, metadata={"algorithm": "sac", "train_step": 42}, formats=("onnx",)
    )
    return out_dir


@pytest.fixture(scope="session")
def discrete_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CartPole-shaped export in both formats: 4 observations, 2 actions."""
    out_dir = tmp_path_factory.mktemp("serving_exports") / "cartpole"
    metadata = {"env_id": "gymserve/CartPole-v1"}
    export_small_mlp(
        out_dir, gym.spaces.Discrete(2), seed=4, metadata=metadata, formats=("onnx", "savedmodel")
    )
    return out_dir


def export_small_mlp(
    out_dir: Path, action_space: gym.spaces.Space, seed: int, metadata: dict, formats: tuple[str, ...]
) -> None:
    """Export a 16-unit Keras MLP over 4 unbounded observations."""
    limit_tensorflow_threads()
    import keras

    from gymserve.policies import ActorPolicy, export_policy

    keras.utils.set_random_seed(seed)
    outputs = (
        int(action_space.n) if isinstance(action_space, gym.spaces.Discrete) else 2 * action_space.shape[0]
    )
    network = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(16, activation="tanh"), keras.layers.Dense(outputs)]
    )
    policy = ActorPolicy(network, gym.spaces.Box(-np.inf, np.inf, (4,), np.float32), action_space)
    export_policy(policy, out_dir, formats=formats, metadata=metadata)

"""Real installs in fresh virtual environments: the core alone (a robot's client) and the core with
the serve extra (a policy server), each from the README's install line, `pip install <clone>`.

The wheels come from a folder filled once per session with `pip download`, pinned to the versions
of the environment running the tests, so the two venvs install offline (`--no-index`) and speak to
servers and clients of this environment with the same library versions.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import gymserve.policies
from gymserve.pretrained import pretrained_policy_for_env
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer
from tools.generate_protos import SOURCE_ROOT

pytestmark = pytest.mark.slow  # builds two venvs and installs gymserve into each: about 1 min here

HEAVY = ("tensorflow", "onnxruntime", "pybullet")

# The venvs' processes see only what is installed in them: not this checkout, not this environment.
VENV_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")
}

# Run by the core venv's Python with the server's address and a batch of observations.
CORE_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys

    import gymnasium as gym
    import gymserve
    from gymserve.common.extras import MissingExtraError
    from gymserve.serving import PolicyClient

    heavy = HEAVY
    env = gym.make("gymserve/CartPole-v1")
    observation, _ = env.reset(seed=0)
    steps = sum(1 for _ in range(5) if not env.step(0)[2])
    try:
        gym.make("gymserve/Minitaur-v0")
        minitaur = None
    except MissingExtraError as error:
        minitaur = str(error)
    with PolicyClient(sys.argv[1]) as client:
        actions = client.act(json.loads(sys.argv[2]), "cartpole").tolist()
    print(json.dumps({
        "steps": steps,
        "minitaur": minitaur,
        "actions": actions,
        "installed": [name for name in heavy if importlib.util.find_spec(name)],
        "imported": sorted({name.split(".")[0] for name in sys.modules} & set(heavy)),
    }))
    """
).replace("HEAVY", repr(HEAVY))


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of the core, the serve extra and the build backend, at this environment's versions."""
    folder = tmp_path_factory.mktemp("wheelhouse")
    constraints = folder / "constraints.txt"
    versions = {dist.metadata["Name"].lower(): dist.version for dist in importlib.metadata.distributions()}
    versions.pop("gymserve")
    constraints.write_text("".join(f"{name}=={version}\n" for name, version in sorted(versions.items())))
    build_backend = ["setuptools>=69", "wheel"]
    pip(sys.executable, "download", "--only-binary=:all:", "--dest", folder, "--constraint", constraints,
        f"{SOURCE_ROOT}[serve]", *build_backend)  # fmt: skip
    return folder


@pytest.fixture(scope="session")
def onnx_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose `cartpole/1` holds only the pretrained CartPole policy's ONNX model."""
    repository = tmp_path_factory.mktemp("repository")
    version = repository / "cartpole" / "1"
    version.mkdir(parents=True)
    for name in ("policy.json", "policy.onnx"):
        shutil.copy(pretrained_policy_for_env("gymserve/CartPole-v1").path / name, version)
    return repository


@pytest.fixture(scope="session")
def observations() -> np.ndarray:
    return np.random.default_rng(5).uniform(-0.2, 0.2, (8, 4)).astype(np.float32)


@pytest.fixture(scope="session")
def expected_actions(onnx_repository: Path, observations: np.ndarray) -> list[int]:
    policy = gymserve.policies.load(onnx_repository / "cartpole" / "1", backend="onnx")
    return policy.action(observations, mode="greedy").action.tolist()


def pip(python: str | Path, *arguments: str | Path) -> None:
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", *map(str, arguments)],
                   check=True, timeout=600, env=VENV_ENVIRONMENT)  # fmt: skip


def fresh_venv(path: Path, wheelhouse: Path, requirement: str) -> Path:
    """A venv with `pip install <requirement>` done from the wheelhouse alone; its Python."""
    venv.create(path, with_pip=True)
    python = path / "bin" / "python"
    pip(python, "install", "--no-index", "--find-links", wheelhouse, requirement)
    return python


def core_client_run(python: Path, address: str, observations: np.ndarray) -> dict:
    finished = subprocess.run(
        [str(python), "-c", CORE_SCRIPT, address, json.dumps(observations.tolist())],
        capture_output=True, text=True, timeout=120, cwd=python.parent, env=VENV_ENVIRONMENT,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)


@pytest.fixture(scope="session")
def core_python(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """The README's robot install: `pip install <clone>`, no extras."""
    return fresh_venv(tmp_path_factory.mktemp("core") / "venv", wheelhouse, str(SOURCE_ROOT))


@pytest.fixture
def full_server(onnx_repository: Path) -> Iterator[str]:
    """A server of this (full) environment; its address."""
    server = PolicyServer(ServerConfig(address="127.0.0.1:0", repository=onnx_repository)).start()
    yield server.address
    server.stop(grace=0)


def test_the_core_install_makes_cartpole_and_queries_a_server_without_heavy_packages(
    core_python: Path, full_server: str, observations: np.ndarray, expected_actions: list[int]
):
    result = core_client_run(core_python, full_server, observations)
    assert result["steps"] == 5
    assert result["actions"] == expected_actions
    assert result["installed"] == [] and result["imported"] == []
    assert result["minitaur"] == (
        'gymserve/Minitaur-v0 needs pybullet, which is not installed: pip install "gymserve[bullet]"'
    )


def test_core_plus_serve_serves_an_onnx_export_without_tensorflow(
    tmp_path: Path,
    wheelhouse: Path,
    core_python: Path,
    onnx_repository: Path,
    observations: np.ndarray,
    expected_actions: list[int],
):
    serve_python = fresh_venv(tmp_path / "venv", wheelhouse, f"{SOURCE_ROOT}[serve]")
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [str(serve_python.parent / "gymserve"), "serve", "--address", "127.0.0.1:0",
             "--repository", str(onnx_repository)],
            stderr=log_file, cwd=tmp_path, env=VENV_ENVIRONMENT | {"PYTHONPROFILEIMPORTTIME": "1"},
        )  # fmt: skip
    try:
        address = started_address(server, log)
        result = core_client_run(core_python, address, observations)
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert result["actions"] == expected_actions
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert "onnxruntime" in imported and "grpc_health" in imported
    assert not imported & {"tensorflow", "keras", "pybullet"}


def started_address(server: subprocess.Popen, log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        for line in log.read_text().splitlines():
            if line.startswith("{") and json.loads(line)["event"] == "server_started":
                return json.loads(line)["address"]
        time.sleep(0.2)
    raise AssertionError(f"the server did not start; it logged:\n{log.read_text()[-3000:]}")

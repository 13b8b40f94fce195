"""Hand-computable policies, servers on free ports and certificates for the serving tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import venv
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import grpc
import gymnasium as gym
import numpy as np
import pytest

from gymserve.policies import Categorical, Distribution, Policy, ScriptedPolicy, SquashedGaussian
from gymserve.serving.apis.protocol import Rpc
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer
from gymserve.serving.server.served_policies import ServedPolicies

OBSERVATION_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
# Version 1 and version 2 of the "linear" policy; version 2 prefers the other action.
WEIGHTS = {
    1: np.array([[1.0, -1.0], [0.5, 2.0], [-3.0, 1.0], [2.0, 0.25]], np.float32),
    2: -np.array([[1.0, -1.0], [0.5, 2.0], [-3.0, 1.0], [2.0, 0.25]], np.float32),
}
SCRIPT_LENGTH = 6
BOX = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 3.0], np.float32))


class NodeTools(NamedTuple):
    """The Node.js and npm executables the Node client's tests run."""

    node: str
    npm: str


class LinearPolicy(Policy):
    """CartPole-shaped: logits = observations @ weights, so the greedy action is computed by hand."""

    def __init__(self, weights: np.ndarray, seed: int | None = None):
        super().__init__(OBSERVATION_SPACE, gym.spaces.Discrete(2), seed)
        self.weights = weights

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        return Categorical(observations @ self.weights)


class SlowPolicy(LinearPolicy):
    """A linear policy that takes `seconds` per call and signals when a call has started."""

    def __init__(self, seconds: float):
        super().__init__(WEIGHTS[1])
        self.seconds = seconds
        self.started = threading.Event()

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        self.started.set()
        time.sleep(self.seconds)
        return super()._distribution(observations, state)


def greedy_by_hand(observations: np.ndarray, version: int = 1) -> np.ndarray:
    return np.argmax(observations @ WEIGHTS[version], axis=-1)


def scripted_policy() -> ScriptedPolicy:
    """Plays action i at step i of an episode (then SCRIPT_LENGTH - 1): its state is the step count."""
    return ScriptedPolicy(
        OBSERVATION_SPACE,
        gym.spaces.Discrete(SCRIPT_LENGTH),
        [(1, i) for i in range(SCRIPT_LENGTH)],
        on_exhausted="repeat_last",
    )


def observations(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-5.0, 5.0, (count, 4)).astype(np.float32)


def standard_policies() -> ServedPolicies:
    served = ServedPolicies()
    served.add("linear", 1, LinearPolicy(WEIGHTS[1]))
    served.add("linear", 2, LinearPolicy(WEIGHTS[2]))
    served.add("scripted", 1, scripted_policy())
    served.add_failure("broken", 1, "PolicyLoadError: policy.json is truncated")
    return served


class BoxPolicy(Policy):
    """Actions in BOX: a squashed Gaussian whose mean and log_std are linear in the observation."""

    def __init__(self) -> None:
        super().__init__(OBSERVATION_SPACE, BOX)

    def _distribution(self, observations: np.ndarray, state: tuple) -> Distribution:
        mean = observations @ WEIGHTS[1] * 0.3
        log_std = np.tanh(observations @ WEIGHTS[2]) - 1.0
        return SquashedGaussian(mean, log_std, BOX.low, BOX.high)


def policies_with_a_box() -> ServedPolicies:
    """The standard policies and "box", version 1: a `BoxPolicy`."""
    served = standard_policies()
    served.add("box", 1, BoxPolicy())
    return served


def start_server(policies: ServedPolicies, **settings: object) -> PolicyServer:
    return PolicyServer(ServerConfig(address="127.0.0.1:0", **settings), policies).start()


def status_without_token(channel: grpc.Channel, rpc: Rpc) -> grpc.StatusCode:
    """The status of `rpc` called with an empty message and no token (its first answer, for streams)."""
    request_streaming = rpc.kind in ("client_stream", "bidi_stream")
    response_streaming = rpc.kind in ("server_stream", "bidi_stream")
    make = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[request_streaming, response_streaming]
    try:
        answer = make(rpc.path)(iter([b""]) if request_streaming else b"", timeout=30)
        if response_streaming:
            next(answer)
            answer.cancel()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


RELOAD_POLL_INTERVAL = 0.2  # seconds between the rescans of `start_reloading_server`


def start_reloading_server(repository: Path, **settings: object) -> PolicyServer:
    """A server loading `repository` and rescanning it every RELOAD_POLL_INTERVAL seconds."""
    config = ServerConfig(
        address="127.0.0.1:0", repository=repository, poll_interval=RELOAD_POLL_INTERVAL, **settings
    )
    return PolicyServer(config).start()


def cartpole_versions(root: Path) -> Path:
    versions = root / "repository" / "cartpole"
    versions.mkdir(parents=True)
    return versions


def publish(
    export: Path, versions: Path, version: int, damage: Callable[[Path], None] | None = None
) -> float:
    """Copy `export` in as `version` atomically (a hidden folder renamed), `damage`d first if given.

    Returns the time just before the rename: no server can have seen the version earlier, while
    a time taken after it may come late when other threads hold the interpreter.
    """
    staging = versions / f".staging-{version}"
    shutil.copytree(export, staging)
    if damage is not None:
        damage(staging)
    renamed_after = time.monotonic()
    os.rename(staging, versions / str(version))
    return renamed_after


def corrupt_model(version: Path) -> None:
    (version / "policy.onnx").write_bytes(b"not a model")


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


GYMSERVE = [sys.executable, "-m", "gymserve.cli"]


def read_events_until(stream, event: str) -> list[dict]:
    """JSON log lines up to and including the first `event` (the server logs one object per line)."""
    events = []
    for line in stream:
        events.append(json.loads(line))
        if events[-1]["event"] == event:
            return events
    raise AssertionError(f"the server exited before logging {event!r}; it logged {events}")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, written to `directory`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    certificate, key = directory / "server.crt", directory / "server.key"
    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    alternative_names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    certificate.write_bytes(built.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certificate, key


def skip_unless_ci(reason: str) -> None:
    """Skip the test for `reason`, except under CI=true, where the test must run and so fails."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true they must run")
    pytest.skip(reason)


# The variables a venv's processes run under: what this checkout and environment add is left out.
VENV_ENVIRONMENT = {
    name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")
}


def pypi_venv(directory: Path, *requirements: str, timeout: float = 600) -> Path:
    """The Python of a fresh venv with `requirements` installed from PyPI (skipped offline, except in CI)."""
    venv.create(directory, with_pip=True)
    python = directory / "bin" / "python"
    command = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
    try:
        install = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=VENV_ENVIRONMENT
        )
    except subprocess.TimeoutExpired:
        skip_unless_ci(f"pip install {' '.join(requirements)} timed out after {timeout:.0f} s")
    if install.returncode != 0:
        skip_unless_ci(f"pip could not install {' '.join(requirements)} from PyPI: {install.stderr[-500:]}")
    return python


def infer_body(data: object, shape: list, datatype: str = "FP32", **extra: object) -> dict:
    """An Open Inference Protocol REST request of one `observations` input."""
    return {"inputs": [{"name": "observations", "shape": shape, "datatype": datatype, "data": data}], **extra}

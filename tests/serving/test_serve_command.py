"""`gymserve serve`, `query` and `play --remote` as separate processes, and shutdown on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

import grpc
import gymnasium as gym
import numpy as np
import pytest
from serving_support import GYMSERVE, read_events_until

from gymserve.cli import build_parser
from gymserve.policies import load
from gymserve.policies.episodes import run_episode
from gymserve.serving import PolicyClient, PolicyServiceError


@pytest.fixture
def served_repository(discrete_export: Path, tmp_path: Path) -> Path:
    repository = tmp_path / "repository"
    for version in ("1", "2"):
        shutil.copytree(discrete_export, repository / "cartpole" / version)
    broken = shutil.copytree(discrete_export, repository / "broken" / "1")
    (broken / "policy.onnx").write_bytes(b"not a model")
    return repository


def test_serve_answers_query_and_remote_play_then_stops_gracefully_on_sigterm(
    served_repository: Path, discrete_export: Path
):
    server = subprocess.Popen(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--repository", str(served_repository),
         "--batching-max-size", "8", "--batching-timeout-micros", "100"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        started = read_events_until(server.stderr, "server_started")
        address = started[-1]["address"]
        assert {(e["event"], e.get("policy")) for e in started} >= {
            ("policy_loaded", "cartpole"),
            ("policy_load_failed", "broken"),
        }
        local = load(discrete_export)

        query = subprocess.run(
            [*GYMSERVE, "query", address, "--policy", "cartpole", "--obs", "[0.5, -1.0, 0.25, 2.0]"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        answer = json.loads(query.stdout)
        assert (answer["policy"], answer["version"]) == ("cartpole", 2)
        assert answer["action"] == local.action(np.array([0.5, -1.0, 0.25, 2.0], np.float32)).action

        play = subprocess.run(
            [*GYMSERVE, "play", "--env", "gymserve/CartPole-v1", "--remote", address, "--policy", "cartpole",
             "--episodes", "2", "--seed", "5"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        env = gym.make("gymserve/CartPole-v1")
        expected = [run_episode(env, local, seed=seed) for seed in (5, 6)]
        assert play.stdout.splitlines() == [
            f"episode {i + 1}: return {e.total_return:.3f}, length {e.length}" for i, e in enumerate(expected)
        ]

        with PolicyClient(address) as client, client.stream("cartpole") as session:
            observation = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
            before = session.step(observation)
            server.send_signal(signal.SIGTERM)
            read_events_until(server.stderr, "server_stopping")
            assert session.step(observation) == before  # the open stream is in flight: it is finished
            with pytest.raises(PolicyServiceError) as raised:
                client.act(observation, "cartpole")  # new calls are refused
            assert raised.value.code == grpc.StatusCode.UNAVAILABLE
        assert server.wait(timeout=20) == 0
        assert read_events_until(server.stderr, "server_stopped")
    finally:
        server.kill()
        server.wait()


def test_serve_without_policies_or_with_a_bad_address_explains_the_problem(tmp_path: Path):
    result = subprocess.run(
        [*GYMSERVE, "serve", "--address", "nowhere", "--repository", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "address 'nowhere' is not HOST:PORT" in result.stderr


def test_serve_takes_the_old_flag_names_with_a_one_line_warning(capsys: pytest.CaptureFixture):
    old_and_new = {
        "--max-batch-size": "max_request_observations",
        "--batch-max-size": "batching_max_size",
        "--batch-timeout-micros": "batching_timeout_micros",
        "--max-enqueued-batches": "batching_max_enqueued",
        "--num-batch-threads": "batching_threads",
    }
    for number, (old, field) in enumerate(old_and_new.items(), start=1):
        args = build_parser("serve").parse_args(["serve", old, str(number)])
        assert getattr(args, field) == number
        new = "--" + field.replace("_", "-")
        assert capsys.readouterr().err == f"gymserve serve: warning: {old} is deprecated; use {new}\n"
        assert getattr(build_parser("serve").parse_args(["serve", new, str(number)]), field) == number

"""`gymserve serve`, `query` and `play --remote` as separate processes, and shutdown on SIGTERM."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
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

# `gymserve serve` whose every policy load first logs "slow_load_started", then sleeps two seconds
SLOWLY_LOADING_SERVE = [
    sys.executable,
    "-c",
    "import sys, time\n"
    "from gymserve.cli import main\n"
    "from gymserve.serving.server import policy_server\n"
    "from gymserve.serving.server.logs import log_event\n"
    "def slow_loader(backend, load_export=policy_server.export_loader):\n"
    "    def load(path):\n"
    "        log_event(20, 'slow_load_started', path=str(path))\n"
    "        time.sleep(2)\n"
    "        return load_export(backend)(path)\n"
    "    return load\n"
    "policy_server.export_loader = slow_loader\n"
    "sys.exit(main(sys.argv[1:]))\n",
    "serve",
    "--address",
    "127.0.0.1:0",
]


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


def test_sighup_while_policies_load_does_not_kill_the_server_and_rescans_once_it_runs(
    discrete_export: Path, tmp_path: Path
):
    versions = tmp_path / "repository" / "cartpole"
    shutil.copytree(discrete_export, versions / "1")
    server = subprocess.Popen(
        [*SLOWLY_LOADING_SERVE, "--repository", str(tmp_path / "repository"), "--poll-interval", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_events_until(server.stderr, "slow_load_started")
        shutil.copytree(discrete_export, versions / "2")  # with polling off, only a rescan finds it
        server.send_signal(signal.SIGHUP)
        address = read_events_until(server.stderr, "server_started")[-1]["address"]
        loaded = read_events_until(server.stderr, "policy_loaded")[-1]
        assert (loaded["policy"], loaded["version"]) == ("cartpole", 2)
        with PolicyClient(address) as client:
            assert client.act_with_details(np.zeros(4, np.float32), "cartpole").policy_version == 2
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    finally:
        server.kill()
        server.wait()


def test_sigterm_while_policies_load_cancels_the_start_with_status_0(discrete_export: Path, tmp_path: Path):
    server = subprocess.Popen(
        [*SLOWLY_LOADING_SERVE, "--policy", f"cartpole={discrete_export}"], stderr=subprocess.PIPE, text=True
    )
    try:
        read_events_until(server.stderr, "slow_load_started")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
        events = [json.loads(line)["event"] for line in server.stderr]
        assert events == ["signal_received", "server_start_cancelled"]
    finally:
        server.kill()
        server.wait()


def test_serve_refuses_a_policy_path_that_does_not_exist_in_one_line_with_status_1(tmp_path: Path):
    missing = tmp_path / "does-not-exist"
    result = subprocess.run(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--policy", f"cartpole={missing}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"gymserve serve: error: policy 'cartpole': {missing} does not exist\n"


def test_serve_refuses_a_policy_path_with_no_version_that_loads_with_status_1(
    discrete_export: Path, tmp_path: Path
):
    broken = shutil.copytree(discrete_export, tmp_path / "cartpole" / "1")
    (broken / "policy.onnx").write_bytes(b"not a model")
    result = subprocess.run(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--policy", f"cartpole={tmp_path / 'cartpole'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith(
        f"gymserve serve: error: policy 'cartpole': {tmp_path / 'cartpole'} has no version that loads "
        "(version 1: cartpole/1/policy.onnx: "
    )

"""`gymserve demo`: the pretrained policies served, played through gRPC, tabulated and filmed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading

import imageio.v2 as imageio
import pytest
from tensorflow_threads import limit_tensorflow_threads

from gymserve.cli import main
from gymserve.cli.demo import DemoError, format_table, run_demo
from gymserve.pretrained import pretrained_policies, pretrained_policy_for_env

CARTPOLE = "gymserve/CartPole-v1"
# One table row: policy, env, mode, episodes, mean ± std return, mean length, p50 and p99 in ms.
ROW = re.compile(
    r"^(?P<policy>\S+)\s+(?P<env>\S+)\s+(?P<mode>greedy|stochastic)\s+(?P<episodes>\d+)\s+"
    r"(?P<mean>[-\d.]+) ± (?P<std>[\d.]+)\s+(?P<length>[\d.]+)\s+(?P<p50>[\d.]+)\s+(?P<p99>[\d.]+)$"
)


def test_demo_command_serves_plays_and_tabulates_every_pretrained_policy(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "gymserve.cli", "demo", "--episodes", "2", "--no-video"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("serving cartpole (ppo on gymserve/CartPole-v1) at 127.0.0.1:")
    assert "cartpole greedy episode 2/2: return 500.00, length 500" in lines
    header = lines.index("") + 1  # the table follows the progress lines after an empty line
    columns = ["policy", "env", "mode", "episodes", "return", "length", "p50 ms", "p99 ms"]
    assert re.split(r"\s{2,}", lines[header]) == columns
    rows = {(match["policy"], match["mode"]): match for match in map(ROW.match, lines[header + 1 :]) if match}
    expected = {(policy.name, mode) for policy in pretrained_policies() for mode in ("greedy", "stochastic")}
    assert set(rows) == expected
    greedy = rows["cartpole", "greedy"]
    assert greedy["env"] == CARTPOLE and greedy["episodes"] == "2"
    assert (greedy["mean"], greedy["std"], greedy["length"]) == ("500.00", "0.00", "500.0")
    for row in rows.values():
        assert 0 < float(row["p50"]) <= float(row["p99"]) < 1000
    assert not any(line.startswith("filming") for line in lines)
    assert list(tmp_path.iterdir()) == []


def test_run_demo_films_a_greedy_episode_on_request(tmp_path):
    shutil.copytree(pretrained_policy_for_env(CARTPOLE).path, tmp_path / "repository" / "cartpole")
    progress = []
    result = run_demo(
        1, video=tmp_path / "cartpole.mp4", repository=tmp_path / "repository", progress=progress.append
    )
    assert result.video == tmp_path / "cartpole.mp4"
    assert "filming cartpole: one greedy episode of at most 500 steps" in progress
    assert "filmed 500 steps, return 500.00" in progress
    with imageio.get_reader(result.video) as video:
        assert video.count_frames() == 501  # the reset frame and one per step


def test_run_demo_skips_a_policy_whose_environment_needs_a_missing_extra(tmp_path, monkeypatch):
    cartpole = pretrained_policy_for_env(CARTPOLE)
    shutil.copytree(cartpole.path, tmp_path / "cartpole")
    pong = shutil.copytree(cartpole.path, tmp_path / "pong")  # stands in for a policy of an Atari game
    policy_json = pong / "policy.json"
    policy_json.write_text(policy_json.read_text().replace(CARTPOLE, "gymserve/AtariPong-v0"))
    monkeypatch.setitem(sys.modules, "ale_py", None)  # as if the atari extra were not installed
    progress = []
    result = run_demo(1, repository=tmp_path, progress=progress.append)
    missing = 'the Atari environments needs ale_py, which is not installed: pip install "gymserve[atari]"'
    assert f"skipping pong: {missing}" in progress
    assert [row.policy for row in result.rows] == ["cartpole", "cartpole"]


def test_run_demo_skips_unregistered_environments_and_leaves_no_thread_behind(tmp_path):
    cartpole = pretrained_policy_for_env(CARTPOLE)
    shutil.copytree(cartpole.path, tmp_path / "cartpole")
    elsewhere = shutil.copytree(cartpole.path, tmp_path / "elsewhere")
    policy_json = elsewhere / "policy.json"
    policy_json.write_text(policy_json.read_text().replace(CARTPOLE, "other/Unknown-v0"))
    threads_before = set(threading.enumerate())
    progress = []
    result = run_demo(1, repository=tmp_path, progress=progress.append)
    assert "skipping elsewhere: its environment 'other/Unknown-v0' is not registered" in progress
    assert [(row.policy, row.mode.value, row.episodes) for row in result.rows] == [
        ("cartpole", "greedy", 1),
        ("cartpole", "stochastic", 1),
    ]
    assert result.rows[0].evaluation.returns.tolist() == [500.0]
    assert len(result.rows[0].action_seconds) == 500
    assert result.video is None  # CartPole is filmed only when asked
    assert progress[-1] == f"stopping the server at {result.address}"
    assert set(threading.enumerate()) <= threads_before
    table = format_table(result.rows).splitlines()
    assert len(table) == 3
    stochastic = result.rows[1]
    stochastic_return = f"{stochastic.evaluation.average_return:.2f} ± {stochastic.std_return:.2f}"
    assert table[0].index("return") == table[1].index("500.00 ± 0.00") == table[2].index(stochastic_return)


def test_a_policy_the_server_cannot_load_stops_the_demo(tmp_path):
    broken = shutil.copytree(pretrained_policy_for_env(CARTPOLE).path, tmp_path / "cartpole")
    (broken / "policy.onnx").write_bytes(b"not a model")
    message = r"could not load every pretrained policy: cartpole version 1: .*sha256"
    with pytest.raises(DemoError, match=message):
        run_demo(1, repository=tmp_path, progress=lambda line: None)


def test_bad_arguments_are_refused_before_anything_runs(capsys):
    with pytest.raises(ValueError, match="episodes must be at least 1, got 0"):
        run_demo(0)
    with pytest.raises(ValueError, match=r"port must be from 0 .* to 65535, got 65536"):
        run_demo(port=65536)
    assert main(["demo", "--video", "demo.avi"]) == 2
    assert "video file must end in .mp4 or .gif, got 'demo.avi'" in capsys.readouterr().err


@pytest.mark.slow  # trains PPO on CartPole for about ten thousand steps
def test_without_pretrained_policies_the_demo_trains_cartpole_first(tmp_path):
    limit_tensorflow_threads()
    progress = []
    result = run_demo(2, repository=tmp_path, progress=progress.append)
    assert progress[0].startswith("no pretrained policy: training gymserve/CartPole-v1 with ppo")
    assert any(line.startswith("exported the best checkpoint") for line in progress)
    greedy = result.rows[0]
    assert (greedy.policy, greedy.env_id, greedy.mode.value) == ("cartpole", CARTPOLE, "greedy")
    assert greedy.evaluation.average_return >= 475.0  # the return the shipped config trains to

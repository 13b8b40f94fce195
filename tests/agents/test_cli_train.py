import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tiny_dqn import TINY_DQN

from gymserve.agents.checkpoints import CheckpointStore
from gymserve.agents.runs import read_run_info
from gymserve.cli import main

CARTPOLE = "gymserve/CartPole-v1"


def config_file(directory, **fields):
    path = directory / "config.json"
    path.write_text(json.dumps({**TINY_DQN, **fields}))
    return str(path)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli")
    run_dir = directory / "run"
    config = config_file(directory, eval_interval=300, checkpoint_interval=300)
    argv = [
        "train",
        "dqn",
        "--env",
        CARTPOLE,
        "--config",
        config,
        "--max-steps",
        "600",
        "--out",
        str(run_dir),
    ]
    assert main([*argv, "--quiet"]) == 0
    return run_dir


def test_train_prints_how_the_run_ended(trained_run, capsys):
    assert (
        main(["train", "dqn", "--env", CARTPOLE, "--max-steps", "600", "--out", str(trained_run), "--quiet"])
        == 0
    )
    output = capsys.readouterr().out
    assert "stopped at step 600 (max_steps)" in output
    assert f"run directory: {trained_run}" in output


def test_eval_prints_average_return_and_episode_length(trained_run, capsys):
    assert main(["eval", str(trained_run), "--episodes", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "dqn, best checkpoint at step" in lines[0] and "3 greedy episodes" in lines[0]
    assert lines[1].startswith("AverageReturn: ") and float(lines[1].split()[1]) >= 8
    assert lines[2].startswith("AverageEpisodeLength: ") and float(lines[2].split()[1]) >= 8


def test_plot_writes_a_png(trained_run, tmp_path, capsys):
    out = tmp_path / "curve.png"
    assert main(["plot", str(trained_run), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"learning curve written to {out}" in capsys.readouterr().out


def test_play_runs_a_trained_policy_or_a_random_one(trained_run, capsys):
    assert main(["play", str(trained_run), "--episodes", "2", "--stochastic", "--checkpoint", "latest"]) == 0
    assert main(["play", "--env", CARTPOLE, "--policy", "random"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["episode 1", "episode 2", "episode 1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "dqn", "--env", "gymserve/NoSuchEnv-v0"],
            "cannot make environment 'gymserve/NoSuchEnv-v0'",
        ),
        (
            ["train", "dqn", "--env", "Pendulum-v1"],
            "dqn acts only in Discrete action spaces, but the environment's",
        ),
        (
            ["train", "dqn", "--env", CARTPOLE, "--max-steps", "0"],
            "max_steps: Input should be greater than 0",
        ),
        (["eval", "no-such-run"], "no-such-run: no such file or directory"),
    ],
)
def test_user_mistakes_get_one_clear_line_and_status_2(argv, message, tmp_path, capsys):
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "run"), "--quiet"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"gymserve {argv[0]}: error: ") and message in error


def test_unknown_algorithm_is_rejected_with_the_choices(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "dqnn", "--env", CARTPOLE, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument ALGORITHM: invalid choice: 'dqnn'" in error
    assert all(f"'{name}'" in error for name in ("dqn", "ppo", "a2c", "a3c", "sac"))


def test_a_run_directory_of_another_config_is_refused(trained_run, tmp_path, capsys):
    other = config_file(tmp_path, learning_rate=0.01)
    argv = ["train", "dqn", "--env", CARTPOLE, "--config", other, "--out", str(trained_run), "--quiet"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"{trained_run} holds another run" in error and "learning_rate: 0.0023 -> 0.01" in error
    assert main(["train", "dqn", "--env", CARTPOLE, "--seed", "7", "--out", str(trained_run), "--quiet"]) == 2
    assert "seed: 0 -> 7" in capsys.readouterr().err


def test_a_training_process_killed_with_sigkill_resumes_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    config = config_file(tmp_path, eval_interval=1000, checkpoint_interval=250)
    command = [sys.executable, "-m", "gymserve.cli", "train", "dqn", "--env", CARTPOLE, "--config", config]
    command += ["--max-steps", "8000", "--out", str(run_dir), "--quiet"]
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = CheckpointStore(run_dir)
    try:
        deadline = time.monotonic() + 120
        while (store.trainer_state("latest") or {}).get("total_steps", 0) < 1000:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint at step 1000 within 2 minutes"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed_at = store.trainer_state("latest")["total_steps"]
    assert killed_at < 8000
    checkpoint_history = (store.path("latest") / "history.csv").read_text()

    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "stopped at step 8000 (max_steps)" in finished.stdout
    history = (run_dir / "history.csv").read_text()
    assert history.startswith(checkpoint_history)
    steps = [int(line.split(",")[0]) for line in history.splitlines()[1:]]
    assert steps == sorted(steps) and steps[-1] == 8000
    assert store.trainer_state("latest")["total_steps"] == 8000
    assert read_run_info(run_dir).config.max_steps == 8000

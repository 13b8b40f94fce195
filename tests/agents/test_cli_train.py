import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tiny_dqn import TINY_DQN

from gymserve.agents import load_trained_policy
from gymserve.agents.training.checkpoints import CheckpointStore
from gymserve.agents.training.runs import read_run_info
from gymserve.cli import main
from gymserve.policies.episodes import evaluate

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


def test_train_prints_its_config_then_how_the_run_ended(trained_run, capsys):
    assert (
        main(["train", "dqn", "--env", CARTPOLE, "--max-steps", "600", "--out", str(trained_run), "--quiet"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "dqn on gymserve/CartPole-v1, config:"
    run_file = trained_run / "run.json"
    assert f"hidden_sizes = [8]  ({run_file})" in lines, "a resumed run keeps the config in its run.json"
    assert "max_steps = 600  (--max-steps)" in lines
    assert not any(line.startswith("gamma = ") for line in lines), "fields at their defaults are not listed"
    assert lines.index("max_steps = 600  (--max-steps)") < lines.index(
        "(the others are at their defaults: gymserve config dqn --env gymserve/CartPole-v1 lists all)"
    )
    assert any(line.startswith("stopped at step 600 (max_steps) after ") for line in lines)
    assert lines[-1] == f"run directory: {trained_run}"


def test_the_run_directory_records_where_each_config_value_came_from(trained_run):
    recorded = json.loads((trained_run / "run.json").read_text())
    config_file = str(trained_run.parent / "config.json")
    assert recorded["config"]["hidden_sizes"] == [8] and recorded["config"]["eval_interval"] == 300
    assert recorded["config_sources"]["hidden_sizes"] == f"config file {config_file}"
    assert recorded["config_sources"]["max_steps"] == "--max-steps"
    assert recorded["config_sources"]["exploration_steps"] == "shipped dqn_CartPole-v1.json"
    assert "gamma" not in recorded["config_sources"], "defaults are not listed"


def test_config_prints_every_field_with_its_value_source_and_description(capsys):
    from gymserve.agents.on_policy.ppo import PPOConfig

    assert main(["config", "ppo", "--env", CARTPOLE, "--seed", "3", "--max-episodes", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fields = PPOConfig.model_fields
    assert len(lines) == 2 * len(fields)
    for name, line, description in zip(fields, lines[::2], lines[1::2], strict=True):
        assert line.startswith(f"{name} = ") and description == f"    {fields[name].description}"
    assert "seed = 3  (--seed)" in lines and "max_episodes = 50  (--max-episodes)" in lines
    assert "learning_rate = 0.001  (shipped ppo_CartPole-v1.json)" in lines
    assert "vf_coef = 0.5  (default)" in lines


def test_train_help_points_to_the_hyperparameters(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "gymserve config ALGORITHM --env ID" in help_text and "--max-episodes" in help_text


def test_eval_prints_the_evaluation_of_the_runs_policy(trained_run, capsys):
    assert main(["eval", str(trained_run), "--episodes", "3", "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    trained = load_trained_policy(trained_run)
    expected = evaluate(trained.policy, CARTPOLE, 3, "greedy", seed=5)
    assert lines == [
        f"{trained_run} (dqn, best checkpoint at step {trained.train_step}) on {CARTPOLE}, 3 greedy episodes",
        f"AverageReturn: {expected.average_return:.3f} ± {np.std(expected.returns):.3f}",
        f"AverageEpisodeLength: {np.mean(expected.lengths):.1f}",
    ]
    assert main(["eval", "--policy", str(trained_run), "--episodes", "3", "--seed", "5"]) == 0
    assert capsys.readouterr().out.splitlines() == lines


def eval_output(argv, capsys):
    """AverageReturn, its standard deviation and AverageEpisodeLength printed by `gymserve eval`."""
    assert main(["eval", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    average, plus_minus, std = lines[1].removeprefix("AverageReturn: ").split()
    assert plus_minus == "±"
    return float(average), float(std), float(lines[2].removeprefix("AverageEpisodeLength: "))


def test_eval_measures_the_random_and_pretrained_baselines(capsys):
    # A uniform random policy balances CartPole for about 22 steps on average.
    average, std, length = eval_output(["--env", CARTPOLE, "--policy", "random", "--episodes", "100"], capsys)
    assert 15 <= average <= 30 and 5 <= std <= 20 and length == pytest.approx(average, abs=0.05)
    assert eval_output(["--env", CARTPOLE, "--policy", "pretrained", "--episodes", "3"], capsys) == (
        500.0,
        0.0,
        500.0,
    )


@pytest.mark.slow  # trains DQN with the shipped config until it solves CartPole (about 10 s)
def test_a_trained_policy_beats_random_play_by_far(tmp_path, capsys):
    argv = ["train", "dqn", "--env", CARTPOLE, "--max-steps", "10000", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    random_average, random_std, _ = eval_output(
        ["--env", CARTPOLE, "--policy", "random", "--episodes", "20"], capsys
    )
    trained_average, _, _ = eval_output([str(tmp_path), "--episodes", "20"], capsys)
    assert trained_average > random_average + 10 * random_std, (trained_average, random_average)


def test_play_refuses_contradictory_policies(trained_run, capsys):
    assert main(["play", str(trained_run), "--policy", "pretrained"]) == 2
    error = capsys.readouterr().err
    assert f"give either RUN_DIR {trained_run} or --policy pretrained, not both" in error
    assert main(["play", str(trained_run), "--remote", "127.0.0.1:1", "--policy", "cartpole"]) == 2
    assert f"play either RUN_DIR {trained_run} or --remote 127.0.0.1:1, not both" in capsys.readouterr().err
    assert main(["eval", "--env", CARTPOLE]) == 2
    assert "give a RUN_DIR, or --env with --policy random|pretrained|DIR" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["play", "eval"])
def test_a_policy_runs_in_another_environment_only_when_allowed(command, trained_run, capsys):
    # CartPoleBullet has CartPole's spaces but orders its observations differently.
    argv = [command, str(trained_run), "--env", "gymserve/CartPoleBullet-v1", "--episodes", "1"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"{trained_run} was trained on {CARTPOLE}, not gymserve/CartPoleBullet-v1" in error
    assert "--allow-env-mismatch" in error
    assert main([*argv, "--allow-env-mismatch"]) == 0
    assert main([command, "--policy", str(trained_run), "--env", "gymserve/Minitaur-v0"]) == 2
    assert f"{trained_run} was trained on {CARTPOLE}, not gymserve/Minitaur-v0" in capsys.readouterr().err
    assert (
        main([command, "--policy", str(trained_run), "--env", "gymserve/Minitaur-v0", "--allow-env-mismatch"])
        == 2
    )
    assert (
        f"the policy in {trained_run} takes observations Box of shape (4,); "
        "gymserve/Minitaur-v0's are Box of shape (28,)" in capsys.readouterr().err
    )


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
            "invalid DQNConfig: max_steps: Input should be greater than 0 (from --max-steps)\n",
        ),
        (
            ["train", "ppo", "--env", CARTPOLE, "--max-episodes", "-5"],
            "invalid PPOConfig: max_episodes: Input should be greater than 0 (from --max-episodes)\n",
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

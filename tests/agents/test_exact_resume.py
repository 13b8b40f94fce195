"""A run stopped right after a checkpoint and resumed continues exactly as the uninterrupted run."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents import train
from gymserve.agents.training.checkpoints import TRAINING_ENVS_FILE, CheckpointStore
from gymserve.agents.training.runs import build_algorithm, read_run_info

CARTPOLE = "gymserve/CartPole-v1"
PPO = {
    "max_steps": 4096,
    "eval_interval": 1024,
    "checkpoint_interval": 1024,
    "eval_episodes": 2,
    "num_envs": 4,
    "n_steps": 64,
    "batch_size": 64,
    "n_epochs": 2,
    "hidden_sizes": [16],
    "target_reward": None,
}
DQN = {
    "max_steps": 800,
    "eval_interval": 200,
    "checkpoint_interval": 200,
    "eval_episodes": 2,
    "hidden_sizes": [16],
    "batch_size": 16,
    "buffer_size": 1000,
    "learning_starts": 100,
    "train_freq": 4,
    "exploration_steps": 400,
    "jit_compile": False,
    "target_reward": None,
}
SAC = {
    "max_steps": 600,
    "eval_interval": 200,
    "checkpoint_interval": 200,
    "eval_episodes": 1,
    "actor_hidden_sizes": [16],
    "critic_hidden_sizes": [16],
    "batch_size": 16,
    "buffer_size": 1000,
    "learning_starts": 100,
    "train_freq": 4,
    "jit_compile": False,
    "target_reward": None,
}
ON_POLICY = {name: value for name, value in PPO.items() if name not in ("batch_size", "n_epochs")}
SLOW = pytest.mark.slow  # each about 10-20 s on one CPU; the fast ones cover each machinery once
RUNS = [
    pytest.param("ppo", CARTPOLE, PPO, id="ppo-in-graph-cartpole"),
    pytest.param(
        "ppo",
        "CartPole-v1",
        {**PPO, "max_steps": 2048, "eval_interval": 512, "checkpoint_interval": 512},
        id="ppo-gymnasium-cartpole",
    ),
    pytest.param("dqn", CARTPOLE, DQN, id="dqn-cartpole"),
    pytest.param("sac", "Pendulum-v1", SAC, id="sac-pendulum"),
    pytest.param(
        "ppo",
        "gymserve/CartPoleNoVelocity-v1",
        {**PPO, "lstm_units": 8, "bptt_length": 16},
        id="recurrent-ppo",
        marks=SLOW,
    ),
    pytest.param("a2c", CARTPOLE, {**ON_POLICY, "n_steps": 8}, id="a2c", marks=SLOW),
    pytest.param("trpo", CARTPOLE, {**ON_POLICY, "batch_size": 64}, id="trpo", marks=SLOW),
    pytest.param("acer", CARTPOLE, {**ON_POLICY, "n_steps": 16}, id="acer", marks=SLOW),
    pytest.param(
        "a3c",
        CARTPOLE,
        {**ON_POLICY, "num_workers": 1, "num_envs": 2, "n_steps": 8, "rollouts_per_iteration": 4},
        id="a3c-one-worker",
        marks=SLOW,
    ),
    pytest.param("td3", "Pendulum-v1", SAC, id="td3", marks=SLOW),
    pytest.param("ddpg", "Pendulum-v1", SAC, id="ddpg", marks=SLOW),
]


def history_without_wall_time(run_dir):
    with open(run_dir / "history.csv", newline="") as file:
        return [
            {name: value for name, value in row.items() if name != "wall_time"}
            for row in csv.DictReader(file)
        ]


def final_weights(run_dir):
    algorithm = build_algorithm(read_run_info(run_dir))
    algorithm.restore(CheckpointStore(run_dir).path("latest"))
    return [weight for network in algorithm.networks().values() for weight in network.get_weights()]


@pytest.mark.parametrize(("algorithm", "env_id", "config"), RUNS)
def test_a_run_stopped_after_a_checkpoint_resumes_exactly(tmp_path, algorithm, env_id, config):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(algorithm, env_id, whole, config, progress_bar=False)
    stop_at = 2 * config["checkpoint_interval"]
    stopped = train(
        algorithm,
        env_id,
        split,
        config,
        progress_bar=False,
        on_evaluation=lambda state: state.total_steps >= stop_at,
    )
    assert (stopped.stop_reason, stopped.total_steps) == ("requested", stop_at)
    assert_resumes_exactly(algorithm, env_id, config, split, whole)


def test_a_run_interrupted_by_sigint_between_checkpoints_resumes_exactly(tmp_path):
    config = {**DQN, "checkpoint_interval": 100_000}
    whole, split = tmp_path / "whole", tmp_path / "split"
    train("dqn", CARTPOLE, whole, config, progress_bar=False)

    def interrupt_at_step_400(state):
        if state.total_steps == 400:
            signal.raise_signal(signal.SIGINT)
        return False

    stopped = train("dqn", CARTPOLE, split, config, progress_bar=False, on_evaluation=interrupt_at_step_400)
    assert (stopped.stop_reason, stopped.total_steps) == ("interrupted", 400)
    assert stopped.interrupt_signal == signal.SIGINT
    assert CheckpointStore(split).trainer_state("latest")["total_steps"] == 400
    assert_resumes_exactly("dqn", CARTPOLE, config, split, whole)


def assert_resumes_exactly(algorithm, env_id, config, split, whole):
    resumed = train(algorithm, env_id, split, config, progress_bar=False)
    assert (resumed.stop_reason, resumed.total_steps) == ("max_steps", config["max_steps"])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the run's handler is gone
    assert history_without_wall_time(split) == history_without_wall_time(whole)
    for resumed_weight, whole_weight in zip(final_weights(split), final_weights(whole), strict=True):
        np.testing.assert_array_equal(resumed_weight, whole_weight)


def test_sigint_stops_gymserve_train_with_a_checkpoint_that_a_rerun_resumes_from(tmp_path):
    run_dir = tmp_path / "run"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**DQN, "eval_interval": 300, "checkpoint_interval": 100_000}))
    command = [
        sys.executable,
        "-m",
        "gymserve.cli",
        "train",
        "dqn",
        "--env",
        CARTPOLE,
        "--config",
        str(config),
    ]
    command += ["--out", str(run_dir), "--quiet"]
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    process = subprocess.Popen(
        [*command, "--max-steps", "50000"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "history.csv").exists():  # written by the first evaluation, at step 300
            assert process.poll() is None, process.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no evaluation within 2 minutes"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, errors[-2000:]
    store = CheckpointStore(run_dir)
    stopped_at = store.trainer_state("latest")["total_steps"]
    assert 300 <= stopped_at < 50_000
    assert f"stopped at step {stopped_at} (interrupted)" in output
    assert "rerun the same command to resume" in output

    max_steps = stopped_at + 100
    resumed = subprocess.run(
        [*command, "--max-steps", str(max_steps)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (
        f"resuming {run_dir} from step {stopped_at} (checkpoint {run_dir / 'checkpoints'}" in resumed.stderr
    )
    assert f"stopped at step {max_steps} (max_steps)" in resumed.stdout
    assert store.trainer_state("latest")["total_steps"] == max_steps


SHORT_BREAKOUT = "tests/ShortBreakout-v0"  # Breakout cut at 100 steps: an untrained greedy policy never fires
DQN_BREAKOUT = {
    **DQN,
    "max_steps": 300,
    "eval_interval": 100,
    "checkpoint_interval": 100,
    "eval_episodes": 1,
    "image_encoder": "nature_cnn",
    "batch_size": 8,
    "buffer_size": 150,  # wraps around before the stop: the frames stored once are checkpointed mid-ring
    "exploration_steps": 200,
}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param(DQN_BREAKOUT, id="dqn"),
        pytest.param(
            {**DQN_BREAKOUT, "prioritized_replay": True, "bootstrap_horizon": 3},
            id="prioritized-n-step",
            marks=SLOW,
        ),
    ],
)
def test_a_dqn_breakout_run_resumes_exactly(tmp_path, config):
    """The emulators mid-game and the replay of frames stored once travel in the checkpoint."""
    pytest.importorskip("ale_py")
    if SHORT_BREAKOUT not in gym.registry:
        gym.register(
            SHORT_BREAKOUT,
            "gymserve.envs.atari:make_atari_env",
            kwargs={"game": "Breakout", "training": False},
            max_episode_steps=100,
        )
    whole, split = tmp_path / "whole", tmp_path / "split"
    train("dqn", SHORT_BREAKOUT, whole, config, progress_bar=False)
    stopped = train(
        "dqn",
        SHORT_BREAKOUT,
        split,
        config,
        progress_bar=False,
        on_evaluation=lambda state: state.total_steps >= 200,
    )
    assert (stopped.stop_reason, stopped.total_steps) == ("requested", 200)
    checkpoint = CheckpointStore(split).path("latest")
    assert (checkpoint / TRAINING_ENVS_FILE).exists()  # the games mid-play
    with np.load(checkpoint / "algorithm_state.npz") as saved:  # the replay's frames, each once
        assert "replay_observation_frames" in saved and "replay_observation" not in saved
    assert_resumes_exactly("dqn", SHORT_BREAKOUT, config, split, whole)

import csv
import json

import numpy as np
import pytest
from tensorboard_scalars import tensorboard_scalars
from tiny_dqn import TINY_DQN

from gymserve.agents import (
    RunMismatchError,
    UnknownAlgorithmError,
    UnknownEnvironmentError,
    load_trained_policy,
    train,
)
from gymserve.agents.algorithm import UnsupportedActionSpaceError
from gymserve.agents.training.checkpoints import CheckpointStore
from gymserve.agents.training.history import FIELDS
from gymserve.agents.training.runs import RunInfo, build_algorithm, open_run_dir, read_run_info
from gymserve.agents.training.trainer import STOP_REQUESTED
from gymserve.policies.actor_policy import ActorPolicy

CARTPOLE = "gymserve/CartPole-v1"


def run_tiny(run_dir, **fields):
    return train("dqn", CARTPOLE, run_dir, {**TINY_DQN, **fields}, progress_bar=False)


def evaluation_steps(history):
    return [row["step"] for row in history.evaluations()]


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_a_rerun_resumes_the_step_count_history_and_wall_time(tmp_path):
    first = run_tiny(tmp_path, max_steps=400)
    assert (first.stop_reason, first.total_steps) == ("max_steps", 400)
    assert evaluation_steps(first.history) == [200, 400]
    second = run_tiny(tmp_path, max_steps=800)
    assert (second.stop_reason, second.total_steps) == ("max_steps", 800)
    assert evaluation_steps(second.history) == [200, 400, 600, 800]
    assert second.history.rows[: len(first.history.rows)] == first.history.rows
    resumed_rows = second.history.rows[len(first.history.rows) :]
    assert min(row["step"] for row in resumed_rows) > 400
    assert min(row["wall_time"] for row in resumed_rows) >= first.wall_time
    assert second.wall_time > first.wall_time
    assert len(read_csv(tmp_path / "history.csv")) == len(second.history.rows)
    assert CheckpointStore(tmp_path).trainer_state("latest")["total_steps"] == 800


def test_rerunning_a_finished_run_changes_nothing(tmp_path):
    first = run_tiny(tmp_path, max_steps=200)
    latest = CheckpointStore(tmp_path).path("latest")
    again = run_tiny(tmp_path, max_steps=200)
    assert (again.stop_reason, again.total_steps) == ("max_steps", 200)
    assert again.history.rows == first.history.rows
    assert CheckpointStore(tmp_path).path("latest") == latest


def test_leftovers_of_an_interrupted_checkpoint_write_are_ignored_and_removed(tmp_path):
    run_tiny(tmp_path, max_steps=200)
    checkpoints = tmp_path / "checkpoints"
    half_written = checkpoints / ".step-000000300-0badc0de.tmp"
    half_written.mkdir()
    (half_written / "variables.index").write_bytes(b"\0")
    unreferenced = checkpoints / "step-000000300-deadbeef"  # renamed, pointer not yet replaced
    unreferenced.mkdir()
    (checkpoints / ".latest.json.1234abcd.tmp").write_text("{")
    resumed = run_tiny(tmp_path, max_steps=400)
    assert resumed.total_steps == 400
    assert not half_written.exists() and not unreferenced.exists()
    assert not list(checkpoints.glob(".*"))
    assert {path.name for path in checkpoints.iterdir() if path.is_dir()} == {
        CheckpointStore(tmp_path).path(name).name for name in ("latest", "best")
    }


def test_training_stops_once_an_evaluation_reaches_the_target_reward(tmp_path):
    result = run_tiny(tmp_path, max_steps=10_000, target_reward=1.0)
    assert (result.stop_reason, result.total_steps) == ("target_reward", 200)
    trained = load_trained_policy(tmp_path)
    assert isinstance(trained.policy, ActorPolicy)
    assert (trained.env_id, trained.algorithm, trained.train_step) == (CARTPOLE, "dqn", 200)
    assert trained.evaluation_return == result.state.evaluation_return


def test_training_stops_once_enough_episodes_have_ended_and_resumes_to_a_later_limit(tmp_path):
    # One env and train_freq 10: an iteration of 10 steps ends at most two CartPole episodes.
    result = run_tiny(tmp_path, max_steps=10_000, max_episodes=5)
    assert result.stop_reason == "max_episodes"
    assert 5 <= result.history.episodes <= 6
    assert result.total_steps < 10_000
    resumed = run_tiny(tmp_path, max_steps=10_000, max_episodes=9)
    assert resumed.stop_reason == "max_episodes"
    assert 9 <= resumed.history.episodes <= 10
    assert resumed.history.rows[: len(result.history.rows)] == result.history.rows


def test_the_caller_sees_every_evaluation_and_can_stop_the_run_after_one(tmp_path):
    seen = []

    def stop_at_the_second(state):
        seen.append((state.evaluation_step, state.evaluation_return))
        return len(seen) == 2

    result = train(
        "dqn",
        CARTPOLE,
        tmp_path,
        {**TINY_DQN, "max_steps": 10_000},
        progress_bar=False,
        on_evaluation=stop_at_the_second,
    )
    assert (result.stop_reason, result.total_steps) == (STOP_REQUESTED, 400)
    assert seen == [(row["step"], row["eval_return"]) for row in result.history.evaluations()]
    assert CheckpointStore(tmp_path).trainer_state("latest")["total_steps"] == 400


def test_plateaus_halve_the_learning_rate_and_early_stopping_ends_the_run(tmp_path):
    # Learning never starts, so every greedy evaluation repeats the first one: no improvement.
    result = run_tiny(
        tmp_path, max_steps=10_000, learning_starts=10**6, lr_plateau_patience=1, early_stopping_patience=2
    )
    assert (result.stop_reason, result.total_steps) == ("early_stopping", 600)
    returns = [row["eval_return"] for row in result.history.evaluations()]
    assert len(set(returns)) == 1
    algorithm = build_algorithm(read_run_info(tmp_path))
    algorithm.restore(CheckpointStore(tmp_path).path("latest"))
    assert algorithm.learning_rate == pytest.approx(read_run_info(tmp_path).config.learning_rate / 4)
    assert algorithm.learning_rate_scale == pytest.approx(1 / 4)


def test_history_and_tensorboard_record_episodes_and_evaluations(tmp_path):
    result = run_tiny(tmp_path, max_steps=400, mean_return_window=5)
    rows = read_csv(tmp_path / "history.csv")
    assert tuple(rows[0]) == FIELDS
    episodes = [row for row in rows if row["episode_return"]]
    returns = [float(row["episode_return"]) for row in episodes]
    for index, row in enumerate(episodes):
        window = returns[max(0, index - 4) : index + 1]
        assert float(row["mean_return"]) == pytest.approx(np.mean(window))
        assert float(row["best_mean_return"]) == pytest.approx(
            max(np.mean(returns[max(0, i - 4) : i + 1]) for i in range(index + 1))
        )
    assert sum(int(row["episode_length"]) for row in episodes) <= 400
    scalars = tensorboard_scalars(tmp_path)
    assert [step for step, _ in scalars["eval/AverageReturn"]] == [200, 400]
    assert [value for _, value in scalars["eval/AverageReturn"]] == pytest.approx(
        [row["eval_return"] for row in result.history.evaluations()]
    )
    assert {
        "train/mean_return",
        "train/steps_per_second",
        "train/learning_rate",
        "dqn/loss",
        "dqn/epsilon",
    } <= set(scalars)


def test_a_run_directory_of_another_run_is_refused(tmp_path):
    run_tiny(tmp_path, max_steps=200)
    with pytest.raises(RunMismatchError, match=r"learning_rate: 0\.0023 -> 0\.5"):
        run_tiny(tmp_path, max_steps=400, learning_rate=0.5)
    with pytest.raises(RunMismatchError, match="env: 'gymserve/CartPole-v1' -> 'CartPole-v1'"):
        train("dqn", "CartPole-v1", tmp_path, TINY_DQN, progress_bar=False)
    config = read_run_info(tmp_path).config
    with pytest.raises(RunMismatchError, match="algorithm: 'dqn' -> 'a2c'"):
        open_run_dir(tmp_path, RunInfo("a2c", CARTPOLE, config))
    assert json.loads((tmp_path / "run.json").read_text())["config"]["learning_rate"] == 0.0023


def test_bad_algorithm_environment_or_action_space_leave_no_run_directory(tmp_path):
    with pytest.raises(UnknownAlgorithmError, match="unknown algorithm 'dqm'; expected one of: dqn, ppo"):
        train("dqm", CARTPOLE, tmp_path / "a")
    with pytest.raises(UnknownEnvironmentError, match="cannot make environment 'gymserve/NoSuchEnv-v0'"):
        train("dqn", "gymserve/NoSuchEnv-v0", tmp_path / "b")
    with pytest.raises(UnsupportedActionSpaceError, match="dqn acts only in Discrete action spaces"):
        train("dqn", "Pendulum-v1", tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_loading_needs_a_run_directory_with_the_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        load_trained_policy(tmp_path)
    run_tiny(tmp_path, max_steps=20, eval_interval=1000)  # ends with its only evaluation
    with pytest.raises(ValueError, match="unknown checkpoint 'newest'"):
        load_trained_policy(tmp_path, checkpoint="newest")
    assert load_trained_policy(tmp_path, checkpoint="latest").train_step == 20

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from gymserve.agents.on_policy.ppo import PPOConfig
from gymserve.agents.training.config import resolve_config
from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.agents.training.runs import read_run_info
from gymserve.cli import main
from gymserve.tuning import Objective, tune
from gymserve.tuning.objective import Evaluation
from gymserve.tuning.reports import STUDY_SETTINGS
from gymserve.tuning.storage import open_storage

CARTPOLE = "gymserve/CartPole-v1"
STUDY = "ppo-CartPole-v1"
# PPO that learns something within 1,024 steps: 256 env steps per rollout, a tiny network.
TINY_PPO = {
    "hidden_sizes": [16],
    "n_steps": 32,
    "num_envs": 8,
    "batch_size": 128,
    "n_epochs": 10,
    "linear_decay_steps": None,
    "eval_episodes": 3,
    "checkpoint_interval": 2048,
    "summary_interval": 512,
    "in_graph_env": False,  # no rollout graph to trace: trials start faster
}
GOOD_RATE, HOPELESS_RATE = 0.01, 1e-9  # 1e-9 leaves the initial network's greedy policy as it is
LEARNING_RATES = {"learning_rate": {"type": "categorical", "choices": [GOOD_RATE, HOPELESS_RATE]}}


def write_json(path, values):
    path.write_text(json.dumps(values))
    return str(path)


def tune_argv(directory, *extra, eval_interval=256, max_steps=256):
    config = write_json(directory / "base.json", {**TINY_PPO, "eval_interval": eval_interval})
    space = write_json(directory / "space.json", LEARNING_RATES)
    out = str(directory / "out")
    return ["tune", "ppo", "--env", CARTPOLE, "--out", out, "--config", config, "--search-space", space,
            "--max-steps", str(max_steps), "--quiet", *extra]  # fmt: skip


def load_study(directory):
    return load_study_at(directory / "out" / "study.db", STUDY)


def load_study_at(path, name):
    # open_storage, like a tuner: it copes with a tuner creating the file's tables at the same time
    return optuna.load_study(study_name=name, storage=open_storage(f"sqlite:///{path}"))


def states(study):
    return [trial.state.name for trial in sorted(study.trials, key=lambda trial: trial.number)]


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study_and_a_third_resumes_it(tmp_path):
    argv = tune_argv(tmp_path, "--trials", "1")
    processes = [
        subprocess.Popen([sys.executable, "-m", "gymserve.cli", *argv], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        assert process.wait(timeout=600) == 0, process.stderr.read()
    assert sorted(trial.number for trial in load_study(tmp_path).trials) == [0, 1]

    assert main(tune_argv(tmp_path, "--trials", "1")) == 0
    study = load_study(tmp_path)
    assert sorted(trial.number for trial in study.trials) == [0, 1, 2]
    assert states(study) == ["COMPLETE"] * 3
    assert len({trial.user_attrs["run_dir"] for trial in study.trials}) == 3

    out = tmp_path / "out"
    best = study.best_trial
    with open(out / "trials.csv") as file:
        rows = list(csv.DictReader(file))
    assert [(int(row["number"]), row["state"]) for row in rows] == [(n, "COMPLETE") for n in range(3)]
    assert [float(row["value"]) for row in rows] == [trial.value for trial in study.trials]
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # best_config.json: the tuned field and TINY_PPO's fields that differ from the shipped config,
    # without the study's budget (max_steps 256, no target reward) and evaluation settings
    learned_with = {"learning_rate": best.params["learning_rate"], "hidden_sizes": [16], "batch_size": 128,
                    "n_epochs": 10, "linear_decay_steps": None, "in_graph_env": False}  # fmt: skip
    assert json.loads((out / "best_config.json").read_text()) == learned_with
    retrained = resolve_config(PPOConfig, "ppo", CARTPOLE, out / "best_config.json").config
    shipped = resolve_config(PPOConfig, "ppo", CARTPOLE).config
    assert (retrained.max_steps, retrained.target_reward) == (100_000, 475), "the shipped stop rules"
    trial_config = read_run_info(best.user_attrs["run_dir"]).config
    study_settings = {name: getattr(shipped, name) for name in STUDY_SETTINGS}
    assert retrained == trial_config.model_copy(update=study_settings)

    assert main(tune_argv(tmp_path, "--trials", "1", "--keep-study-settings")) == 0
    best = load_study(tmp_path).best_trial
    retrained = resolve_config(PPOConfig, "ppo", CARTPOLE, out / "best_config.json").config
    assert retrained == read_run_info(best.user_attrs["run_dir"]).config, "the trial exactly"
    assert (retrained.max_steps, retrained.target_reward) == (256, None)


@pytest.mark.slow
def test_the_median_rule_prunes_hopeless_trials_before_their_budget(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name=STUDY, direction="maximize")
    for rate in (GOOD_RATE, HOPELESS_RATE, HOPELESS_RATE):
        study.enqueue_trial({"learning_rate": rate})
    config = write_json(tmp_path / "base.json", {**TINY_PPO, "eval_interval": 512})
    result = tune(
        "ppo",
        CARTPOLE,
        tmp_path,
        trials=3,
        storage=storage,
        max_steps=1024,
        search_space=write_json(tmp_path / "space.json", LEARNING_RATES),
        config_file=config,
        warmup_trials=1,
        progress_bar=False,
    )
    assert result.states == {"COMPLETE": 1, "PRUNED": 2}
    for trial in sorted(study.trials, key=lambda trial: trial.number):
        history = History.read(tmp_path / "trials" / f"{trial.number:04d}" / HISTORY_FILE)
        last_evaluation = history.evaluations()[-1]["step"]
        hopeless = trial.params["learning_rate"] == HOPELESS_RATE
        assert trial.state.name == ("PRUNED" if hopeless else "COMPLETE")
        assert last_evaluation == (512 if hopeless else 1024)


@pytest.mark.slow
def test_a_trial_trains_each_of_its_seeds_and_scores_their_mean(tmp_path):
    config = write_json(tmp_path / "base.json", {**TINY_PPO, "eval_interval": 256})
    result = tune(
        "ppo",
        CARTPOLE,
        tmp_path,
        trials=1,
        max_steps=512,
        seeds_per_trial=2,
        seed=7,
        search_space=write_json(tmp_path / "space.json", LEARNING_RATES),
        config_file=config,
        progress_bar=False,
    )
    assert result.states == {"COMPLETE": 1}
    trial_dir = tmp_path / "trials" / "0000"
    returns = {}
    for seed in (7, 8):
        assert read_run_info(trial_dir / f"seed-{seed}").config.seed == seed
        history = History.read(trial_dir / f"seed-{seed}" / HISTORY_FILE)
        returns[seed] = [row["eval_return"] for row in history.evaluations()]
        assert len(returns[seed]) == 2
    assert returns[7] != returns[8], "two seeds, two runs"
    (trial,) = load_study_at(tmp_path / "study.db", "ppo-CartPole-v1").trials
    assert trial.value == pytest.approx((sum(returns[7]) / 2 + sum(returns[8]) / 2) / 2)
    assert sorted(trial.intermediate_values) == [256, 512, 768, 1024]


@pytest.mark.slow
def test_a_killed_trial_fails_alone_and_ctrl_c_stops_the_study_cleanly(tmp_path):
    # Trials long enough (a few seconds each) that a poll on a loaded machine sees trial 2 running
    # before it ends: with 256 steps it could start and finish between two polls.
    parent = subprocess.Popen(
        [sys.executable, "-m", "gymserve.cli", *tune_argv(tmp_path, "--trials", "3", max_steps=4096)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        os.kill(_running_trial_pid(tmp_path, number=0), signal.SIGKILL)
        _running_trial_pid(tmp_path, number=2)
        parent.send_signal(signal.SIGINT)
        assert parent.wait(timeout=120) == 130
    finally:
        parent.kill()
    assert "gymserve tune: interrupted" in parent.stderr.read()
    study = load_study(tmp_path)
    assert states(study) == ["FAIL", "COMPLETE", "FAIL"]
    failures = [trial.user_attrs.get("failure") for trial in study.trials]
    assert failures == ["trial process killed by SIGKILL", None, "interrupted"]
    with open(tmp_path / "out" / "trials.csv") as file:
        assert [row["state"] for row in csv.DictReader(file)] == ["FAIL", "COMPLETE", "FAIL"]


def _running_trial_pid(directory, number, timeout=180):
    """The pid of trial `number`'s process once it runs, read from the study as another machine would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The study file first, then the study in it: the tuner creates both.
        with contextlib.suppress(KeyError):
            trials = load_study(directory).trials if (directory / "out" / "study.db").exists() else []
            for trial in trials:
                if trial.number == number and trial.state.name == "RUNNING" and "pid" in trial.user_attrs:
                    return trial.user_attrs["pid"]
        time.sleep(0.3)
    raise AssertionError(f"trial {number} did not start within {timeout} s")


@pytest.mark.parametrize(
    ("space", "flags", "message"),
    [
        (
            {"learning_rat": {"type": "float", "low": 1e-4, "high": 1e-3}},
            [],
            "learning_rat: unknown parameter for PPOConfig; its fields are activation, batch_size,",
        ),
        (
            {"learning_rate": {"type": "float", "low": 1e-2, "high": 1e-3, "log": True}},
            [],
            "learning_rate: empty range: low 0.01 > high 0.001",
        ),
        ({"n_epochs": {"type": "categorical", "choices": []}}, [], "n_epochs: empty range: no choices"),
        (
            {"gamma": {"type": "float", "low": 0.9, "high": 1.5}},
            [],
            "gamma: 1.5 is not a valid value (Input should be less than or equal to 1)",
        ),
        ({"max_steps": {"type": "int", "low": 1, "high": 9}}, [], "max_steps: cannot be tuned"),
        (
            LEARNING_RATES,
            ["--storage", "nosuchdb://host/db"],
            "cannot open study storage 'nosuchdb://host/db': ",
        ),
        (
            LEARNING_RATES,
            ["--storage", "sqlite:////nonexistent-folder/study.db"],
            "cannot open study storage 'sqlite:////nonexistent-folder/study.db': (sqlite3.OperationalError) "
            "unable to open database file",
        ),
        (LEARNING_RATES, ["--trials", "0"], "trials must be at least 1, got 0"),
    ],
)
def test_bad_input_is_reported_before_any_trial(tmp_path, capsys, space, flags, message):
    argv = tune_argv(tmp_path, "--trials", "1")
    write_json(tmp_path / "space.json", space)
    assert main([*argv, *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("gymserve tune: error: ") and message in error
    assert not (tmp_path / "out" / "trials").exists()


def test_a_study_folder_under_a_file_is_refused_before_any_trial(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    argv = tune_argv(tmp_path, "--trials", "1")
    argv[argv.index("--out") + 1] = str(tmp_path / "file" / "study")
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert (
        error == f"gymserve tune: error: study folder {tmp_path / 'file' / 'study'} cannot be created: "
        f"{tmp_path / 'file'} is a file, not a folder\n"
    )


def test_tune_without_optuna_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(tune_argv(tmp_path, "--trials", "1")) == 1
    assert (
        capsys.readouterr().err
        == 'gymserve tune needs optuna, which is not installed: pip install "gymserve[tune]"\n'
    )
    assert not (tmp_path / "out").exists()


def test_the_return_objective_averages_the_last_evaluations():
    evaluations = [
        Evaluation(100, 10.0),
        Evaluation(200, 20.0),
        Evaluation(300, 60.0),
        Evaluation(400, 100.0),
    ]
    assert Objective().score(evaluations, max_steps=400) == 60.0
    assert Objective(last_evaluations=1).score(evaluations[:1], max_steps=400) == 10.0
    assert Objective().direction == "maximize"


def test_a_budget_with_fewer_evaluations_than_the_objective_averages_is_named():
    objective = Objective(last_evaluations=3)
    assert objective.shortfall(max_steps=30_000, eval_interval=10_000) is None
    message = objective.shortfall(max_steps=10_000, eval_interval=10_000)
    assert "max_steps 10000 at eval_interval 10000 gives 1 evaluation(s), fewer than the 3" in message
    assert objective.shortfall(max_steps=20_001, eval_interval=10_000) is None, "a last one at the end"
    assert Objective(target_reward=475).shortfall(max_steps=1, eval_interval=10) is None
    assert objective.averaged(1) == 1 and objective.averaged(7) == 3


@pytest.mark.slow
def test_tune_warns_of_a_short_budget_and_says_how_many_evaluations_the_best_value_averaged(
    tmp_path, capsys, caplog
):
    assert main(tune_argv(tmp_path, "--trials", "1")) == 0  # 256 steps, an evaluation every 256
    assert "gives 1 evaluation(s), fewer than the 3 the objective averages" in caplog.text
    out = capsys.readouterr().out
    assert "objective: mean greedy return of the last 3 evaluations (maximised)" in out
    best = next(line for line in out.splitlines() if line.startswith("best: "))
    assert best.endswith("(the mean of 1 evaluation(s) only: its budget made no more)"), best


def test_the_steps_objective_counts_steps_to_the_target_and_ranks_misses_by_shortfall():
    objective = Objective(target_reward=50.0)
    evaluations = [Evaluation(100, 10.0), Evaluation(200, 60.0), Evaluation(300, 40.0)]
    assert objective.score(evaluations, max_steps=1000) == 200.0
    assert objective.score(evaluations[:1], max_steps=1000) == 1800.0  # 1000 * (1 + 40 / 50)
    assert objective.score([Evaluation(100, -5.0)], max_steps=1000) == 2000.0  # shortfall clipped to 1
    assert objective.direction == "minimize"

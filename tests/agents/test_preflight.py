import json

import pytest
from tiny_dqn import TINY_DQN

from gymserve.agents import train
from gymserve.agents.off_policy.dqn import DQNConfig
from gymserve.agents.training.preflight import first_update_step, never_updates
from gymserve.cli import main

CARTPOLE = "gymserve/CartPole-v1"
# TINY_DQN learns in rounds of train_freq 10 steps once learning_starts 50 transitions are stored.
FIRST_UPDATE = 50


def train_argv(directory, max_steps, *extra, **fields):
    config = directory / "config.json"
    config.write_text(json.dumps({**TINY_DQN, **fields}))
    out = directory / f"run-{max_steps}"
    return ["train", "dqn", "--env", CARTPOLE, "--config", str(config), "--max-steps", str(max_steps),
            "--out", str(out), "--quiet", *extra]  # fmt: skip


def test_the_first_update_step_is_the_first_round_end_with_learning_starts_stored():
    config = DQNConfig(**TINY_DQN)
    assert first_update_step("dqn", config) == FIRST_UPDATE
    assert first_update_step("dqn", config.model_copy(update={"learning_starts": 51})) == 60
    assert first_update_step("dqn", config.model_copy(update={"num_envs": 4})) == 80  # rounds of 40 steps
    assert first_update_step("ppo", config) is None, "on-policy: every iteration updates"
    assert never_updates("dqn", config.model_copy(update={"buffer_size": 49}))
    assert not never_updates("dqn", config)


def test_a_budget_below_the_first_update_is_warned_before_training_and_reported_after(tmp_path, capsys):
    assert main(train_argv(tmp_path, FIRST_UPDATE - 10)) == 0
    captured = capsys.readouterr()
    warning = next(line for line in captured.err.splitlines() if "no gradient step" in line)
    for words in ("max_steps 40", "learning_starts 50", f"raise --max-steps to at least {FIRST_UPDATE}"):
        assert words in warning
    assert "no gradient step was taken: the policy is untrained" in captured.out


def test_a_budget_that_reaches_the_first_update_takes_it_without_a_warning(tmp_path, caplog):
    # An iteration runs to its end: max_steps 41 runs rounds to step 50, where the first update is.
    reaching = {**TINY_DQN, "max_steps": FIRST_UPDATE - 9}
    result = train("dqn", CARTPOLE, tmp_path / "run", reaching, progress_bar=False)
    assert result.gradient_steps == TINY_DQN["gradient_steps"], "one round, at the last step"
    assert "no gradient step" not in caplog.text
    short = {**TINY_DQN, "max_steps": FIRST_UPDATE - 10}
    assert train("dqn", CARTPOLE, tmp_path / "short", short, progress_bar=False).gradient_steps == 0
    assert "no gradient step" in caplog.text


def test_a_replay_smaller_than_learning_starts_is_warned(tmp_path, capsys):
    assert main(train_argv(tmp_path, 60, buffer_size=40)) == 0
    captured = capsys.readouterr()
    assert "buffer_size 40 transitions, fewer than learning_starts 50" in captured.err
    assert "no gradient step was taken" in captured.out


def test_an_on_policy_run_updates_within_any_budget(tmp_path):
    budget = {"max_steps": 1, "eval_episodes": 1}
    result = train("ppo", CARTPOLE, tmp_path / "run", budget, progress_bar=False)
    assert result.total_steps == 256, "one whole rollout of the shipped config: 32 steps of 8 envs"
    assert result.gradient_steps > 0


@pytest.mark.parametrize("flag", ["--out", "--export-to"])
def test_an_output_folder_under_a_file_is_refused_before_training(flag, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    exports = str(tmp_path / "exports" / "cartpole")
    argv = train_argv(tmp_path, 100, "--export-every", "50", "--export-to", exports)
    argv[argv.index(flag) + 1] = str(tmp_path / "file" / "inside")
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith(f"{tmp_path / 'file'} is a file, not a folder"), error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "run-100").exists() and not (tmp_path / "exports").exists()


def test_train_says_where_exports_went_and_that_a_finished_run_trains_nothing(tmp_path, capsys):
    repository = tmp_path / "exports"
    argv = train_argv(tmp_path, 100, "--export-every", "50", "--export-to", str(repository / "cartpole"))
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert f"exporting the policy at step 50 to {repository / 'cartpole' / '50'}" in err
    assert f"exports: {repository / 'cartpole'} versions 50, 100; " in out
    assert f"gymserve serve --repository {repository} serves them" in out
    assert sorted(path.name for path in (repository / "cartpole").iterdir()) == ["100", "50", "config.pbtxt"]

    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "had already stopped at step 100 (max_steps): nothing was trained or exported" in captured.err
    assert "give a new --out" in captured.err

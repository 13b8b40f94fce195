"""Config flags: generated from the config models, shipped as JSON, over --config, with xagents' names."""

import json

import pytest

from gymserve.agents.training.registry import ALGORITHMS, algorithm_class
from gymserve.cli import main
from gymserve.cli.config_flags import ALIASES, FIELDS_FILE, describe_models, fields_text, flag


def test_the_shipped_flags_file_matches_the_config_models():
    assert FIELDS_FILE.read_text() == fields_text(describe_models()), (
        "a config model changed: run python -m gymserve.cli.config_flags"
    )


def _help_lines(capsys, monkeypatch, *argv):
    """`gymserve *argv --help`: each flag's line (unwrapped), by its first option."""
    monkeypatch.setenv("COLUMNS", "10000")
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    flags, current = {}, None
    for line in capsys.readouterr().out.splitlines():
        line = line.strip()
        if line.startswith("--"):
            current = line.split()[0].rstrip(",")
            flags[current] = line
        elif line and current:  # its help, on a line of its own after a long flag
            flags[current] += " " + line
        else:
            current = None
    return flags


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_field_of_every_algorithm_is_a_flag_of_train_with_that_algorithms_description(
    algorithm, capsys, monkeypatch
):
    lines = _help_lines(capsys, monkeypatch, "train", algorithm)
    for name, field in algorithm_class(algorithm).config_class.model_fields.items():
        assert flag(name) in lines
        assert lines[flag(name)].endswith(f" {field.description}"), flag(name)


def test_help_before_the_algorithm_gives_each_description_with_its_algorithms(capsys, monkeypatch):
    batch_size = _help_lines(capsys, monkeypatch, "train")["--batch-size"]
    assert "Transitions per gradient step. [dqn, sac, td3, ddpg]" in batch_size
    assert "Rows per minibatch; must divide n_steps * num_envs. [ppo]" in batch_size
    assert "Rows per critic minibatch; must divide n_steps * num_envs. [trpo]" in batch_size


def test_a_field_the_algorithm_lacks_says_which_algorithms_have_it(capsys, monkeypatch):
    assert _help_lines(capsys, monkeypatch, "train", "ppo")["--tau"].endswith(
        "1 copies the online network into the target; less averages. [dqn]; "
        "Polyak factor of target updates; 1 copies. [sac, td3, ddpg]"
    )


def _config(capsys, *argv):
    assert main(["config", *argv]) in (0, None)
    lines = capsys.readouterr().out.splitlines()
    return {line.split(" = ")[0]: line.split(" = ")[1] for line in lines if " = " in line}


def test_flags_win_over_the_config_file_and_name_themselves_as_the_source(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"num_envs": 2, "learning_rate": 0.1, "gamma": 0.9}))
    argv = ["ppo", "--env", "gymserve/CartPole-v1", "--config", str(config), "--n-envs", "8",
            "--learning-rate", "0.002", "--hidden-sizes", "32,16", "--target-reward", "null"]  # fmt: skip
    fields = _config(capsys, *argv)
    assert fields["num_envs"] == "8  (--n-envs)"
    assert fields["learning_rate"] == "0.002  (--learning-rate)"
    assert fields["hidden_sizes"] == "[32, 16]  (--hidden-sizes)"
    assert fields["target_reward"] == "null  (--target-reward)"
    assert fields["gamma"] == f"0.9  (config file {config})"


@pytest.mark.parametrize(("alias", "value"), [("--lr", "0.005"), ("--n-envs", "3"), ("--lam", "0.9")])
def test_xagents_names_set_their_field(alias, value, capsys):
    fields = _config(capsys, "a2c", alias, value)
    assert fields[ALIASES[alias]] == f"{value}  ({alias})"


def test_config_works_without_env_and_shows_the_algorithms_defaults(capsys):
    fields = _config(capsys, "ppo")
    assert fields["n_steps"] == "256  (default)"
    assert fields["target_reward"] == "null  (default)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ddpg", "--exploration-noise", "ou"], "argument --exploration-noise: invalid choice value: 'ou'"),
        (["ppo", "--n-envs", "two"], "argument --num-envs/--n-envs: invalid int value: 'two'"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["config", *argv])
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dqn", "--n-steps", "3"], "--n-steps does not apply to dqn (only to ppo, a2c, a3c, trpo, acer)"),
        (["ppo", "--n-envs", "0"], "num_envs: Input should be greater than 0 (from --n-envs)"),
    ],
)
def test_a_flag_the_config_refuses_is_one_line_naming_the_flag(argv, message, capsys):
    assert main(["config", *argv]) == 2
    assert message in capsys.readouterr().err

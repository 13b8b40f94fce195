"""Resolving a training config: layers, the source of every field, and errors that name it."""

import json

import pytest

import gymserve.agents.training.config as config_module
from gymserve.agents.on_policy.ppo import PPOConfig
from gymserve.agents.training.config import ConfigError, resolve_config

CARTPOLE = "gymserve/CartPole-v1"


def test_each_field_records_the_layer_that_set_it(tmp_path):
    config_file = tmp_path / "mine.json"
    config_file.write_text(json.dumps({"learning_rate": 0.002, "n_epochs": 4}))
    resolved = resolve_config(
        PPOConfig, "ppo", CARTPOLE, config_file, {"seed": 3, "n_epochs": 2}, {"seed": "--seed"}
    )
    config = resolved.config
    assert (config.seed, config.learning_rate, config.n_epochs, config.gamma, config.vf_coef) == (
        3,
        0.002,
        2,
        0.98,
        0.5,
    )
    assert resolved.source("seed") == "--seed"
    assert resolved.source("learning_rate") == f"config file {config_file}"
    assert resolved.source("n_epochs") == "override"
    assert resolved.source("gamma") == "shipped ppo_CartPole-v1.json"
    assert resolved.source("vf_coef") == "default"


def test_an_invalid_flag_is_blamed_on_the_flag():
    with pytest.raises(ConfigError) as raised:
        resolve_config(
            PPOConfig,
            "ppo",
            CARTPOLE,
            overrides={"max_steps": -5},
            override_sources={"max_steps": "--max-steps"},
        )
    assert (
        str(raised.value) == "invalid PPOConfig: max_steps: Input should be greater than 0 (from --max-steps)"
    )


def test_an_invalid_file_value_is_blamed_on_the_file(tmp_path):
    config_file = tmp_path / "mine.json"
    config_file.write_text(json.dumps({"gamma": 2.0, "learning_ratte": 0.1}))
    with pytest.raises(ConfigError) as raised:
        resolve_config(PPOConfig, "ppo", CARTPOLE, config_file)
    assert str(raised.value) == (
        "invalid PPOConfig: "
        f"gamma: Input should be less than or equal to 1 (from config file {config_file}); "
        f"learning_ratte: Extra inputs are not permitted (from config file {config_file})"
    )


def test_an_invalid_shipped_value_is_blamed_on_the_shipped_file(tmp_path, monkeypatch):
    (tmp_path / "ppo_CartPole-v1.json").write_text(json.dumps({"n_epochs": 0}))
    monkeypatch.setattr(config_module, "CONFIG_DIRECTORY", tmp_path)
    with pytest.raises(
        ConfigError, match=r"n_epochs: Input should be greater than 0 \(from shipped ppo_CartPole-v1\.json\)"
    ):
        resolve_config(PPOConfig, "ppo", CARTPOLE)


def test_a_rule_across_fields_names_every_layer_involved(tmp_path):
    config_file = tmp_path / "mine.json"
    config_file.write_text(json.dumps({"n_steps": 30}))
    with pytest.raises(ConfigError) as raised:
        resolve_config(PPOConfig, "ppo", CARTPOLE, config_file)
    message = str(raised.value)
    assert "batch_size 256 does not divide the rollout of n_steps * num_envs = 240 rows" in message
    assert message.endswith(f"(values from shipped ppo_CartPole-v1.json, config file {config_file})")

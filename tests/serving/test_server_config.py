"""Server settings: flags over GYMSERVE_* variables over a JSON/YAML file over defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gymserve.serving.server import policy_server as server_module
from gymserve.serving.server.config import (
    BatchingSettings,
    LatestVersions,
    ServerConfig,
    ServerConfigError,
    SpecificVersions,
    load_server_config,
)


def write_yaml(path: Path) -> Path:
    path.write_text(
        "address: 127.0.0.1:9000\nworkers: 4\nmax_request_observations: 64\n"
        "policies:\n  cartpole: /exports/cp\n"
    )
    return path


@pytest.fixture(autouse=True)
def no_gymserve_variables(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Each test sets the GYMSERVE_* variables it means, and only those."""
    for name in [name for name in os.environ if name.startswith("GYMSERVE_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def set_environment(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


def test_defaults_bind_loopback_with_onnx():
    config = load_server_config()
    assert (config.address, config.backend, config.workers, config.auth_token) == (
        "127.0.0.1:8500",
        "onnx",
        16,
        None,
    )
    assert config.max_streams == 12  # a quarter of the threads stays free for unary calls
    assert (config.poll_interval, config.stream_idle_timeout, config.metrics_address) == (1.0, 60.0, None)
    assert config.batching is None  # dynamic batching is off unless batching_max_size is set


def test_batching_settings_come_from_flags_and_the_environment(monkeypatch: pytest.MonkeyPatch):
    set_environment(monkeypatch, {"GYMSERVE_BATCHING_TIMEOUT_MICROS": "250"})
    config = load_server_config(flags={"batching_max_size": 32, "batching_threads": 2})
    assert config.batching == BatchingSettings(
        batching_max_size=32, batching_timeout_micros=250, batching_max_enqueued=64, batching_threads=2
    )


def test_renamed_settings_keep_their_old_names_with_a_warning(tmp_path: Path, monkeypatch):
    config_file = tmp_path / "serve.yaml"
    config_file.write_text("max_batch_size: 64\nmax_enqueued_batches: 8\n")
    set_environment(monkeypatch, {"GYMSERVE_BATCH_TIMEOUT_MICROS": "250", "GYMSERVE_NUM_BATCH_THREADS": "3"})
    monkeypatch.setenv("GYMSERVE_BATCHING_THREADS", "4")  # the new name wins over the old one
    with pytest.warns(FutureWarning) as warned:
        config = load_server_config(config_file, {"batch_max_size": 32})
    assert config.batching == BatchingSettings(
        batching_max_size=32, batching_timeout_micros=250, batching_max_enqueued=8, batching_threads=4
    )
    assert config.max_request_observations == 64
    assert {str(warning.message) for warning in warned} == {
        "setting batch_max_size (argument) is deprecated; it is now called batching_max_size",
        "GYMSERVE_BATCH_TIMEOUT_MICROS is deprecated; set GYMSERVE_BATCHING_TIMEOUT_MICROS instead",
        "GYMSERVE_NUM_BATCH_THREADS is deprecated; set GYMSERVE_BATCHING_THREADS instead",
        *(
            f"setting {old} (in {config_file}) is deprecated; it is now called {new}"
            for old, new in [
                ("max_batch_size", "max_request_observations"),
                ("max_enqueued_batches", "batching_max_enqueued"),
            ]
        ),
    }
    with pytest.raises(ServerConfigError, match="batch_max_size was renamed batching_max_size; give only"):
        load_server_config(flags={"batch_max_size": 32, "batching_max_size": 16})


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config_file = write_yaml(tmp_path / "serve.yaml")
    environ = {"GYMSERVE_WORKERS": "8", "GYMSERVE_ADDRESS": "127.0.0.1:9100", "GYMSERVE_AUTH_TOKEN": "t0ken"}
    set_environment(monkeypatch, environ)
    config = load_server_config(config_file, {"address": "127.0.0.1:9200", "workers": None})
    assert config.address == "127.0.0.1:9200"  # flag
    assert config.workers == 8  # environment (the unset flag does not count)
    assert config.max_request_observations == 64  # file
    assert config.policies == {"cartpole": Path("/exports/cp")}  # file
    assert config.auth_token.get_secret_value() == "t0ken" and "t0ken" not in repr(config)


def test_json_files_and_json_policies_in_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config_file = tmp_path / "serve.json"
    config_file.write_text(json.dumps({"backend": "tensorflow", "grace_period": 2.5}))
    environ = {"GYMSERVE_POLICIES": '{"a": "/exports/a", "b": "/exports/b"}', "GYMSERVE_UNRELATED": "ignored"}
    set_environment(monkeypatch, environ)
    config = load_server_config(config_file)
    assert (config.backend, config.grace_period) == ("tensorflow", 2.5)
    assert config.policies == {"a": Path("/exports/a"), "b": Path("/exports/b")}


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"address": "localhost"}, {}, "address: Value error, address 'localhost' is not HOST:PORT"),
        ({"tls_certificate": "server.crt"}, {}, "TLS needs both tls_certificate and tls_private_key"),
        ({"workers": 1}, {}, "workers: Input should be greater than or equal to 2"),
        ({"backend": "torch"}, {}, "backend: Input should be 'onnx' or 'tensorflow'"),
        ({"max_request_observations": "x"}, {}, "max_request_observations: Input should be a valid integer"),
        ({"batching_max_size": -1}, {}, "batching_max_size: Input should be greater than or equal to 0"),
        ({"batching_threads": 0}, {}, "batching_threads: Input should be greater than or equal to 1"),
        ({}, {"GYMSERVE_POLICIES": "cartpole=/exports"}, 'parsing value for field "policies"'),
        ({}, {"GYMSERVE_WORKERS": "lots"}, "workers: Input should be a valid integer"),
    ],
)
def test_invalid_settings_name_the_field_and_the_problem(flags, environ, message, monkeypatch):
    set_environment(monkeypatch, environ)
    with pytest.raises(ServerConfigError, match=r"invalid server configuration") as raised:
        load_server_config(flags=flags)
    assert message in str(raised.value)


def test_unusable_config_files_are_reported(tmp_path: Path):
    with pytest.raises(ServerConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_server_config(tmp_path / "missing.yaml")
    (tmp_path / "serve.toml").write_text("workers = 3\n")
    with pytest.raises(ServerConfigError, match=r"must end in \.json, \.yaml or \.yml"):
        load_server_config(tmp_path / "serve.toml")
    (tmp_path / "list.yaml").write_text("- workers\n")
    with pytest.raises(ServerConfigError, match=r"list\.yaml is not a YAML mapping of settings"):
        load_server_config(tmp_path / "list.yaml")
    (tmp_path / "typo.json").write_text('{"wokers": 3}')
    with pytest.raises(ServerConfigError, match="wokers: Extra inputs are not permitted"):
        load_server_config(tmp_path / "typo.json")


def test_without_policies_the_pretrained_repository_is_served(monkeypatch, continuous_export, tmp_path):
    monkeypatch.setattr(server_module, "pretrained_repository", lambda: None)
    with pytest.raises(
        ServerConfigError, match="no policies to serve: pass --policy NAME=PATH or --repository DIR"
    ):
        server_module.load_configured_policies(ServerConfig())
    monkeypatch.setattr(server_module, "pretrained_repository", lambda: continuous_export.parent)
    policies = server_module.load_configured_policies(ServerConfig())
    assert policies.names() == [continuous_export.name]
    assert np.shape(policies.resolve(continuous_export.name).policy.action(np.zeros(4)).action) == (2,)


def test_version_policies_and_labels_are_read_from_the_file(tmp_path: Path):
    config_file = tmp_path / "serve.yaml"
    config_file.write_text(
        "policy_settings:\n"
        "  cartpole: {versions: {latest: 2}, labels: {stable: 3, canary: 5}}\n"
        "  minitaur: {versions: all}\n"
        "  pendulum: {versions: {specific: [4, 7]}}\n"
    )
    settings = load_server_config(config_file).policy_settings
    assert settings["cartpole"].versions == LatestVersions(latest=2)
    assert settings["cartpole"].labels == {"stable": 3, "canary": 5}
    assert settings["minitaur"].versions == "all"
    assert settings["pendulum"].versions == SpecificVersions(specific=[4, 7])
    config_file.write_text("policy_settings:\n  cartpole: {versions: {latest: 0}}\n")
    with pytest.raises(ServerConfigError, match="latest: Input should be greater than or equal to 1"):
        load_server_config(config_file)


def test_a_name_given_twice_is_refused(tmp_path: Path):
    (tmp_path / "repository" / "cartpole" / "1").mkdir(parents=True)
    config = ServerConfig(policies={"cartpole": tmp_path / "other"}, repository=tmp_path / "repository")
    with pytest.raises(ServerConfigError, match=r"policy 'cartpole' is given as .*other and also found in"):
        server_module.load_configured_policies(config)

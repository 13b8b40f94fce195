"""Exports while training: numbered complete versions that act like the run at their step, keep-K
pruning of the run's own versions only, failures that training survives, and a server that
serves the newest version and picks up the next one."""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from tiny_dqn import TINY_DQN

import gymserve.policies.export.onnx_export
from gymserve.agents import load_trained_policy, train
from gymserve.agents.off_policy.dqn import DQNConfig
from gymserve.agents.training.runs import RunInfo, open_run_dir
from gymserve.cli import main
from gymserve.policies import load
from gymserve.policies.export.triton_config import TRITON_CONFIG_FILE
from gymserve.serving import PolicyClient
from gymserve.serving.server.config import ServerConfig
from gymserve.serving.server.policy_server import PolicyServer

CARTPOLE = "gymserve/CartPole-v1"
OBSERVATIONS = np.random.default_rng(0).normal(0.0, 1.0, (64, 4)).astype(np.float32)
EXPORT_LOGGER = "gymserve.agents.training.periodic_exports"


def entries(directory: Path) -> list[str]:
    """Everything in `directory` but the Triton config, hidden entries included, versions in numeric order."""
    names = (entry.name for entry in directory.iterdir() if entry.name != TRITON_CONFIG_FILE)
    return sorted(names, key=lambda name: (len(name), name))


def greedy_and_logits(policy) -> tuple[np.ndarray, np.ndarray]:
    return policy.action(OBSERVATIONS).action, policy.distribution(OBSERVATIONS).parameters()["logits"]


@dataclass
class ExportingRun:
    versions: Path  # REPOSITORY/cartpole
    checkpoints: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # step -> acting
    evaluations: dict[int, float] = field(default_factory=dict)  # step -> greedy AverageReturn
    served: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (version, actions) answered


@pytest.fixture(scope="module")
def exporting_run(tmp_path_factory: pytest.TempPathFactory) -> ExportingRun:
    """A DQN run in two sessions exporting every 200 steps: iterations of 30 steps cross 200 at 210
    and 400 at 420. A server polls the repository from the end of the first session on."""
    root = tmp_path_factory.mktemp("exporting_run")
    repository, run_dir = root / "repository", root / "run"
    fields = {**TINY_DQN, "train_freq": 30, "export_every": 200, "export_to": f"{repository}/cartpole"}
    run = ExportingRun(repository / "cartpole")

    def train_until(max_steps: int) -> None:
        result = train("dqn", CARTPOLE, run_dir, {**fields, "max_steps": max_steps}, progress_bar=False)
        run.checkpoints[result.total_steps] = greedy_and_logits(load_trained_policy(run_dir, "latest").policy)
        run.evaluations.update((row["step"], row["eval_return"]) for row in result.history.evaluations())

    def ask(client: PolicyClient) -> int:
        answer = client.act_with_details(OBSERVATIONS, "cartpole")
        if not run.served or run.served[-1][0] != answer.policy_version:
            run.served.append((answer.policy_version, answer.actions))
        return answer.policy_version

    train_until(200)
    config = ServerConfig(address="127.0.0.1:0", repository=repository, poll_interval=0.2)
    server = PolicyServer(config).start()
    try:
        with PolicyClient(server.address, timeout=30) as client:
            ask(client)
            train_until(400)
            deadline = time.monotonic() + 30
            while ask(client) != 420 and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        server.stop(grace=0)
    return run


def test_exports_are_numbered_by_the_step_that_crossed_each_multiple_and_complete(exporting_run):
    assert sorted(exporting_run.checkpoints) == [210, 420]
    assert entries(exporting_run.versions) == ["210", "420"], "numbered on, after the resume, no leftovers"
    assert 'name: "cartpole"' in (exporting_run.versions / TRITON_CONFIG_FILE).read_text()
    for step in (210, 420):
        version = exporting_run.versions / str(step)
        assert sorted(path.name for path in version.iterdir()) == [
            "policy.json",
            "policy.onnx",
            "saved_model",
        ]
        for backend in ("onnx", "tensorflow"):
            metadata = load(version, backend=backend).metadata  # checks every file against its hash
            assert (metadata.env_id, metadata.algorithm, metadata.train_step) == (CARTPOLE, "dqn", step)
            assert metadata.formats == ("savedmodel", "onnx")
            assert metadata.evaluation.average_return == exporting_run.evaluations[step], "evaluated then"
            assert metadata.evaluation.during_training


def test_each_export_acts_as_the_run_did_at_its_step(exporting_run):
    earlier, later = exporting_run.checkpoints[210][1], exporting_run.checkpoints[420][1]
    assert np.abs(earlier - later).max() > 1e-3, "training moved the network between the exports"
    for step, (actions, logits) in exporting_run.checkpoints.items():
        for backend in ("onnx", "tensorflow"):
            exported = load(exporting_run.versions / str(step), backend=backend)
            exported_actions, exported_logits = greedy_and_logits(exported)
            np.testing.assert_array_equal(exported_actions, actions)
            np.testing.assert_allclose(exported_logits, logits, rtol=1e-5, atol=1e-5)


def test_a_server_on_the_repository_serves_the_newest_export_and_picks_up_the_next(exporting_run):
    assert [version for version, _ in exporting_run.served] == [210, 420]
    for version, actions in exporting_run.served:
        np.testing.assert_array_equal(actions, exporting_run.checkpoints[version][0])


def dqn_flags(directory: Path, run_dir: Path, **fields: object) -> list[str]:
    config = directory / "config.json"
    config.write_text(json.dumps({**TINY_DQN, **fields}))
    return ["train", "dqn", "--env", CARTPOLE, "--config", str(config), "--out", str(run_dir), "--quiet"]


def test_a_run_keeps_its_newest_exports_and_never_touches_other_versions(tmp_path, caplog):
    versions = tmp_path / "repository" / "cartpole"
    others = {50: b"another run's export", 200: b"another run's export at a step this run crosses"}
    for number, content in others.items():
        (versions / str(number)).mkdir(parents=True)
        (versions / str(number) / "policy.json").write_bytes(content)
    argv = [
        *dqn_flags(tmp_path, tmp_path / "run"),
        *("--export-every", "100", "--export-to", f"{tmp_path}/repository/cartpole", "--export-keep", "2"),
    ]

    with caplog.at_level(logging.WARNING, logger=EXPORT_LOGGER):
        assert main([*argv, "--max-steps", "300"]) == 0
    assert entries(versions) == ["50", "100", "200", "300"], "others' versions do not count towards 2"
    assert [record.getMessage() for record in caplog.records] == [
        f"not exporting the policy at step 200: {versions / '200'} already exists and is not overwritten"
    ]

    assert main([*argv, "--max-steps", "500"]) == 0  # the resumed run remembers which versions are its own
    assert entries(versions) == ["50", "200", "400", "500"]
    for number, content in others.items():
        assert [path.name for path in (versions / str(number)).iterdir()] == ["policy.json"]
        assert (versions / str(number) / "policy.json").read_bytes() == content


def test_a_failed_export_is_a_warning_and_training_goes_on(tmp_path, monkeypatch, caplog):
    write_onnx = gymserve.policies.export.onnx_export.write_onnx
    calls = []

    def fail_the_first_time(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 1:  # after the SavedModel is written into the staging folder
            raise OSError(28, "No space left on device")
        write_onnx(*args, **kwargs)

    monkeypatch.setattr(gymserve.policies.export.onnx_export, "write_onnx", fail_the_first_time)
    versions = tmp_path / "repository" / "cartpole"
    fields = {"max_steps": 200, "export_every": 100, "export_to": str(versions)}
    with caplog.at_level(logging.WARNING, logger=EXPORT_LOGGER):
        result = train("dqn", CARTPOLE, tmp_path / "run", {**TINY_DQN, **fields}, progress_bar=False)
    assert (result.stop_reason, result.total_steps) == ("max_steps", 200)
    assert [record.getMessage() for record in caplog.records] == [
        f"exporting the policy at step 100 to {versions / '100'} failed, training goes on: "
        "No space left on device"
    ]
    assert entries(versions) == ["200"], "nothing is left of the failed export"
    assert load(versions / "200").metadata.train_step == 200


@pytest.mark.parametrize(
    ("algorithm", "fields", "steps"),
    [
        (
            "ppo",
            {"num_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1, "normalize_observations": True},
            [32, 64],
        ),
        ("a3c", {"num_workers": 2, "num_envs": 2, "n_steps": 10, "rollouts_per_iteration": 2}, [40, 80]),
    ],
)
def test_on_policy_and_asynchronous_algorithms_export_too(tmp_path, algorithm, fields, steps):
    versions = tmp_path / "repository" / "policy"
    common = {"hidden_sizes": [8], "max_steps": steps[-1], "eval_interval": steps[-1], "eval_episodes": 1}
    exporting = {"export_every": steps[0], "export_to": str(versions), "target_reward": None}
    train(algorithm, CARTPOLE, tmp_path / "run", {**common, **fields, **exporting}, progress_bar=False)
    assert entries(versions) == [str(step) for step in steps]
    actions, logits = greedy_and_logits(load_trained_policy(tmp_path / "run", "latest").policy)
    exported_actions, exported_logits = greedy_and_logits(load(versions / str(steps[-1])))
    np.testing.assert_array_equal(exported_actions, actions)
    np.testing.assert_allclose(exported_logits, logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        (
            ["--export-every", "100", "--export-to", "cartpole"],
            "export_to: Value error, 'cartpole' is not REPOSITORY/NAME, e.g. exports/cartpole "
            "(from --export-to)",
        ),
        (
            ["--export-every", "100", "--export-to", "exports/.cartpole"],
            "export_to: Value error, '.cartpole' in 'exports/.cartpole' is not a valid policy name: "
            "use letters, digits, '.', '_' and '-', starting with a letter or digit (from --export-to)",
        ),
        (
            ["--export-every", "100", "--export-to", "exports/7"],
            "export_to: Value error, '7' in 'exports/7' is not a valid policy name: "
            "a number reads as a version (from --export-to)",
        ),
        (
            ["--export-every", "0", "--export-to", "exports/cartpole"],
            "export_every: Input should be greater than 0 (from --export-every)",
        ),
        (
            ["--export-every", "100", "--export-to", "exports/cartpole", "--export-keep", "0"],
            "export_keep: Input should be greater than 0 (from --export-keep)",
        ),
        (
            ["--export-every", "100"],
            "config: Value error, export_every and export_to go together: give both or neither",
        ),
        (
            ["--export-to", "exports/cartpole", "--export-keep", "3"],
            "config: Value error, export_every and export_to go together: give both or neither",
        ),
    ],
)
def test_bad_export_flags_are_refused_with_the_problem_before_anything_is_written(
    tmp_path, capsys, flags, problem
):
    run_dir = tmp_path / "run"
    assert main(["train", "dqn", "--env", CARTPOLE, "--out", str(run_dir), "--quiet", *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"gymserve train: error: invalid DQNConfig: {problem}")
    assert not run_dir.exists()


def test_gymserve_config_shows_the_export_settings_and_where_they_come_from(capsys):
    flags = ["--export-every", "1000", "--export-to", "exports/cartpole"]
    assert main(["config", "dqn", "--env", CARTPOLE, *flags]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "export_every = 1000  (--export-every)" in lines
    assert 'export_to = "exports/cartpole"  (--export-to)' in lines
    assert "export_keep = null  (default)" in lines


def test_a_run_resumes_with_other_export_settings(tmp_path):
    config = DQNConfig(**TINY_DQN)
    open_run_dir(tmp_path, RunInfo("dqn", CARTPOLE, config))
    exporting = config.model_copy(
        update={"export_every": 500, "export_to": "exports/cartpole", "export_keep": 3}
    )
    assert open_run_dir(tmp_path, RunInfo("dqn", CARTPOLE, exporting)) is True, "the same run, resumed"


def test_a_failed_first_export_leaves_no_trace_in_the_repository_and_training_goes_on(
    tmp_path, monkeypatch, caplog
):
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[4]))

    monkeypatch.setattr(gymserve.policies.export.onnx_export, "write_onnx", disk_full)
    repository = tmp_path / "repository"
    fields = {"max_steps": 100, "export_every": 100, "export_to": f"{repository}/cartpole"}
    with caplog.at_level(logging.WARNING, logger=EXPORT_LOGGER):
        result = train("dqn", CARTPOLE, tmp_path / "run", {**TINY_DQN, **fields}, progress_bar=False)
    assert (result.stop_reason, result.total_steps) == ("max_steps", 100)
    [warning] = [record.getMessage() for record in caplog.records]
    assert warning.startswith(
        f"exporting the policy at step 100 to {repository / 'cartpole' / '100'} failed, training goes on: "
        f"No space left on device ({repository / 'cartpole'}/.100."
    ), warning
    assert not repository.exists(), "no empty NAME folder for a server to list as a failed policy"


def test_an_export_killed_midway_is_removed_by_the_next_one_and_never_served(tmp_path):
    versions = tmp_path / "repository" / "cartpole"
    abandoned = versions / ".100.0123abcd.tmp"
    (abandoned / "saved_model").mkdir(parents=True)
    old = time.time() - 60
    os.utime(abandoned, (old, old))
    config = ServerConfig(address="127.0.0.1:0", repository=versions.parent, poll_interval=0)
    server = PolicyServer(config).start()
    try:
        assert server.policies.names() == [], "a folder holding only staging is no policy, not a failed one"
    finally:
        server.stop(grace=0)
    fields = {"max_steps": 200, "export_every": 200, "export_to": str(versions)}
    train("dqn", CARTPOLE, tmp_path / "run", {**TINY_DQN, **fields}, progress_bar=False)
    assert entries(versions) == ["200"]

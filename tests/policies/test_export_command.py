"""`gymserve export`: a trained run directory to a loadable export."""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, mlp, observations_for

from gymserve.cli import main
from gymserve.policies import load


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gymserve.agents import train

    run_dir = tmp_path_factory.mktemp("runs") / "dqn"
    config = {"max_steps": 300, "eval_interval": 150, "eval_episodes": 2}
    train("dqn", "gymserve/CartPole-v1", run_dir, config=config, progress_bar=False)
    return run_dir


@pytest.mark.slow  # trains a few hundred DQN steps (about 8 s)
def test_export_command_writes_the_runs_policy(dqn_run, tmp_path, capsys):
    from gymserve.agents import load_trained_policy

    trained = load_trained_policy(dqn_run, checkpoint="latest")
    arguments = ["export", str(dqn_run), "--out", str(tmp_path / "export"), "--checkpoint", "latest"]
    assert main(arguments) == 0
    assert f"exported gymserve/CartPole-v1 (dqn, step {trained.train_step})" in capsys.readouterr().out
    observations = observations_for(CARTPOLE_OBSERVATIONS, 10_000, seed=31)
    expected = trained.policy.action(observations).action
    assert set(expected.tolist()) == {0, 1}, "both actions occur, so the comparison can tell them apart"
    for backend in ("onnx", "tensorflow"):
        exported = load(tmp_path / "export", backend)
        assert (exported.metadata.algorithm, exported.metadata.train_step) == ("dqn", trained.train_step)
        evaluation = exported.metadata.evaluation
        assert (evaluation.average_return, evaluation.during_training) == (trained.evaluation_return, True)
        assert (evaluation.episodes, evaluation.seed) == (trained.config.eval_episodes, 1_000_000)
        np.testing.assert_array_equal(exported.action(observations).action, expected)


@pytest.mark.slow  # shares the trained run above
def test_export_command_reports_mistakes(dqn_run, tmp_path, capsys):
    out = str(tmp_path / "export")
    assert main(["export", str(dqn_run), "--out", out, "--format", "onnx"]) == 0
    assert json.loads((tmp_path / "export" / "policy.json").read_text())["formats"] == ["onnx"]
    capsys.readouterr()
    assert main(["export", str(dqn_run), "--out", out]) == 2
    assert (
        "already exists; replace a previous export with overwrite=True (--overwrite)"
        in capsys.readouterr().err
    )
    assert main(["export", str(dqn_run), "--out", out, "--format", "onnx,torchscript", "--overwrite"]) == 2
    assert "expected one or more distinct of savedmodel, onnx, tflite" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "no_run"), "--out", out]) == 2
    assert f"{tmp_path / 'no_run'}: no such file or directory (RUN_DIR)" in capsys.readouterr().err


def test_a_full_disk_fails_the_export_command_with_one_line_and_status_1(tmp_path, monkeypatch, capsys):
    import gymserve.agents
    import gymserve.policies.export.onnx_export
    from gymserve.policies import ActorPolicy

    policy = ActorPolicy(mlp(4, 2, seed=1, hidden=8), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    trained = SimpleNamespace(
        policy=policy, env_id="gymserve/CartPole-v1", algorithm="dqn", train_step=10, evaluation=None
    )
    monkeypatch.setattr(gymserve.agents, "load_trained_policy", lambda run_dir, checkpoint: trained)

    def disk_full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(args[4]))

    monkeypatch.setattr(gymserve.policies.export.onnx_export, "write_onnx", disk_full)
    out = tmp_path / "exports" / "cartpole"
    assert main(["export", str(tmp_path), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert re.fullmatch(
        rf"gymserve export: error: cannot export to {re.escape(str(out))}: No space left on device "
        rf"\({re.escape(str(out.parent))}/\.cartpole\.[0-9a-f]{{8}}\.tmp/policy\.onnx\)",
        line,
    ), captured.err
    assert "exported" not in captured.out and not (tmp_path / "exports").exists()


@pytest.mark.slow  # shares the trained run above
def test_export_command_into_a_repository_writes_and_names_the_triton_config(dqn_run, tmp_path, capsys):
    out = tmp_path / "repository" / "cartpole" / "1"
    assert main(["export", str(dqn_run), "--out", str(out), "--format", "onnx"]) == 0
    config = tmp_path / "repository" / "cartpole" / "config.pbtxt"
    assert f"Triton model config: {config}\n" in capsys.readouterr().out
    assert 'default_model_filename: "policy.onnx"' in config.read_text()

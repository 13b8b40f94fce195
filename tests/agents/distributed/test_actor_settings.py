"""Runs that cannot train with actors are refused by name before Ray starts or a run dir is written."""

from __future__ import annotations

import pytest

from gymserve.agents import train
from gymserve.agents.distributed import DistributedConfig, UnsupportedDistributedTrainingError

pytest.importorskip("ray")


@pytest.mark.parametrize(
    ("algorithm", "overrides", "actors", "message"),
    [
        (
            "a3c",
            {},
            2,
            r"a3c cannot train with actors; "
            r"choose one of dqn, ppo \(without lstm_units\), a2c, sac, td3, ddpg, trpo, "
            r"or train without --actors$",
        ),
        ("ppo", {"lstm_units": 8, "bptt_length": 8}, 2, "ppo with lstm_units cannot train with actors"),
        (
            "ppo",
            {"num_envs": 2, "batch_size": 64},
            3,
            "3 actors need at least as many envs, but num_envs is 2",
        ),
        ("dqn", {"num_envs": 3}, 2, "num_envs 3 does not split evenly among 2 actors"),
    ],
)
def test_unsupported_runs_are_refused_and_leave_no_run_dir(algorithm, overrides, actors, message, tmp_path):
    with pytest.raises(UnsupportedDistributedTrainingError, match=f"^{message}"):
        train(
            algorithm,
            "gymserve/CartPole-v1",
            tmp_path / "run",
            overrides,
            progress_bar=False,
            distributed=DistributedConfig(actors=actors),
        )
    assert not (tmp_path / "run").exists()


def test_actor_settings_are_validated_with_the_field_named():
    with pytest.raises(ValueError, match="actors\n  Input should be greater than 0"):
        DistributedConfig(actors=0)
    with pytest.raises(ValueError, match="weight_sync_interval\n  Input should be greater than 0"):
        DistributedConfig(actors=1, weight_sync_interval=0)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ray-address", "auto"], "--ray-address needs --actors N"),
        (["--actors", "0"], "invalid actor settings: actors: Input should be greater than 0"),
    ],
)
def test_the_cli_refuses_bad_actor_flags_before_resolving_anything(flags, message, tmp_path, capsys):
    from gymserve.cli import main

    out = tmp_path / "run"
    assert main(["train", "ppo", "--env", "gymserve/CartPole-v1", "--out", str(out), *flags]) == 2
    assert capsys.readouterr().err == f"gymserve train: error: {message}\n"
    assert not out.exists()

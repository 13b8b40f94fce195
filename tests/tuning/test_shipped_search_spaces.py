"""Every algorithm ships a search space, and every corner of it is a config `train` accepts."""

import json

import pytest

from gymserve.agents.training.config import CONFIG_DIRECTORY, resolve_config
from gymserve.agents.training.registry import ALGORITHMS, algorithm_class
from gymserve.cli import main
from gymserve.tuning.search_space import Categorical, SearchSpace, shipped_search_space_path


def _corners(space):
    """The all-lowest and all-highest values of a space (first and last choices)."""
    low = {
        name: p.choices[0] if isinstance(p, Categorical) else p.low for name, p in space.parameters.items()
    }
    high = {
        name: p.choices[-1] if isinstance(p, Categorical) else p.high for name, p in space.parameters.items()
    }
    return low, high


def _shipped_envs(algorithm):
    """The envs a config ships for, or one without a shipped config (the defaults)."""
    names = [path.stem.removeprefix(f"{algorithm}_") for path in CONFIG_DIRECTORY.glob(f"{algorithm}_*.json")]
    return [f"gymserve/{name}" for name in names if name != "search_space"] or ["gymserve/NoShippedConfig-v0"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_ships_a_search_space_whose_corners_are_valid_configs(algorithm, tmp_path):
    assert shipped_search_space_path(algorithm).exists()
    space = SearchSpace.shipped(algorithm)
    config_class = algorithm_class(algorithm).config_class
    space.check(config_class)
    for env_id in _shipped_envs(algorithm):
        for corner in _corners(space):
            resolve_config(config_class, algorithm, env_id, overrides=corner)  # raises when invalid


@pytest.mark.slow
def test_tune_trpo_runs_a_trial_of_the_shipped_space(tmp_path, capsys):
    config = tmp_path / "small.json"
    config.write_text(json.dumps({"hidden_sizes": [8], "critic_epochs": 1, "eval_episodes": 1}))
    argv = ["tune", "trpo", "--env", "gymserve/CartPole-v1", "--out", str(tmp_path / "out"), "--trials", "1",
            "--max-steps", "512", "--config", str(config), "--seed", "0", "--quiet"]  # fmt: skip
    assert main(argv) in (0, None)
    assert "1 complete" in capsys.readouterr().out

"""One check for a short CLI training run of a Discrete CartPole algorithm: it learns far beyond
random play, and its export acts exactly as the trained policy in-process, on ONNX and TensorFlow."""

import json
from pathlib import Path

import numpy as np

from gymserve.agents import load_trained_policy
from gymserve.cli import main
from gymserve.policies import RandomPolicy, load
from gymserve.policies.episodes import evaluate

CARTPOLE = "gymserve/CartPole-v1"


def assert_cli_run_beats_random_play_and_exports_exactly(
    algorithm: str, config: dict, max_steps: int, tmp_path: Path, capsys
) -> None:
    """Train, eval and export by CLI; the greedy return is >= 5x random play's; backends agree."""
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    config_file = tmp_path / "tiny.json"
    config_file.write_text(json.dumps(config))
    argv = [
        "train",
        algorithm,
        "--env",
        CARTPOLE,
        "--config",
        str(config_file),
        "--max-steps",
        str(max_steps),
    ]
    assert main([*argv, "--out", str(run_dir), "--quiet"]) == 0
    assert main(["eval", str(run_dir), "--episodes", "10"]) == 0
    assert main(["export", str(run_dir), "--out", str(export_dir)]) == 0
    output = capsys.readouterr().out
    trained_return = float(output.split("AverageReturn: ")[1].split()[0])

    trained = load_trained_policy(run_dir)
    random_policy = RandomPolicy(trained.policy.observation_space, trained.policy.action_space, seed=0)
    random_return = evaluate(random_policy, CARTPOLE, 10, "stochastic", seed=3).average_return
    assert trained_return >= 5 * random_return, (trained_return, random_return)

    observations = (
        np.random.default_rng(4).normal(scale=[1.0, 1.0, 0.1, 1.0], size=(5000, 4)).astype(np.float32)
    )
    expected = trained.policy.action(observations).action
    assert 0.1 < expected.mean() < 0.9, "both actions occur, so agreement is not trivial"
    for backend in ("onnx", "tensorflow"):
        exported = load(export_dir, backend)
        assert exported.metadata.algorithm == algorithm
        np.testing.assert_array_equal(exported.action(observations).action, expected)

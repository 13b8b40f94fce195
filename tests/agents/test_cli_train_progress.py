"""`gymserve train` prints a line after each evaluation: its return, the best so far, the episodes
ended and their mean return, the same numbers history.csv holds."""

import json
import re

from tiny_dqn import TINY_DQN

from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.cli import main

LINE = re.compile(
    r"step (\d+): AverageReturn (-?[\d.]+), best (-?[\d.]+) at step (\d+); (\d+) training episodes, "
    r"mean return (-?[\d.]+|none yet)"
)


def test_each_evaluation_prints_episodes_mean_and_best_return(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_DQN))
    run_dir = tmp_path / "run"
    argv = ["train", "dqn", "--env", "gymserve/CartPole-v1", "--config", str(config), "--out", str(run_dir),
            "--max-steps", "600", "--eval-interval", "200", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    lines = [match.groups() for match in map(LINE.search, capsys.readouterr().err.splitlines()) if match]
    history = History.read(run_dir / HISTORY_FILE)
    evaluations = history.evaluations()
    assert [int(step) for step, *_ in lines] == [row["step"] for row in evaluations] == [200, 400, 600]
    best = None
    for (step, average, best_return, best_step, episodes, mean), row in zip(lines, evaluations, strict=True):
        ended = [episode for episode in history.rows if episode["episode_return"] is not None]
        ended = [episode for episode in ended if episode["step"] <= int(step)]
        assert float(average) == round(row["eval_return"], 2)
        best = row if best is None or row["eval_return"] > best["eval_return"] else best
        assert (float(best_return), int(best_step)) == (round(best["eval_return"], 2), best["step"])
        assert int(episodes) == len(ended)
        assert float(mean) == round(ended[-1]["mean_return"], 2)

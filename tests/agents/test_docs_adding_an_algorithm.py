"""docs/adding_an_algorithm.md works as written: its files, registration, training and CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gymserve.agents
from gymserve.agents import ALGORITHMS
from gymserve.agents.training.checkpoints import CheckpointStore
from gymserve.agents.training.history import HISTORY_FILE

DOC = Path(__file__).parents[2] / "docs" / "adding_an_algorithm.md"
FILE_NAME = re.compile(r"# (\w+\.py)\n")
# The doc trains for 100,000 steps; here two rollouts of a tiny network, each followed by an evaluation.
TINY_BUDGET = {
    "max_steps": 1024,
    "eval_interval": 512,
    "eval_episodes": 2,
    "checkpoint_interval": 512,
    "hidden_sizes": (8,),
}


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_the_doc_names_its_files_and_launcher():
    python = code_blocks("python")
    assert [FILE_NAME.match(block)[1] for block in python[:2]] == ["reinforce.py", "my_gymserve.py"]
    assert all(line.startswith("python my_gymserve.py ") for line in code_blocks("bash")[0].splitlines())


@pytest.fixture
def doc_project(tmp_path, monkeypatch, registry_restored):
    """tmp_path holding the doc's files, importable and the working directory; the modules and the
    registration are forgotten afterwards."""
    for block in code_blocks("python"):
        named = FILE_NAME.match(block)
        if named:
            (tmp_path / named[1]).write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for module in ("reinforce", "my_gymserve"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield tmp_path
    for module in ("reinforce", "my_gymserve"):
        sys.modules.pop(module, None)


def test_the_registered_algorithm_trains_through_train(doc_project, monkeypatch):
    real_train = gymserve.agents.train

    def tiny_train(algorithm, env_id, run_dir, config=None, **options):
        return real_train(
            algorithm, env_id, run_dir, {**(config or {}), **TINY_BUDGET}, progress_bar=False, **options
        )

    monkeypatch.setattr(gymserve.agents, "train", tiny_train)
    training = [block for block in code_blocks("python") if not FILE_NAME.match(block)]
    assert len(training) == 1
    exec(compile(training[0], str(DOC), "exec"), {})

    assert "reinforce" in ALGORITHMS
    run_dir = doc_project / "runs" / "reinforce"
    assert json.loads((run_dir / "run.json").read_text())["algorithm"] == "reinforce"
    history = (run_dir / HISTORY_FILE).read_text().splitlines()
    assert len(history) > 2, "episode and evaluation rows"
    store = CheckpointStore(run_dir)
    assert store.trainer_state("latest")["total_steps"] == 1024
    assert store.path("best") is not None


def test_the_launcher_lists_the_algorithm_in_the_cli_help(doc_project):
    # COLUMNS: argparse keeps the ALGORITHM help on one line
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "my_gymserve.py", "train", "--help"],
        cwd=doc_project,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    listed = re.search(r"^  ALGORITHM +(.*)$", result.stdout, flags=re.MULTILINE)[1]
    assert listed.split(", ") == [*ALGORITHMS, "reinforce"]

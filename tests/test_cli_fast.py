"""The `gymserve` command answers at once: every --help, and every mistake it can see in its arguments,
without importing TensorFlow; each mistake is one line on stderr with exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gymserve.agents.training.registry import ALGORITHMS
from gymserve.cli import COMMANDS, build_parser
from gymserve.policies import ActionMode

CARTPOLE = "gymserve/CartPole-v1"
# Runs the command, then writes the names of the modules it imported to $MODULES_FILE; the
# modules named in $BLOCKED_MODULES import as if not installed.
RUNNER = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_FILE"], "w").write("\\n".join(sys.modules)))
for name in filter(None, os.environ.get("BLOCKED_MODULES", "").split(",")):
    sys.modules[name] = None
from gymserve.cli import main
sys.exit(main(sys.argv[1:]))
"""
SECONDS = 3.0  # generous: the commands take about half a second, CI machines can be slow


def run_gymserve(tmp_path: Path, *argv: str, blocked: str = "") -> tuple[subprocess.CompletedProcess, set]:
    """The finished command and the modules it imported."""
    modules_file = tmp_path / "modules.txt"
    environment = {**os.environ, "MODULES_FILE": str(modules_file), "BLOCKED_MODULES": blocked}
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=60,
    )
    assert time.monotonic() - started < SECONDS, f"gymserve {' '.join(argv)} took too long"
    return completed, set(modules_file.read_text().split())


@pytest.mark.parametrize("command", [None, *(command.name for command in COMMANDS)])
def test_help_of_every_command_is_quick_and_imports_no_tensorflow(command, tmp_path):
    argv = [command, "--help"] if command else ["--help"]
    completed, modules = run_gymserve(tmp_path, *argv)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: gymserve {command or ''}".rstrip())
    assert "tensorflow" not in modules


MISTAKES = [
    (["train", "dqnn", "--env", CARTPOLE, "--out", "run"], "argument ALGORITHM: invalid choice: 'dqnn'"),
    (["train", "dqn", "--env", "gymserve/NoSuchEnv-v0", "--out", "run"], "cannot make environment"),
    (["train", "dqn", "--env", CARTPOLE, "--config", "none.json", "--out", "run"], "none.json: no such file"),
    (["train", "dqn", "--env", CARTPOLE, "--out", "run", "--max-steps", "many"], "invalid int value: 'many'"),
    (["train", "ppo", "--env", CARTPOLE, "--out", "run", "--ray-address", "auto"], "--ray-address needs"),
    (["train", "dqn", "--env", "Pendulum-v1", "--out", "run"], "dqn acts only in Discrete action spaces"),
    (["config", "ppo", "--env", "NoSuchEnv-v0"], "cannot make environment 'NoSuchEnv-v0'"),
    (["tune", "ppo", "--env", CARTPOLE, "--out", "t", "--trials", "1", "--search-space", "none.yaml"],
     "none.yaml: no such file or directory (--search-space)"),
    (["eval", "no-such-run"], "no-such-run: no such file or directory (RUN_DIR)"),
    (["eval", "--env", CARTPOLE], "give a RUN_DIR, or --env with --policy random|pretrained|DIR"),
    (["eval", "--env", CARTPOLE, "--policy", "random", "--mode", "epsilon_greedy"], "needs --epsilon P"),
    (["play", "--env", CARTPOLE, "--mode", "epsilon_greedy"], "--mode epsilon_greedy needs --epsilon P"),
    (["play", "--env", CARTPOLE, "--epsilon", "0.1"], "--epsilon applies only to --mode epsilon_greedy"),
    (["play", "--env", CARTPOLE, "--mode", "epsilon_greedy", "--epsilon", "2"], "--epsilon must be from 0"),
    (["play", "--env", CARTPOLE, "--mode", "sampled"], "argument --mode: invalid choice: 'sampled'"),
    (["play", "--env", CARTPOLE, "--episodes", "0"], "--episodes must be at least 1, got 0"),
    (["play", "--env", "gymserve/NoSuchEnv-v0"], "cannot make environment 'gymserve/NoSuchEnv-v0'"),
    (["play", "--policy", "no-such-export"], "no-such-export: no such file or directory (--policy)"),
    (["play", "--env", CARTPOLE, "--control-hz", "100"], "--control-hz needs --remote ADDRESS"),
    (["play", "--env", CARTPOLE, "--deadline-ms", "5"], "--deadline-ms applies only with --control-hz HZ"),
    (["play", "--env", CARTPOLE, "--remote", "127.0.0.1:1", "--policy", "p", "--control-hz", "0"],
     "--control-hz must be a positive number of steps a second, got 0"),
    (["play", "--env", CARTPOLE, "--remote", "127.0.0.1:1", "--policy", "p", "--control-hz", "100",
      "--deadline-ms", "20"], "--deadline-ms must be in (0, 10], the period at 100 Hz; got 20"),
    (["play", "--env", CARTPOLE, "--remote", "127.0.0.1:1", "--policy", "p", "--control-hz", "100",
      "--fallback", "wait"], "argument --fallback: invalid choice: 'wait'"),
    (["query", "127.0.0.1:1", "--policy", "p", "--obs", "[0]", "--mode", "epsilon_greedy"], "--epsilon P"),
    (["query", "127.0.0.1:1", "--policy", "p", "--obs", "[0"], "--obs is not a JSON array"),
    (["export", "no-such-run", "--out", "export"], "no-such-run: no such file or directory (RUN_DIR)"),
    (["plot", "no-such-run"], "no-such-run: no such file or directory (RUN_DIR)"),
    (["serve", "--address", "nowhere"], "address 'nowhere' is not HOST:PORT"),
    (["serve", "--policy", "cartpole"], "--policy 'cartpole' is not NAME=PATH"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), MISTAKES, ids=[" ".join(argv) for argv, _ in MISTAKES])
def test_a_mistake_is_one_line_before_tensorflow_is_imported(argv, message, tmp_path):
    completed, modules = run_gymserve(tmp_path, *argv)
    assert completed.returncode == 2
    assert completed.stdout == "", "nothing (no config) is printed before the mistake is found"
    [line] = completed.stderr.splitlines()
    assert line.startswith(f"gymserve {argv[0]}: error: ") and message in line
    assert "tensorflow" not in modules
    assert not (tmp_path / "run").exists()


def test_a_missing_extra_is_one_line_naming_it(tmp_path):
    argv = ["train", "dqn", "--env", CARTPOLE, "--out", "run"]
    completed, _ = run_gymserve(tmp_path, *argv, blocked="tensorflow")
    assert completed.returncode == 1
    assert completed.stderr == (
        'the dqn algorithm needs tensorflow, which is not installed: pip install "gymserve[train]"\n'
    )
    assert not (tmp_path / "run").exists()


def test_choices_come_from_the_registries(capsys):
    train = build_parser("train")
    with pytest.raises(SystemExit):
        train.parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ", ".join(ALGORITHMS) in help_text
    required = {"play": [], "eval": [], "query": ["127.0.0.1:1", "--policy", "p", "--obs", "[0]"]}
    for command, argv in required.items():
        for mode in ActionMode:
            args = build_parser(command).parse_args([command, *argv, "--mode", mode.value])
            assert args.mode is mode
        assert build_parser(command).parse_args([command, *argv]).mode is ActionMode.GREEDY


@pytest.mark.parametrize("command", ["play", "eval"])
def test_stochastic_still_works_with_a_one_line_warning(command, capsys):
    args = build_parser(command).parse_args([command, "--stochastic"])
    assert args.mode is ActionMode.STOCHASTIC
    assert capsys.readouterr().err == (
        f"gymserve {command}: warning: --stochastic is deprecated; use --mode stochastic\n"
    )


def test_python_dash_m_gymserve_runs_the_command():
    for module in ("gymserve", "gymserve.cli"):
        completed = subprocess.run(
            [sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60
        )
        assert completed.stdout.startswith("gymserve ") and completed.returncode == 0

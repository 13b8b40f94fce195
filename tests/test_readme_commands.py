"""The README's shell commands, run top to bottom in one fresh folder at tiny budgets.

Every fenced ```bash block of README.md is read in order; its lines (continuations joined) run
in one temporary folder, so a command finds what the commands above it made (run directories,
exports, config files) and nothing else. `gymserve` commands run in this process through
`gymserve.cli.main` (TensorFlow loads once), except `gymserve serve`, which starts in the
background, is waited for, and is stopped at the end of its block, so the lines after it in the
block (`query`, `play --remote`, `curl`) talk to it. Each must exit with status 0, a server must
load a policy, and a `train` must train (not find a finished run of an earlier section).

Budgets are cut by rewriting the command (`tiny`), never by a switch in gymserve:
- `--max-steps N` becomes TINY_STEPS, and `train` without it gets it; `--episodes N` becomes
  TINY_EPISODES; `--trials N` and `--jobs N` become 1; `--export-every N` becomes TINY_STEPS / 2;
- `train` and `tune` read their `--config FILE` merged with TINY_CONFIG (written beside it as
  FILE.tiny.json), or TINY_CONFIG alone: fewer evaluation episodes;
- ports 8500 and 8501 become free ones, and `serve` without `--address` gets one;
- `gymserve/pretrained/...` (a path into the clone) becomes the installed package's folder.

Lines that do not run here are listed in SKIPPED (by their first word) and SKIPPED_GYMSERVE (by a
flag), each with the reason; a line of another command fails the test until it is listed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import gymserve
from gymserve.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
PRETRAINED = Path(gymserve.__file__).resolve().parent / "pretrained"
TINY_STEPS = 256
TINY_EPISODES = 2
TINY_CONFIG = {"eval_episodes": 2}
README_PORTS = ("8500", "8501")
# What the commands that run need beyond the core: the extras' modules, and curl.
NEEDED_MODULES = ("tensorflow", "pybullet", "ray", "optuna", "onnxruntime", "imageio_ffmpeg")

SKIPPED = {
    "pip": "installs packages: the test runs in the checkout's own installation",
    "python3": "makes a virtual environment and installs into it (tests/test_installs.py does)",
    "python": "runs the test suite itself",
    "ray": "starts a Ray cluster across machines",
    "docker": "needs Docker; tests/test_deploy_files.py checks the files it uses",
    "kubectl": "needs a Kubernetes cluster; tests/test_deploy_files.py checks the files",
    "sudo": "installs the C++ client's Debian packages (tests/serving/test_cpp_client.py builds it)",
    "cmake": "builds the C++ client (tests/serving/test_cpp_client.py does)",
    "printf": "pipes into the C++ client, built by the skipped lines above",
    "cd": "the Node.js client's npm install (tests/serving/test_node_client.py runs it)",
    "node": "the Node.js client (tests/serving/test_node_client.py runs it)",
    "mkdir": "prepares TensorFlow Serving's own server, which is not installed",
    "for": "prepares TensorFlow Serving's own server, which is not installed",
    "ln": "prepares TensorFlow Serving's own server, which is not installed",
    "done": "prepares TensorFlow Serving's own server, which is not installed",
    "tensorflow_model_server": "TensorFlow Serving's own server is not installed",
    "tritonserver": "Triton is not installed (tests/policies/test_triton_config.py checks its config)",
    "ruff": "lints the clone, not a fresh folder (.ci/run does)",
}
SKIPPED_GYMSERVE = {
    "--ray-address": "needs the Ray cluster the skipped `ray start` lines make",
    "--control-hz": "needs a server serving the policy `minitaur`, which no block before starts",
}
# `echo '...' > FILE.json`: a config file the next command reads; other echo lines pipe into node.
WRITES_A_FILE = re.compile(r"echo '[^']*' > [\w.]+\.json")


@dataclass
class Line:
    heading: str
    text: str


def readme_lines() -> list[Line]:
    """Every line of the README's bash blocks, continuations joined, with its section heading."""
    lines, heading, block = [], "", None
    for raw in README.read_text().splitlines():
        if block is None:
            if raw.startswith("#"):
                heading = raw.lstrip("#").strip()
            elif raw.strip() == "```bash":
                block = []
            continue
        if raw.strip() == "```":
            joined = "\n".join(block).replace("\\\n", " ")
            lines += [Line(heading, text.strip()) for text in joined.splitlines() if text.strip()]
            block = None
        else:
            block.append(raw)
    return lines


def skip_reason(text: str) -> str | None:
    first = text.split()[0]
    if first == "echo":
        return None if WRITES_A_FILE.fullmatch(strip_comment(text)) else SKIPPED["node"]
    if first == "curl":
        return None
    if first != "gymserve":
        assert first in SKIPPED, f"README line of an unknown command, run or list it in SKIPPED: {text}"
        return SKIPPED[first]
    return next((reason for flag, reason in SKIPPED_GYMSERVE.items() if flag in text.split()), None)


def strip_comment(text: str) -> str:
    if text.startswith("gymserve"):
        return shlex.join(shlex.split(text, comments=True))
    return text.split("  #")[0].strip()


def free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def with_ports(text: str, ports: dict[str, str]) -> str:
    for readme_port, port in ports.items():
        text = text.replace(f":{readme_port}", f":{port}")
    return text


def tiny(argv: list[str], ports: dict[str, str]) -> list[str]:
    """The command at a tiny budget (see the module docstring)."""
    argv = [with_ports(word, ports).replace("gymserve/pretrained/", f"{PRETRAINED}/") for word in argv]
    replacements = {
        "--max-steps": TINY_STEPS,
        "--episodes": TINY_EPISODES,
        "--trials": 1,
        "--jobs": 1,
        "--export-every": TINY_STEPS // 2,
    }
    for flag, value in replacements.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = str(value)
    command = argv[1]
    if command == "train" and "--max-steps" not in argv:
        argv += ["--max-steps", str(TINY_STEPS)]
    if command in ("train", "tune"):
        if "--config" in argv:
            index = argv.index("--config") + 1
            original = Path(argv[index])
            merged = original.with_name(original.name + ".tiny.json")
            merged.write_text(json.dumps({**json.loads(original.read_text()), **TINY_CONFIG}))
            argv[index] = str(merged)
        else:
            Path("tiny.json").write_text(json.dumps(TINY_CONFIG))
            argv += ["--config", "tiny.json"]
    if command == "serve":
        if argv[-1] == "--http-address":  # alone it means 127.0.0.1:8501
            argv += [f"127.0.0.1:{ports['8501']}"]
        if "--address" not in argv:
            argv += ["--address", f"127.0.0.1:{ports['8500']}"]
    return argv[1:]


class Server:
    """`gymserve serve ...` in the background, until the end of its block."""

    def __init__(self, argv: list[str], log: Path):
        self.log = log
        with log.open("w") as file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gymserve.cli", *argv], stdout=file, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 120
        while not self._started():
            assert self.process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)

    def _started(self) -> bool:
        return any('"server_started"' in line for line in self.log.read_text().splitlines())

    def loaded(self) -> bool:
        """Whether a policy loaded: a repository the README's commands left empty serves nothing."""
        return '"policy_loaded"' in self.log.read_text()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=60) == 0, self.log.read_text()[-3000:]


@pytest.mark.slow  # about two minutes: some twenty commands, each training or serving for a moment
def test_the_readme_shell_sections_run_top_to_bottom_in_a_fresh_folder(tmp_path, monkeypatch, capsys):
    missing = [name for name in NEEDED_MODULES if importlib.util.find_spec(name) is None]
    missing += [] if shutil.which("curl") else ["curl"]
    if missing:
        reason = f"the README's commands need {', '.join(missing)} (pip install -e '.[test]'; curl)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; under CI=true they must run")
        pytest.skip(reason)
    monkeypatch.chdir(tmp_path)
    ports = {port: free_port() for port in README_PORTS}
    ran, skipped = [], []
    servers: list[Server] = []
    heading = None
    for line in readme_lines():
        if line.heading != heading:
            for server in servers:
                server.stop()
            servers, heading = [], line.heading
        reason = skip_reason(line.text)
        if reason is not None:
            skipped.append((line.text, reason))
            continue
        command = strip_comment(line.text)
        if not command.startswith("gymserve"):
            done = subprocess.run(with_ports(command, ports), shell=True, capture_output=True, text=True)
            assert done.returncode == 0, (line.text, done.stderr)
            assert not command.startswith("curl") or '"error"' not in done.stdout, (line.text, done.stdout)
        else:
            argv = tiny(shlex.split(command), ports)
            if argv[0] == "serve":
                servers.append(Server(argv, tmp_path / f"server-{len(ran)}.log"))
                assert servers[-1].loaded(), (line.text, servers[-1].log.read_text()[-3000:])
            else:
                status = main(argv)
                output = capsys.readouterr()
                assert status == 0, (line.text, argv, output)
                assert "nothing was trained" not in output.err, ("a run the README made before", line.text)
        ran.append(line.text)
    for server in servers:
        server.stop()
    assert len(ran) >= 25, ran
    # What the README says those commands leave behind.
    left = ["minitaur.mp4", "cartpole.mp4", "runs/cartpole-ppo/learning_curve.png", "two_envs.json",
            "tuning/a2c/best_config.json", f"repository/cartpole/{TINY_STEPS}/policy.onnx",
            "exports/minitaur/policy.tflite", "exports/minitaur-lite/policy-float16.tflite",
            "videos/pong/episode-1.mp4", "videos/pong-remote/episode-1.mp4"]  # fmt: skip
    for path in left:
        assert (tmp_path / path).is_file(), path
    assert {reason for _, reason in skipped} <= set(SKIPPED.values()) | set(SKIPPED_GYMSERVE.values())

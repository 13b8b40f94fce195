"""Without the ray extra: `gymserve train` and `serve` work and never try to import ray; --actors says
how to install it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GYMSERVE = [sys.executable, "-m", "gymserve.cli"]

# Makes ray unimportable in every process started with this directory on PYTHONPATH, and writes
# each attempt to import it to the file named by RAY_IMPORT_ATTEMPTS.
SITECUSTOMIZE = textwrap.dedent(
    """
    import importlib.abc, os, sys

    class NoRay(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "ray":
                with open(os.environ["RAY_IMPORT_ATTEMPTS"], "a") as attempts:
                    attempts.write(name + "\\n")
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoRay())
    """
)


def environment_without_ray(tmp_path: Path) -> tuple[dict[str, str], Path]:
    shim = tmp_path / "no_ray"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE)
    attempts = tmp_path / "ray_import_attempts.txt"
    python_path = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))
    env = os.environ | {"PYTHONPATH": python_path, "RAY_IMPORT_ATTEMPTS": str(attempts)}
    return env, attempts


@pytest.mark.slow  # four gymserve processes, about 30 s
def test_train_export_and_serve_never_import_ray_and_actors_ask_for_the_extra(tmp_path: Path):
    env, attempts = environment_without_ray(tmp_path)

    def gymserve(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*GYMSERVE, *args], capture_output=True, text=True, env=env, timeout=300)

    blocked = subprocess.run(
        [sys.executable, "-c", "import ray"], capture_output=True, text=True, env=env, timeout=60
    )
    assert "No module named 'ray'" in blocked.stderr  # the shim is in force
    attempts.unlink()

    run_dir = tmp_path / "run"
    train = gymserve(
        "train",
        "dqn",
        "--env",
        "gymserve/CartPole-v1",
        "--out",
        str(run_dir),
        "--max-steps",
        "320",
        "--quiet",
    )
    assert train.returncode == 0, train.stderr
    assert "stopped at step 320 (max_steps)" in train.stdout
    exported = gymserve("export", str(run_dir), "--out", str(tmp_path / "repository" / "cartpole" / "1"))
    assert exported.returncode == 0, exported.stderr
    server = subprocess.Popen(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--repository", str(tmp_path / "repository")],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        events = []
        for line in server.stderr:
            events.append(json.loads(line))
            if events[-1]["event"] == "server_started":
                break
        assert ("policy_loaded", "cartpole") in {(e["event"], e.get("policy")) for e in events}, events
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait()
    assert not attempts.exists(), attempts.read_text()

    with_actors = gymserve(
        "train", "dqn", "--env", "gymserve/CartPole-v1", "--out", str(tmp_path / "actors"), "--actors", "2"
    )
    assert with_actors.returncode == 2
    assert with_actors.stderr.strip().endswith(
        "gymserve train: error: training with actors needs ray, which is not installed: "
        'pip install "gymserve[ray]"'
    )
    assert not (tmp_path / "actors").exists()

"""The client imports nothing beyond grpcio, protobuf and numpy: it acts with every other package
blocked, Gymnasium and pydantic included. tests/test_installs.py checks the real core install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
from serving_support import greedy_by_hand, observations

from gymserve.serving.server.policy_server import PolicyServer

ABSENT = ("tensorflow", "onnxruntime", "pybullet", "gymnasium", "pydantic", "yaml")

CLIENT_SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    ABSENT = {absent!r}

    class Absent(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ABSENT:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Absent())
    import gymserve
    from gymserve.serving import PolicyClient

    with PolicyClient(sys.argv[1]) as client:
        actions = client.act(json.loads(sys.argv[2]), "linear", version=1)
        with client.stream("scripted") as session:
            steps = [int(session.step([0.0, 0.0, 0.0, 0.0])) for _ in range(3)]
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ABSENT)
    print(json.dumps({{"actions": actions.tolist(), "steps": steps, "loaded": loaded}}))
    """
)


def test_the_client_acts_without_tensorflow_onnxruntime_pybullet_gymnasium_or_pydantic(server: PolicyServer):
    batch = observations(6, seed=12)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CLIENT_SCRIPT.format(absent=ABSENT),
            server.address,
            json.dumps(batch.tolist()),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    np.testing.assert_array_equal(answer["actions"], greedy_by_hand(batch, version=1))
    assert answer["steps"] == [0, 1, 2]
    assert answer["loaded"] == []


def test_the_blocker_really_blocks(server: PolicyServer):
    script = CLIENT_SCRIPT.format(absent=ABSENT).replace(
        "from gymserve.serving import PolicyClient", "import numpy, gymnasium"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "No module named 'gymnasium'" in result.stderr

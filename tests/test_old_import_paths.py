"""Code written against the package before its folders were re-laid keeps importing: each old
path warns and gives the very object at the new one. Run in a fresh process, where nothing is
imported yet, since that is where a user's old import meets them."""

from __future__ import annotations

import json
import subprocess
import sys

from gymserve.common.moved_modules import MOVED_MODULES

CHECK_EVERY_OLD_MODULE = """
import importlib, json, sys, warnings
from gymserve.common.moved_modules import MOVED_MODULES
report = {}
for old, new in MOVED_MODULES.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    report[old] = {
        "same_object": module is importlib.import_module(new),
        "spec": module.__spec__.name,
        "warning": [str(w.message) for w in caught if w.category is DeprecationWarning][:1],
    }
print(json.dumps(report))
"""

OLD_NAMES_OF_MODULES_THAT_BECAME_PACKAGES = """
import warnings
warnings.simplefilter("error", DeprecationWarning)
for statement in [
    "from gymserve.agents.on_policy import OnPolicyConfig",
    "from gymserve.serving.server import load_configured_policies",
    "from gymserve.serving.server import SERVING",
    "from gymserve.serving.metrics import ServerMetrics",
    "from gymserve.serving.client import DEFAULT_TIMEOUT",
]:
    try:
        exec(statement)
    except DeprecationWarning as warning:
        print("warned:", warning)
    else:
        print("no warning:", statement)
from gymserve.serving.server import PolicyServer  # the documented path: no warning
import gymserve.agents.on_policy as package
print("has no_such_name:", hasattr(package, "no_such_name"))
"""


def run_python(code: str) -> str:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def test_every_old_module_path_warns_and_gives_the_module_at_its_new_path():
    report = json.loads(run_python(CHECK_EVERY_OLD_MODULE).splitlines()[-1])
    assert set(report) == set(MOVED_MODULES)
    for old, new in MOVED_MODULES.items():
        assert report[old]["same_object"], old
        assert report[old]["spec"] == new, f"{old} changed the spec of {new}"
        assert report[old]["warning"] == [f"{old} moved to {new}; import it from there"]


def test_names_of_modules_that_became_packages_still_import_with_a_warning():
    lines = run_python(OLD_NAMES_OF_MODULES_THAT_BECAME_PACKAGES).splitlines()
    assert lines[:5] == [
        "warned: gymserve.agents.on_policy.OnPolicyConfig moved to "
        "gymserve.agents.on_policy.algorithm.OnPolicyConfig",
        "warned: gymserve.serving.server.load_configured_policies moved to "
        "gymserve.serving.server.policy_server.load_configured_policies",
        "warned: gymserve.serving.server.SERVING moved to gymserve.serving.server.policy_server.SERVING",
        "warned: gymserve.serving.metrics.ServerMetrics moved to "
        "gymserve.serving.metrics.server_metrics.ServerMetrics",
        "warned: gymserve.serving.client.DEFAULT_TIMEOUT moved to "
        "gymserve.serving.client.policy_client.DEFAULT_TIMEOUT",
    ]
    assert lines[5:] == ["has no_such_name: False"]

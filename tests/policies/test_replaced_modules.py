"""Modules whose names did not survive a move fail to import, saying what replaces them."""

import importlib

import pytest


@pytest.mark.parametrize(
    ("old_path", "named"),
    [
        ("gymserve.agents.action_distributions", "Categorical.Graph"),
        ("gymserve.policies.policy_graph", "gymserve.policies.export.savedmodel"),
    ],
)
def test_importing_a_replaced_module_names_its_replacement(old_path, named):
    with pytest.raises(ImportError, match=r"gymserve\.policies\.distributions") as raised:
        importlib.import_module(old_path)
    assert named in str(raised.value)
    assert raised.value.name == old_path

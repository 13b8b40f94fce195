"""The algorithm registry: one table that the classes, the README and the error messages agree with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gymserve.agents.off_policy.algorithm import OffPolicyAlgorithm
from gymserve.agents.on_policy.algorithm import OnPolicyAlgorithm
from gymserve.agents.training.registry import (
    ALGORITHMS,
    REGISTRY,
    UnknownAlgorithmError,
    actor_support,
    algorithm_class,
    load_entry_point,
    register_algorithm,
)

README = Path(__file__).parents[2] / "README.md"
TABLE_HEADER = "| Algorithm | Action spaces | Family | Ray actors | Summary |"
FAMILY_BASE = {"on-policy": OnPolicyAlgorithm, "off-policy": OffPolicyAlgorithm}


def readme_table_rows() -> list[str]:
    lines = README.read_text().splitlines()
    start = lines.index(TABLE_HEADER)
    end = next(index for index in range(start, len(lines)) if not lines[index].startswith("|"))
    return lines[start:end]


def registry_table_rows() -> list[str]:
    rows = [TABLE_HEADER, "|---|---|---|---|---|"]
    for name, entry in REGISTRY.items():
        fields = actor_support(name)
        if fields is None:
            actors = "no"
        else:
            actors = "without " + ", ".join(f"`{field}`" for field in fields) if fields else "yes"
        rows.append(
            f"| `{name}` | {', '.join(entry.action_kinds)} | {entry.family} | {actors} | {entry.summary} |"
        )
    return rows


def test_the_readme_table_has_one_row_per_registered_algorithm():
    expected = registry_table_rows()
    assert readme_table_rows() == expected, "update the README's algorithms table to:\n" + "\n".join(expected)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_each_entry_describes_its_class(name):
    entry = REGISTRY[name]
    algorithm = algorithm_class(name)
    assert issubclass(algorithm, FAMILY_BASE[entry.family])
    assert algorithm.name == name
    assert tuple(space.__name__ for space in algorithm.action_spaces) == entry.action_kinds
    for variant_entry_point in entry.variants.values():
        variant = load_entry_point(variant_entry_point)
        assert issubclass(variant, algorithm) and variant.config_class is algorithm.config_class


def test_a_config_setting_a_variant_field_selects_the_variant():
    config_class = algorithm_class("ppo").config_class
    recurrent = config_class(num_envs=2, n_steps=8, batch_size=8, bptt_length=4, lstm_units=4)
    assert algorithm_class("ppo", recurrent).__name__ == "RecurrentPPO"
    assert algorithm_class("ppo", config_class()).__name__ == "PPO"
    assert actor_support("ppo") == ("lstm_units",)
    assert actor_support("dqn") == ()
    assert actor_support("a3c") is None


def test_algorithms_maps_each_name_to_its_entry_point_and_is_read_only():
    assert list(ALGORITHMS) == list(REGISTRY)
    assert ALGORITHMS["ppo"] == "gymserve.agents.on_policy.ppo:PPO"
    assert dict(ALGORITHMS) == {name: entry.entry_point for name, entry in REGISTRY.items()}
    with pytest.raises(TypeError):
        ALGORITHMS["mine"] = "mine:Mine"  # type: ignore[index]


def test_importing_the_registry_imports_no_tensorflow():
    check = (
        "import sys, gymserve.agents.training.registry as registry; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_unknown_and_missing_algorithms_are_named(registry_restored):
    with pytest.raises(
        UnknownAlgorithmError, match=r"^unknown algorithm 'ppo2'; expected one of: dqn, ppo, "
    ):
        algorithm_class("ppo2")
    register_algorithm(
        "gone", "gymserve.agents.no_such_module:Gone", action_kinds=("Box",), family="on-policy", summary="-"
    )
    assert "gone" in ALGORITHMS
    with pytest.raises(
        UnknownAlgorithmError,
        match=r"^algorithm 'gone' is not available in this version of gymserve "
        r"\(gymserve.agents.no_such_module is missing\)$",
    ):
        algorithm_class("gone")


def test_registering_refuses_a_taken_name_and_a_malformed_entry_point(registry_restored):
    with pytest.raises(ValueError, match=r"^algorithm 'ppo' is already registered as gymserve.agents"):
        register_algorithm("ppo", "x:PPO", action_kinds=("Box",), family="on-policy", summary="-")
    with pytest.raises(ValueError, match=r"^entry point 'mine.Mine' is not of the form 'module:Class'$"):
        register_algorithm("mine", "mine.Mine", action_kinds=("Box",), family="on-policy", summary="-")
    assert "mine" not in ALGORITHMS

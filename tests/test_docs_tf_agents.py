"""Every code block of docs/coming_from_tf_agents.md runs, in order, as one script (the TF-Agents
code shown beside ours is fenced as `python tf-agents`, which is not run)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "coming_from_tf_agents.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.slow  # the SAC Minitaur loop: 2,000 steps, three evaluation episodes, two exports
def test_every_snippet_of_the_page_runs(capsys):
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 24
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{PAGE.name} block {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "the script is exhausted" in printed
    assert "Deterministic(batch_size=2, loc=[[" in printed and "Normal(batch_size=2, loc=[[" in printed
    assert "a RandomPolicy is not exported: it has no network to save; exported policies are" in printed
    # The SAC Minitaur tutorial's loop exported on its schedule, and took its logged updates.
    assert "exported [1000, 2000]" in printed
    assert "step = 1000: loss = " in printed and "step = 1000: loss = None" not in printed


def test_the_readme_links_the_page():
    assert "(docs/coming_from_tf_agents.md)" in (ROOT / "README.md").read_text(encoding="utf-8")

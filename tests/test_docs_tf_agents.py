"""Every code block of docs/coming_from_tf_agents.md runs, in order, as one script."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "coming_from_tf_agents.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def test_every_snippet_of_the_page_runs(capsys):
    blocks = python_blocks(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) == 20
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{PAGE.name} block {number}", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "the script is exhausted" in printed
    assert "Deterministic(batch_size=2, loc=[[" in printed and "Normal(batch_size=2, loc=[[" in printed
    assert "a RandomPolicy is not exported: it has no network to save; exported policies are" in printed


def test_the_readme_links_the_page():
    assert "(docs/coming_from_tf_agents.md)" in (ROOT / "README.md").read_text(encoding="utf-8")

"""docs/coming_from_xagents.md: every gymserve command in its tables parses with gymserve's parser,
and every xagents name gymserve accepts is in the table, setting the field it says."""

import shlex
from pathlib import Path

import pytest

from gymserve.cli import build_parser
from gymserve.cli.config_flags import ALIASES, OVERRIDES, config_fields, flag

PAGE = Path(__file__).resolve().parents[1] / "docs" / "coming_from_xagents.md"


def _rows():
    """(xagents cell, gymserve command) of every table row with a gymserve command."""
    rows = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`gymserve "):
            rows.append((cells[0].strip("`"), cells[1].strip("`")))
    return rows


ROWS = _rows()


def test_the_page_has_its_tables():
    assert len(ROWS) >= 50


@pytest.mark.parametrize(("xagents", "command"), ROWS, ids=[row[0] for row in ROWS])
def test_every_gymserve_command_of_the_table_parses(xagents, command):
    argv = shlex.split(command)[1:]
    args = build_parser(argv[0]).parse_args(argv)  # exits on a flag gymserve does not have
    xagents_flag = xagents.split()[0]
    if xagents_flag in ALIASES:  # the same name is accepted, and sets the field the alias stands for
        assert xagents_flag in argv
        assert ALIASES[xagents_flag] in getattr(args, OVERRIDES)


def test_every_xagents_alias_is_in_the_table():
    documented = {xagents.split()[0] for xagents, _ in ROWS}
    assert set(ALIASES) <= documented


def test_aliases_name_real_fields_and_do_not_shadow_a_field_flag():
    fields = config_fields()
    assert set(ALIASES.values()) <= set(fields)
    assert not set(ALIASES) & {flag(name) for name in fields}

"""`keyvault usage` as a person reads it: a bar per day, project names rather than proj_ ids,
colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.terminal import in_terminal
from tests.helpers import Cli
from tests.test_usage import spend  # noqa: F401 - the fixture: two projects, 40 days of costs

pytestmark = pytest.mark.slow  # the fake Administration API and a real terminal

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_bar_per_day_and_project_names(cli: Cli, spend: dict[str, str]) -> None:  # noqa: F811
    result = cli("usage", "--days", "40")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert "per day (UTC):" in lines
    days = lines[lines.index("per day (UTC):") + 1 :]
    days = days[: days.index("")]
    assert len(days) == 41  # every day of the window, the quiet ones too
    assert all(re.fullmatch(r"\d\d-\d\d  [█ ]{30} \$\d+\.\d\d", d) for d in days)
    assert max(d.count("█") for d in days) == 30  # the biggest day ($4.00) fills the bar
    assert days[-1].endswith("$1.75") and days[-1].count("█") == round(30 * 1.75 / 4)
    assert sum(1 for d in days if "█" in d) == 3
    table = lines[len(lines) - lines[::-1].index("") :]
    assert not any("proj_" in row for row in table)  # the vault's project names instead
    assert any(row.split()[1] == "work" for row in table[1:])
    assert not ANSI.search(result.out)  # not a terminal: no colour
    report = json.loads(cli.ok("usage", "--days", "40", "--json").out)
    assert len(report["daily"]) == 41 and sum(d["spend_usd"] for d in report["daily"]) == 8.75


def test_colour_on_a_terminal_unless_no_color(cli: Cli, spend: dict[str, str]) -> None:  # noqa: F811
    coloured = in_terminal(["usage", "--days", "40"], {**cli.env, "TERM": "xterm"})
    assert coloured.wait() == 0, coloured.text
    assert ANSI.search(coloured.text)
    plain = in_terminal(["usage", "--days", "40"], {**cli.env, "TERM": "xterm", "NO_COLOR": "1"})
    assert plain.wait() == 0, plain.text
    assert not ANSI.search(plain.text) and "█" in plain.text

"""docs/cli.md is generated from the click commands and must match them."""

from __future__ import annotations

from pathlib import Path

from vault.cli.helpdoc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run `python -m vault.cli.helpdoc > docs/cli.md`"
    )


def test_every_command_has_an_example() -> None:
    sections = render().split("\n## ")[1:]
    leaves = [s for s in sections if "Commands:" not in s]
    missing = [s.splitlines()[0] for s in leaves if "Example" not in s]
    assert not missing, f"commands without an example in --help: {missing}"

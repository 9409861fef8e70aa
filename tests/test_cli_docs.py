"""Generated docs match the code: docs/cli.md (click commands), docs/format.md (enums)."""

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


def test_format_spec_lists_every_action_and_mint_state() -> None:
    from vault.model import formatdoc
    from vault.model.records import Action, MintState

    page = formatdoc.PAGE.read_text(encoding="utf-8")
    assert page == formatdoc.render(page), (
        "docs/format.md is stale: run `python -m vault.model.formatdoc`"
    )
    for member in (*Action, *MintState):
        assert f"| `{member.value}` |" in page

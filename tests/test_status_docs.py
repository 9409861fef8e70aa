"""docs/health.md and docs/rotation.md carry the status table generated from `ADVICE`, the
table `check` prints its advice from: they must match it (vault/cli/statusdoc.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.cli.statusdoc import render, rewrite
from vault.model.health import ADVICE

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name", ["health.md", "rotation.md"])
def test_status_table_is_generated_from_advice(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    assert rewrite(text) == text, (
        f"docs/{name} is stale: run `python -m vault.cli.statusdoc docs/health.md docs/rotation.md`"
    )


def test_every_status_has_one_row_with_its_advice() -> None:
    table = render()
    for status, advice in ADVICE.items():
        assert table.count(f"| `{status}` | {advice} |") == 1


def test_a_document_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        rewrite("# no table here\n")

"""The status table in docs/health.md and docs/rotation.md, made from `ADVICE` (the table
`check` prints its advice from, vault/model/health.py), so the docs and the command cannot
say different things:

    python -m vault.cli.statusdoc docs/health.md docs/rotation.md   # rewrite in place

Only the part between the two markers is replaced; tests/test_status_docs.py fails when a
checked-in file differs from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Final

from vault.model.health import ADVICE, DEEP_ONLY, HARD_FAILURES, NOT_THE_KEY

BEGIN: Final = (
    "<!-- generated from ADVICE in vault/model/health.py by"
    " `python -m vault.cli.statusdoc docs/health.md docs/rotation.md`: edit it there -->"
)
END: Final = "<!-- end of the generated status table -->"


def _hard(status: object) -> str:
    if status in HARD_FAILURES:
        return "yes: waiting will not fix it"
    return "no: says nothing about the key" if status in NOT_THE_KEY else "no"


def render() -> str:
    """The table, markers included."""
    lines = [
        BEGIN,
        "| status | what it means, and what to do | hard failure? | seen by a plain check? |",
        "|---|---|---|---|",
    ]
    for status, advice in ADVICE.items():
        seen = "no: only `--deep` (the chat probe)" if status in DEEP_ONLY else "yes"
        lines.append(f"| `{status}` | {advice} | {_hard(status)} | {seen} |")
    lines.append(END)
    return "\n".join(lines)


def rewrite(text: str) -> str:
    """`text` with its generated table replaced by the current one."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError("the generated status table's markers are missing")
    return text[:start] + render() + text[end + len(END) :]


def main(paths: list[str]) -> None:
    for name in paths:
        path = Path(name)
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])

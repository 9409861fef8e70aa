"""How many terminal cells a line takes, independently of vault/cli/table.py."""

from __future__ import annotations

import unicodedata


def display_width(line: str) -> int:
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in line
    )

"""Tables for people: columns sized by what a terminal shows, shrunk to fit a width.

Width is counted in terminal cells, not characters: `工作` takes four cells, a combining
accent none, so tables with Chinese project names stay aligned.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Iterable, Sequence

GAP = "  "
MIN_FLEXIBLE = 8  # a shrunk column still shows enough to tell names apart
ELLIPSIS = "…"


def cells(text: str) -> int:
    """How many terminal cells `text` takes (wide East Asian characters take two)."""
    return sum(_char_cells(char) for char in text)


def _char_cells(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def clip(text: str, width: int) -> str:
    """`text` cut to `width` cells, ending in `…` when something was cut."""
    if cells(text) <= width:
        return text
    out, used = "", 0
    for char in text:
        size = _char_cells(char)
        if used + size > width - 1:
            break
        out, used = out + char, used + size
    return out + ELLIPSIS


def pad(text: str, width: int) -> str:
    return text + " " * (width - cells(text))


def render(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    width: int | None = None,
    flexible: Collection[int] = (),
) -> str:
    """Rows under upper-case headers. With `width`, the `flexible` columns (by index) shrink,
    widest first, until the table fits; cut cells end in `…`."""
    body = [list(row) for row in rows]
    widths = [cells(h) for h in headers]
    for row in body:
        widths = [max(w, cells(c)) for w, c in zip(widths, row, strict=True)]
    if width is not None:
        widths = _shrink(widths, width, flexible)
    lines = [_line([h.upper() for h in headers], widths)]
    lines += [_line(row, widths) for row in body]
    return "\n".join(lines)


def _line(row: Sequence[str], widths: Sequence[int]) -> str:
    return GAP.join(pad(clip(c, w), w) for c, w in zip(row, widths, strict=True)).rstrip()


def _shrink(widths: list[int], width: int, flexible: Collection[int]) -> list[int]:
    widths = list(widths)
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    while excess > 0:
        candidates = [i for i in flexible if widths[i] > MIN_FLEXIBLE]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths

"""Where `env` and `get` write what the user asked for: the one place their standard output is
written, so the export memo (vault/cli/memo.py) can keep exactly what a full run printed and
print the same thing again. Imported on the fast path: nothing but `errno` and `sys`.
"""

from __future__ import annotations

import errno
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

TEXT, BYTES = b"text", b"bytes"
# what this run has printed, while the memo records one (memo.recording); None otherwise
_printed: list[tuple[bytes, bytes]] | None = None


def write_text(text: str) -> None:
    """Text through `sys.stdout`'s own encoding (what `env` prints), all or nothing: a shell
    must not run a statement whose value the encoding turned into `?` (main makes stdout
    replace what it cannot encode, for the tables people read)."""
    out = stdout()
    # getattr: a host's stand-in for stdout may have neither (tests, embedding programs)
    if getattr(out, "errors", "strict") != "strict":
        text.encode(getattr(out, "encoding", None) or "utf-8")  # main says what and why
    out.write(text)
    out.flush()
    if _printed is not None:
        _printed.append((TEXT, text.encode("utf-8", "surrogateescape")))


def write_bytes(data: bytes) -> None:
    """Bytes as they are (what `get` prints: a text layer could translate or strip what a
    pipe must get)."""
    out = stdout().buffer
    out.write(data)
    out.flush()
    if _printed is not None:
        _printed.append((BYTES, data))


def stdout() -> TextIO:
    """`sys.stdout`; `keyvault env >&-` leaves none: an output error (main prints it)."""
    if sys.stdout is None:
        raise OSError(errno.EBADF, "standard output is closed")
    return sys.stdout


def start_keeping() -> None:
    global _printed  # noqa: PLW0603 - one run at a time, in one process
    _printed = []


def stop_keeping() -> list[tuple[bytes, bytes]]:
    global _printed
    kept, _printed = _printed or [], None
    return kept

"""How errors and warnings reach the user: `keyvault: error: …`, `keyvault: hint: …`.

The one place the words are written, for the click commands and for the fast dispatcher
(vault/cli/fast.py) alike; it imports only `re` and `sys`, so the fast path stays without
click.
Lines go straight to `sys.stderr`: click.echo would strip ANSI sequences only when stderr is
not a terminal, so the two paths could print different bytes for the same error.
"""

from __future__ import annotations

import re
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.errors import KeyvaultError


def print_error(message: object, hint: object = None) -> None:
    """`keyvault: error: <first line>` and, when given, `keyvault: hint: <first line>`."""
    lines = f"keyvault: error: {first_line(message)}\n"
    if hint:
        lines += f"keyvault: hint: {first_line(hint)}\n"
    _write(lines)


def report(exc: KeyvaultError) -> None:
    print_error(exc.message, exc.hint)


def warn(message: str) -> None:
    _write(f"keyvault: warning: {message}\n")


# compiled on first use (re caches it): compiling the class costs ~0.35 ms, and most runs
# print nothing that needs it
_UNSAFE = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"


def safe(value: object) -> str:
    """Display text with control and bidi characters neutralised (hostile metadata)."""
    if value is None:
        return "-"
    text = str(value)
    if text.isascii() and text.isprintable():  # holds none of them (nor a newline)
        return text
    return re.sub(_UNSAFE, "?", text).replace("\n", " ")


def house_style(message: str) -> str:
    """Click's messages ("No such option '-q'.") in our style: lower case, no final period."""
    if message[:2].istitle():  # "No…" but not an acronym or a quoted NAME
        message = message[0].lower() + message[1:]
    return message.removesuffix(".")


def first_line(text: object) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "unknown error"


def _write(text: str) -> None:
    stream = sys.stderr
    if stream is None:  # pythonw, or a parent that closed fd 2: nowhere to say it
        return
    stream.write(text)
    stream.flush()

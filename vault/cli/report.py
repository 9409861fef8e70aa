"""How errors and warnings reach the user: `keyvault: error: …`, `keyvault: hint: …`.

The one place the words are written, for the click commands and for the fast dispatcher
(vault/cli/fast.py) alike; it imports only `os`, `stat` and `sys` (`re` once a character
needs neutralising), so the fast path stays without click, re and enum.
Lines go straight to `sys.stderr`: click.echo would strip ANSI sequences only when stderr is
not a terminal, so the two paths could print different bytes for the same error.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from vault.errors import KeyvaultError


def print_error(message: object, hint: object = None, details: Sequence[object] = ()) -> None:
    """`keyvault: error: <first line>`, one indented line per detail (why each candidate was
    out, say), and `keyvault: hint: <first line>` when given. Anything key-shaped in them is
    masked: messages quote what the user typed, and a key pasted there must not reach a
    terminal or a CI log."""
    lines = f"keyvault: error: {shown(message)}\n"
    lines += "".join(f"keyvault:   {shown(detail)}\n" for detail in details)
    if hint:
        lines += f"keyvault: hint: {shown(hint)}\n"
    _write(lines)


def report(exc: KeyvaultError) -> None:
    print_error(exc.message, exc.hint, exc.details)


def shown(text: object) -> str:
    """The first line of `text`, with anything key-shaped masked and control and bidi
    characters neutralised: messages quote what the user typed (click's "got unexpected
    extra argument (…)" quotes it raw), and an escape sequence must not reach the terminal."""
    line = neutralised(first_line(text))
    if "sk-" not in line and "T3BlbkFJ" not in line and "age-secret-key" not in line.lower():
        return line  # nothing shapes.py would mask: its import is not worth paying for
    from vault.model.shapes import hide_secrets  # noqa: PLC0415 - only when something may be

    return hide_secrets(line)


def warn(message: str) -> None:
    # not masked: a warning may name the key marker on purpose (MARKER_WARNING)
    _write(f"keyvault: warning: {neutralised(message)}\n")


def warn_if_output_is_shared(what: str, advice: str = "") -> None:
    """Before printing a secret on purpose: `> file` under the usual umask 022 made the file
    0644 before keyvault started (our umask 077 cannot reach it), so say so."""
    try:
        info = os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or not a real file (a test's)
        return
    # not on Windows, where every writable file reports mode 0666 and ACLs decide
    if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 and sys.platform != "win32":
        warn(
            f"standard output is a file that group or others can read, and {what} is in it:"
            f" chmod 600 it{f'; {advice}' if advice else ''}"
        )


def neutralised(text: str) -> str:
    """`text` with control and bidi characters (newline and tab aside) shown as `?`."""
    if text.isascii() and text.isprintable():
        return text
    return _unsafe_to_question_marks(text)


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
    return _unsafe_to_question_marks(text).replace("\n", " ")


def _unsafe_to_question_marks(text: str) -> str:
    import re  # noqa: PLC0415 - with enum, ~3 ms the everyday path never needs

    return re.sub(_UNSAFE, "?", text)


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


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the output still buffered is dropped, not an error."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

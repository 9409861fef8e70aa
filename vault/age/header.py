"""The age header: its text form, parsed strictly and written canonically.

`Stanza` and `Header` are the parsed shapes; `parse_header` checks the syntax (version line,
stanza argument and body lines, the `---` MAC line) but not the MAC, which needs the file key;
`encode_header` writes stanzas and their MAC. The strict base64 helpers (unpadded, canonical
only) live here too, since recipients use them for their stanza arguments.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import NamedTuple

from vault.age.primitives import header_mac
from vault.errors import AgeHeaderError

_VERSION_LINE = b"age-encryption.org/v1\n"
_ARGUMENT = re.compile(rb"[\x21-\x7e]+")
_BODY_LINE = re.compile(rb"[A-Za-z0-9+/]{0,64}")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")


# NamedTuple, not a dataclass: dataclasses cost milliseconds at import on the hot path
class Stanza(NamedTuple):
    """One recipient stanza: `-> type args…` and its decoded body."""

    type: str
    args: tuple[str, ...]
    body: bytes


class Header(NamedTuple):
    """A parsed header; `mac_input` is the text the MAC covers (up to and including `---`)."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes
    payload_offset: int


def b64decode(text: bytes | str, what: str) -> bytes:
    """Unpadded, canonical base64 only: anything else would make headers malleable."""
    raw_text = text.encode("ascii") if isinstance(text, str) else text
    if not _BASE64.fullmatch(raw_text) or len(raw_text) % 4 == 1:
        raise AgeHeaderError(f"header: invalid base64 in {what}")
    raw = base64.b64decode(raw_text + b"=" * (-len(raw_text) % 4))
    if b64encode(raw) != raw_text:
        raise AgeHeaderError(f"header: non-canonical base64 in {what}")
    return raw


def b64encode(raw: bytes) -> bytes:
    return base64.b64encode(raw).rstrip(b"=")


class _Lines:
    """Reads LF-terminated lines; a header that ends mid-line is truncated."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def next(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise AgeHeaderError("header: unexpected end of file")
        line, self.pos = self.data[self.pos : end], end + 1
        return line


def parse_header(data: bytes) -> Header:
    """Parse and syntax-check the header; the MAC is verified later, with the file key."""
    if not data.startswith(_VERSION_LINE):
        known = data.startswith(b"age-encryption.org/")
        raise AgeHeaderError("header: unsupported version" if known else "header: not an age file")
    lines, stanzas = _Lines(data, len(_VERSION_LINE)), []
    while True:
        start, line = lines.pos, lines.next()
        if line.startswith(b"-> "):
            stanzas.append(_parse_stanza(line, lines))
        elif line.startswith(b"---"):
            mac = b64decode(line[4:], "header mac") if line.startswith(b"--- ") else b""
            if len(mac) != 32:
                raise AgeHeaderError("header: malformed mac line")
            if not stanzas:
                raise AgeHeaderError("header: no recipient stanzas")
            return Header(tuple(stanzas), mac, bytes(data[: start + 3]), lines.pos)
        else:
            raise AgeHeaderError("header: malformed line")


def _parse_stanza(line: bytes, lines: _Lines) -> Stanza:
    args = line[3:].split(b" ")
    if not all(_ARGUMENT.fullmatch(arg) for arg in args):
        raise AgeHeaderError("header: invalid stanza arguments")
    body_lines = [lines.next()]
    while len(body_lines[-1]) == 64:  # a full line means the body goes on
        body_lines.append(lines.next())
    if not all(_BODY_LINE.fullmatch(body_line) for body_line in body_lines):
        raise AgeHeaderError("header: invalid stanza body line")
    texts = [arg.decode("ascii") for arg in args]
    return Stanza(texts[0], tuple(texts[1:]), b64decode(b"".join(body_lines), "stanza body"))


def encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    parts = [_VERSION_LINE]
    for stanza in stanzas:
        parts.append(" ".join(("->", stanza.type, *stanza.args)).encode("ascii") + b"\n")
        body = b64encode(stanza.body)
        parts += [body[i : i + 64] + b"\n" for i in range(0, len(body), 64)]
        if len(body) % 64 == 0:  # the body must end with a short line, even an empty one
            parts.append(b"\n")
    mac_input = b"".join([*parts, b"---"])
    return mac_input + b" " + b64encode(header_mac(file_key, mac_input)) + b"\n"

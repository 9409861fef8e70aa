"""The export memo's entries (vault/cli/memo.py): what a dependency looks like now, and the
bytes the agent keeps. Imported on every `env` and `get` that a session unlocks: os, stat and
BLAKE2b only.
"""

# os.path and os.stat, not pathlib: see the module docstring
# ruff: noqa: PTH116
from __future__ import annotations

import os
import stat

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

FORMAT = b"keyvault-memo-2"
MISSING = b"missing"
READ_AT_MOST = 256 << 20  # one file: the largest vault the agent decrypts (wire.MAX_BODY)
TOO_LARGE = b" too large"  # a file never digested, so never a dependency
Printed = list[tuple[bytes, bytes]]  # (output.TEXT or output.BYTES, what was written)
Dependency = tuple[bytes, str, bytes]  # (kind, name, how it was)


def status(path: str) -> bytes:
    """A file's status as `open` would meet it: its own, and its target's if it is a link."""
    try:
        own = os.lstat(path)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return b"error %d" % (exc.errno or 0)
    line = _status_line(own)
    if stat.S_ISLNK(own.st_mode):
        try:
            line += b" -> " + _status_line(os.stat(path))
        except OSError as exc:
            line += b" -> error %d" % (exc.errno or 0)
    return line


def _status_line(info: os.stat_result) -> bytes:
    return b"%d %d %o %d %d %d %d" % (
        info.st_dev,
        info.st_ino,
        info.st_mode,
        info.st_uid,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


class Budget:
    """How many more bytes checking one entry may read. An entry comes from the agent, which
    any process of ours can fill: it could name a sparse file of a petabyte, or one large
    file a thousand times, and `env` would read for hours."""

    __slots__ = ("left",)

    def __init__(self, left: int = 2 * READ_AT_MOST) -> None:
        self.left = left


def contents(path: str, *, with_status: bool = True, budget: Budget | None = None) -> bytes:
    """`status(path)` and a digest of what a regular file holds, or TOO_LARGE past
    READ_AT_MOST bytes or what is left of `budget`. Anything else is never opened: opening
    a FIFO, even without blocking, lets a writer waiting for its reader go on, and it would
    write into a pipe that we close at once."""
    line = status(path) if with_status else b""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return line
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
    except OSError:
        return line
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return line
        most = min(READ_AT_MOST, budget.left) if budget is not None else READ_AT_MOST
        digest, read = blake2b(digest_size=32), 0
        while chunk := os.read(fd, min(1 << 20, most - read + 1)):
            read += len(chunk)
            if read > most:
                return line + TOO_LARGE
            digest.update(chunk)
        if budget is not None:
            budget.left -= read
        return line + b" " + digest.hexdigest().encode()
    except OSError:
        return line + b" unreadable"
    finally:
        os.close(fd)


def encode(printed: Printed, dependencies: list[Dependency]) -> bytes:
    """An entry: what was printed, then each dependency, as length-prefixed parts."""
    parts = [FORMAT, b"%d" % len(printed)]
    for kind, data in printed:
        parts += [kind, data]
    for kind, name, seen in dependencies:
        parts += [kind, os.fsencode(name), seen]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def parse(
    entry: bytes,
) -> tuple[Printed, list[Dependency]] | None:
    """The entry's printed parts and dependencies; None for anything malformed."""
    parts: list[bytes] = []
    index = 0
    while index < len(entry):
        size = int.from_bytes(entry[index : index + 4], "big")
        index += 4
        if index + size > len(entry):
            return None
        parts.append(entry[index : index + size])
        index += size
    if len(parts) < 2 or parts[0] != FORMAT or not parts[1].isdigit():
        return None
    count = int(parts[1])
    printed_end = 2 + 2 * count
    rest = parts[printed_end:]
    if len(parts) < printed_end or len(rest) % 3:
        return None
    printed = [(parts[i], parts[i + 1]) for i in range(2, printed_end, 2)]
    dependencies = [
        (rest[i], os.fsdecode(rest[i + 1]), rest[i + 2]) for i in range(0, len(rest), 3)
    ]
    return printed, dependencies


def feed(digest: object, part: str | bytes) -> None:
    """Add one length-delimited part to a running digest."""
    data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogateescape")
    digest.update(len(data).to_bytes(8, "big") + data)  # type: ignore[attr-defined]


def hasher(*, person: bytes = b"") -> blake2b:
    """A running 32-byte BLAKE2b (C's `_blake2`: `hashlib` would load OpenSSL, ~2 ms)."""
    return blake2b(digest_size=32, person=person)


def digest_of(value: str) -> bytes:
    """A variable's value as an entry keeps it: never the value itself."""
    return blake2b(value.encode("utf-8", "surrogateescape"), digest_size=32).hexdigest().encode()

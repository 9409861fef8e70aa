"""The session agent: one unlocked identity, held in memory, handed only to our own uid.

`vault.session.start` runs `python -P -m vault.agent` with stdin a pipe carrying two lines:
the identity, then JSON settings `{"socket": path, "ttl": s, "idle": s | null}` (never argv or
the environment, which other users can read or children inherit). The agent hardens itself
before reading anything, binds the socket, then forks: the first process exits 0 (or 2 / 3,
see `session.AGENT_FAILURES`) once the socket listens, the second serves until the TTL, the
idle timeout, `lock`, SIGTERM or SIGINT; SIGHUP is ignored so closing the terminal keeps the
session, as with ssh-agent.

Protocol, one request per connection, one JSON line each way:
`{"op": "get"}` → `{"identity": …, "expires_at": …, "idle_expires_at": …, "pid": …}` (and the
idle deadline moves), `{"op": "status"}` → the same without the identity, `{"op": "lock"}` →
`{"locked": true}` after the identity is wiped and the socket removed. Expiry is checked on
every request too, so a late request never gets the secret.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from vault.session import IDENTITY_PREFIX, MAX_MESSAGE, peer_uid, read_line

EXIT_BAD_SETTINGS = 2
EXIT_NO_SOCKET = 3
CONNECTION_TIMEOUT = 2.0  # how long one client may take; the agent serves one at a time
PR_SET_DUMPABLE = 4  # <linux/prctl.h>
IDENTITY_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


def _steady_clock() -> float:
    """Seconds that keep counting through suspend (CLOCK_BOOTTIME where Linux has it)."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()


class Deadlines:
    """The TTL and idle deadlines, each kept on the wall clock and on a steady clock.

    Expiring on whichever passes first means setting the clock back does not extend a
    session, and neither does a suspend on macOS, where the monotonic clock stops.
    """

    def __init__(
        self,
        ttl: float,
        idle: float | None,
        *,
        wall: Callable[[], float] = time.time,
        steady: Callable[[], float] = _steady_clock,
    ) -> None:
        self._wall, self._steady, self._idle = wall, steady, idle
        self._ttl_end = self._after(ttl)
        self._idle_end = self._after(idle) if idle else None

    def _after(self, seconds: float) -> tuple[float, float]:
        return self._wall() + seconds, self._steady() + seconds

    def touch(self) -> None:
        """The identity was used: the idle period starts again."""
        if self._idle:
            self._idle_end = self._after(self._idle)

    def remaining(self) -> float:
        ends = [self._ttl_end] if self._idle_end is None else [self._ttl_end, self._idle_end]
        now_wall, now_steady = self._wall(), self._steady()
        return min(min(wall - now_wall, steady - now_steady) for wall, steady in ends)

    def report(self) -> dict[str, float | None]:
        idle_end = self._idle_end[0] if self._idle_end else None
        return {"expires_at": self._ttl_end[0], "idle_expires_at": idle_end}


class Agent:
    """Serves one identity stored in a (best-effort mlocked) bytearray that `stop` zeroes."""

    def __init__(
        self,
        buffer: bytearray,
        length: int,
        listener: socket.socket,
        path: Path,
        deadlines: Deadlines,
    ) -> None:
        self._buffer, self._secret = buffer, memoryview(buffer)[:length]
        self._listener, self._deadlines = listener, deadlines
        # remove only the socket we bound: a newer agent may have replaced it meanwhile
        self._path = path
        self._inode = _inode(self._path)
        self._running = True

    def serve(self) -> None:
        while self._running:
            remaining = self._deadlines.remaining()
            if remaining <= 0:
                return
            self._listener.settimeout(remaining)
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn, contextlib.suppress(OSError, ValueError):
                self._handle(conn)

    def stop(self) -> None:
        """Wipe the identity and remove our socket; safe to call twice."""
        self._buffer[:] = bytes(len(self._buffer))
        self._running = False
        if self._inode is not None and _inode(self._path) == self._inode:
            with contextlib.suppress(OSError):
                self._path.unlink()
        self._inode = None

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(CONNECTION_TIMEOUT)
        if peer_uid(conn) not in (None, os.geteuid()):
            return  # another user: close without a word
        request = json.loads(read_line(conn) or b"null")
        op = request.get("op") if isinstance(request, dict) else None
        if self._deadlines.remaining() <= 0:
            self.stop()
            _send(conn, {"error": "expired"})
            return
        self.OPS.get(op, Agent._unknown)(self, conn)

    def _report(self) -> dict[str, object]:
        return {"pid": os.getpid(), **self._deadlines.report()}

    def _get(self, conn: socket.socket) -> None:
        self._deadlines.touch()
        _send(conn, self._report(), secret=self._secret)

    def _status(self, conn: socket.socket) -> None:
        _send(conn, self._report())

    def _lock(self, conn: socket.socket) -> None:
        self.stop()
        _send(conn, {"locked": True})

    def _unknown(self, conn: socket.socket) -> None:
        _send(conn, {"error": "unknown op"})

    OPS: ClassVar[dict[object, Callable[[Agent, socket.socket], None]]] = {
        "get": _get,
        "status": _status,
        "lock": _lock,
    }


def _send(
    conn: socket.socket, reply: dict[str, object], *, secret: memoryview | None = None
) -> None:
    """One JSON line; the secret goes out by scatter-gather so no new object holds a copy."""
    body = json.dumps(reply).encode()
    if secret is None:
        conn.sendall(body + b"\n")
        return
    parts = [memoryview(b'{"identity": "'), secret, memoryview(b'", ' + body[1:] + b"\n")]
    while parts:
        sent = conn.sendmsg(parts)
        while parts and sent >= len(parts[0]):
            sent -= len(parts.pop(0))
        if parts:
            parts[0] = parts[0][sent:]


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds through main's finally, which wipes and unlinks


def _harden() -> None:
    """Keep the secret out of core dumps and away from /proc/<pid>/mem and ptrace.

    Non-dumpable also makes /proc/<pid>/{mem,environ,maps} root-owned, so even other
    processes of the same user cannot read them (root still can).
    """
    os.umask(0o177)  # the socket is created 0600
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGINT, _exit_on_signal)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform == "linux":
        _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def _lock_memory(buffer: bytearray) -> bool:
    """Best effort: keep the secret's page out of swap (fails under a tiny RLIMIT_MEMLOCK).

    Only the buffer, not mlockall: MCL_FUTURE would make Python's allocations fail once
    the process outgrows RLIMIT_MEMLOCK.
    """
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    result: int = _libc().mlock(ctypes.c_void_p(address), ctypes.c_size_t(len(buffer)))
    return result == 0


def _read_settings(buffer: bytearray) -> tuple[int, str, float, float | None]:
    """Fill `buffer` from stdin in place; return (identity length, socket, ttl, idle)."""
    view, size = memoryview(buffer), 0
    while size < len(buffer) and (count := os.readv(0, [view[size:]])):
        size += count
    length = buffer.find(b"\n", 0, size)
    if length < 0 or size == len(buffer):
        raise ValueError("bad settings")
    if not buffer.startswith(IDENTITY_PREFIX.encode()) or not IDENTITY_BYTES.issuperset(
        view[:length]
    ):
        raise ValueError("bad identity")
    settings = json.loads(bytes(view[length + 1 : size]))
    path, ttl, idle = settings.get("socket"), settings.get("ttl"), settings.get("idle")
    if not isinstance(path, str) or not _positive(ttl) or not (idle is None or _positive(idle)):
        raise ValueError("bad settings")
    return length, path, float(ttl), None if idle is None else float(idle)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and value > 0


def _listen(path: str) -> socket.socket:
    """Bind under a temporary name, then rename: a stale socket is replaced atomically."""
    temporary = Path(path).parent / f".{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # missing_ok: a killed agent that had our pid may have left one behind
        temporary.unlink(missing_ok=True)
        listener.bind(str(temporary))
        listener.listen(16)
        temporary.rename(path)
    except OSError:
        listener.close()
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return listener


def main() -> int:
    _harden()
    buffer = bytearray(MAX_MESSAGE)
    _lock_memory(buffer)
    try:
        length, path, ttl, idle = _read_settings(buffer)
        deadlines = Deadlines(ttl, idle)
    except (OSError, ValueError):
        buffer[:] = bytes(len(buffer))
        return EXIT_BAD_SETTINGS
    try:
        listener = _listen(path)
    except OSError:
        buffer[:] = bytes(len(buffer))
        return EXIT_NO_SOCKET
    if os.fork():
        os._exit(0)  # tells `start` the socket listens; the server is not its child
    agent = Agent(buffer, length, listener, Path(path), deadlines)
    try:
        _lock_memory(buffer)  # memory locks are not inherited across fork
        with contextlib.suppress(OSError):
            fd = os.open(os.devnull, os.O_RDONLY)
            os.dup2(fd, 0)
            os.close(fd)
        agent.serve()
    finally:
        agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The session agent: one unlocked identity, held in memory, used only for our own uid.

`vault.session.client.start` runs `python -P -m vault.session.agent` with stdin a pipe
carrying two lines:
the identity, then JSON settings `{"socket": path, "ttl": s, "idle": s | null}` (never argv or
the environment, which other users can read or children inherit). The agent hardens itself
before reading anything, binds the socket, then forks: the first process exits 0 (or 2 / 3,
see `session.AGENT_FAILURES`) once the socket listens, the second serves until the TTL, the
idle timeout, `lock`, SIGTERM or SIGINT; SIGHUP is ignored so closing the terminal keeps the
session, as with ssh-agent.

Protocol, one request per connection, one message each way, framed by `wire.FRAME` (a
JSON header and a binary body):
`decrypt` + an age file → its plaintext and the deadlines (the idle deadline moves), or
`{"error": "refused", "kind": <error class>, "message": …}` when the file does not open;
`status` → `{"recipient": "age1…", "expires_at": …, "idle_expires_at": …, "pid": …}`;
`lock` → `{"locked": true}` after the identity is dropped and the socket removed;
`memo-put` + KEY (32 bytes) and an entry → `{"memo": "kept"}`, and `memo-get` + KEY → the entry
and `{"memo": "hit"}`, or `{"memo": "miss"}`: the export memo (vault/cli/memo.py) of
`keyvault env` and `get`. The agent keeps entries as opaque bytes, in memory only, a bounded
number, dropped on lock and expiry; it never reads them. The identity itself is never sent.
Expiry is checked on every request too, so a late request never gets a plaintext or an entry.
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
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from vault import age
from vault.errors import KeyvaultError
from vault.session.client import IDENTITY_PREFIX
from vault.session.wire import MAX_HEADER, peer_uid, recv_message, refused, send_message

EXIT_BAD_SETTINGS = 2
EXIT_NO_SOCKET = 3
CONNECTION_TIMEOUT = 2.0  # how long a client may stall between two reads or writes
# how long a client may take to send its whole request: a 256 MiB vault arrives in well under
# a second here; a client that trickles bytes loses its slot instead of starving the others
REQUEST_DEADLINE = 5.0
MAX_CLIENTS = 8  # connections served at once, each on its own thread; more wait to be accepted
BACKLOG = 128  # connections waiting: a burst of shells opening a large vault must not be refused
WAKE_INTERVAL = 0.5  # the accept loop notices `lock` (from a client thread) this quickly
PR_SET_DUMPABLE = 4  # <linux/prctl.h>
MEMO_KEY_BYTES = 32
MEMO_ENTRIES = 64  # most recently used first out; a shell start needs one
MEMO_ENTRY_BYTES = 256 << 10  # one entry: an export and the files it depends on (~10 KiB)
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


class MemoStore:
    """The export memo's entries: opaque bytes by key, least recently used dropped first."""

    def __init__(self) -> None:
        self._entries: dict[bytes, bytes] = {}
        self._guard = threading.Lock()  # each client is served on its own thread

    def get(self, key: bytes) -> bytes | None:
        with self._guard:
            entry = self._entries.pop(key, None)
            if entry is not None:
                self._entries[key] = entry  # now the most recently used
            return entry

    def put(self, key: bytes, entry: bytes) -> None:
        with self._guard:
            self._entries.pop(key, None)
            self._entries[key] = entry
            while len(self._entries) > MEMO_ENTRIES:
                del self._entries[next(iter(self._entries))]

    def clear(self) -> None:
        with self._guard:
            self._entries.clear()


class Agent:
    """Serves one identity: decrypts what our own uid sends it, and never hands the key out.

    The X25519 key lives in an OpenSSL key object, which OpenSSL wipes when it is freed.
    """

    def __init__(
        self,
        identity: age.X25519Identity,
        listener: socket.socket,
        path: Path,
        deadlines: Deadlines,
    ) -> None:
        self._identity: age.X25519Identity | None = identity
        self._recipient = identity.recipient().to_string()
        self._listener, self._deadlines = listener, deadlines
        # remove only the socket we bound: a newer agent may have replaced it meanwhile
        self._path = path
        self._inode = _inode(self._path)
        self._running = True
        self._memo = MemoStore()

    def serve(self) -> None:
        """Accept until the session ends; each client is served on its own thread, so one
        that stalls (or a large vault being decrypted) does not hold up the others."""
        slots = threading.BoundedSemaphore(MAX_CLIENTS)
        while self._running:
            remaining = self._deadlines.remaining()
            if remaining <= 0:
                return
            if not slots.acquire(timeout=min(remaining, WAKE_INTERVAL)):
                continue
            self._listener.settimeout(min(remaining, WAKE_INTERVAL))
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                slots.release()
                continue
            worker = threading.Thread(target=self._serve_one, args=(conn, slots), daemon=True)
            worker.start()

    def _serve_one(self, conn: socket.socket, slots: threading.BoundedSemaphore) -> None:
        try:
            with conn, contextlib.suppress(OSError, ValueError):
                self._handle(conn)
        finally:
            slots.release()

    def stop(self) -> None:
        """Drop the identity, remove our socket and end the accept loop; safe to call twice."""
        self._retire()
        self._running = False

    def _retire(self) -> None:
        """Drop the identity and remove our socket (the process may still finish a reply)."""
        self._identity = None
        self._memo.clear()
        if self._inode is not None and _inode(self._path) == self._inode:
            with contextlib.suppress(OSError):
                self._path.unlink()
        self._inode = None

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(CONNECTION_TIMEOUT)
        if peer_uid(conn) not in (None, os.geteuid()):
            return  # another user: close without a word
        request, body = recv_message(conn, deadline=time.monotonic() + REQUEST_DEADLINE)
        if self._deadlines.remaining() <= 0 or self._identity is None:
            self.stop()
            send_message(conn, {"error": "expired"})
            return
        op = request.get("op")
        handler = self.OPS.get(op, Agent._unknown) if isinstance(op, str) else Agent._unknown
        handler(self, conn, body)

    def _report(self) -> dict[str, object]:
        return {"pid": os.getpid(), "recipient": self._recipient, **self._deadlines.report()}

    def _decrypt(self, conn: socket.socket, sealed: bytes) -> None:
        identities = [self._identity] if self._identity is not None else []
        try:
            plain = age.decrypt(sealed, identities)
        except KeyvaultError as exc:  # a damaged or foreign file: say why, keep serving
            send_message(conn, refused(exc))
            return
        del sealed
        self._deadlines.touch()
        send_message(conn, self._report(), plain)

    def _status(self, conn: socket.socket, _body: bytes) -> None:
        send_message(conn, self._report())

    def _lock(self, conn: socket.socket, _body: bytes) -> None:
        # identity and socket go first, so `start` may bind a new agent once it reads this
        # reply; the loop ends only after the reply is out (ending it first let the process
        # exit under this thread, and the client never heard "locked")
        self._retire()
        try:
            send_message(conn, {"locked": True})
        finally:
            self._running = False

    def _memo_get(self, conn: socket.socket, key: bytes) -> None:
        entry = self._memo.get(key) if len(key) == MEMO_KEY_BYTES else None
        if entry is None:
            send_message(conn, {"memo": "miss"})
            return
        self._deadlines.touch()  # a use of the session, as a decrypt is
        send_message(conn, {"memo": "hit"}, entry)

    def _memo_put(self, conn: socket.socket, body: bytes) -> None:
        key, entry = body[:MEMO_KEY_BYTES], body[MEMO_KEY_BYTES:]
        if len(key) < MEMO_KEY_BYTES or not entry or len(entry) > MEMO_ENTRY_BYTES:
            send_message(conn, {"error": "memo entry refused"})
            return
        self._memo.put(key, entry)
        send_message(conn, {"memo": "kept"})

    def _unknown(self, conn: socket.socket, _body: bytes) -> None:
        send_message(conn, {"error": "unknown op"})

    OPS: ClassVar[dict[str, Callable[[Agent, socket.socket, bytes], None]]] = {
        "decrypt": _decrypt,
        "status": _status,
        "lock": _lock,
        "memo-get": _memo_get,
        "memo-put": _memo_put,
    }


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


def _read_settings() -> tuple[age.X25519Identity, str, float, float | None]:
    """The identity and settings from stdin: (identity, socket path, ttl, idle).

    The identity's text is read into a buffer that is wiped as soon as the key is parsed.
    """
    buffer = bytearray(MAX_HEADER)
    view, size = memoryview(buffer), 0
    try:
        while size < len(buffer) and (count := os.readv(0, [view[size:]])):
            size += count
        length = buffer.find(b"\n", 0, size)
        if length < 0 or size == len(buffer):
            raise ValueError("bad settings")
        if not buffer.startswith(IDENTITY_PREFIX.encode()) or not IDENTITY_BYTES.issuperset(
            view[:length]
        ):
            raise ValueError("bad identity")
        try:
            identity = age.X25519Identity.parse(bytes(view[:length]).decode("ascii"))
        except KeyvaultError:
            raise ValueError("bad identity") from None
        settings = json.loads(bytes(view[length + 1 : size]))
    finally:
        view.release()
        buffer[:] = bytes(len(buffer))
    path, ttl, idle = settings.get("socket"), settings.get("ttl"), settings.get("idle")
    if not isinstance(path, str) or not _positive(ttl) or not (idle is None or _positive(idle)):
        raise ValueError("bad settings")
    return identity, path, float(ttl), None if idle is None else float(idle)


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
        listener.listen(BACKLOG)
        temporary.rename(path)
    except OSError:
        listener.close()
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return listener


def main() -> int:
    _harden()
    try:
        identity, path, ttl, idle = _read_settings()
        deadlines = Deadlines(ttl, idle)
    except (OSError, ValueError):
        return EXIT_BAD_SETTINGS
    try:
        listener = _listen(path)
    except OSError:
        return EXIT_NO_SOCKET
    if os.fork():
        os._exit(0)  # tells `start` the socket listens; the server is not its child
    agent = Agent(identity, listener, Path(path), deadlines)
    del identity
    try:
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

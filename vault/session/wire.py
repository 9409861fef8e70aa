"""The unlock-session transport, shared by the client (vault/session.py) and the agent
(vault/agent.py): message framing, the peer-uid check, and the client's exchange.

Every message is FRAME, two 32-bit big-endian lengths (header, body), then a JSON object of at
most MAX_HEADER (4 KiB), then a binary body of at most MAX_BODY (256 MiB) sent as is. A
connection carries one request and one reply (`exchange`). Both ends first check the uid of
the process at the other end (`peer_uid`: SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and
FreeBSD) and talk only to their own uid; where the platform cannot tell, only the private
folder around the socket guards it. A file the agent cannot open comes back as a refusal
(`refused`), which the client raises as the same error class (`refusal`).

This module is imported on the hot path of every command, so it imports only cheap modules;
json (which loads re and enum) only once a JSON header is written or read: the export memo
(vault/cli/memo.py) speaks in raw frames (`exchange_frames`) and never needs it.
"""

from __future__ import annotations

# the C module, not `socket`: the wrapper's enums and selectors cost ~2 ms on every command
import _socket as socket
import os
import struct
import sys
import time

from vault.errors import (
    AgeFormatError,
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    DamagedFile,
    KeyvaultError,
    NoMatchingIdentity,
    WorkFactorTooHigh,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CONNECT_TIMEOUT = 2.0  # to reach the agent; a live one has room in its backlog at once
# for the exchange: ~1 ms for one key, ~40 ms for a 10,000-key vault, longer when a burst of
# commands (a tmux session restoring 30 shells) queues up for it
REPLY_TIMEOUT = 15.0
MAX_HEADER = 4096  # one message's JSON part; an identity is 74 characters
MAX_BODY = 256 << 20  # one sealed vault or its plaintext: ~450,000 keys
RECV_CHUNK = 256 << 10  # one read; a reader never holds more than this beyond what arrived
FRAME = struct.Struct("!II")  # every message: header length, body length, header, body
# what the agent may report when it cannot open a file: raised by the client as the same class
REFUSALS: tuple[type[KeyvaultError], ...] = (
    AgeFormatError,
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    WorkFactorTooHigh,
    NoMatchingIdentity,
)


def exchange(
    path: str, request: dict[str, object], body: bytes = b""
) -> tuple[dict[str, object], bytes] | None:
    """The client's side: one request to the agent at `path` and its reply; None when nobody
    (trustworthy) answers, or the reply is malformed."""
    return exchange_reporting(path, request, body)[0]


def exchange_reporting(
    path: str, request: dict[str, object], body: bytes = b""
) -> tuple[tuple[dict[str, object], bytes] | None, bool]:
    """`exchange`, and whether an agent of ours took the connection: (None, True) is an
    agent that is there but gave no usable answer in time (busy, stuck, or too old)."""
    import json  # noqa: PLC0415 - see the module docstring

    replied, connected = _exchange(path, json.dumps(request).encode(), body)
    if replied is None:
        return None, connected
    try:
        return (_json_header(replied[0]), replied[1]), True
    except ValueError:
        return None, True


def exchange_frames(path: str, header: bytes, body: bytes = b"") -> tuple[bytes, bytes] | None:
    """One request whose header the caller encoded, and the reply's raw header and body;
    None when nobody (trustworthy) answers."""
    return _exchange(path, header, body)[0]


def _exchange(path: str, header: bytes, body: bytes) -> tuple[tuple[bytes, bytes] | None, bool]:
    if not path or len(body) > MAX_BODY or len(header) > MAX_HEADER:
        return None, False
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except (OSError, AttributeError):
        return None, False
    connected = False
    try:
        _connect(sock, path)
        if peer_uid(sock) not in (None, os.geteuid()):
            return None, False
        connected = True
        sock.settimeout(REPLY_TIMEOUT)  # a large file waits to be read while others are served
        send_frame(sock, header, body)
        return recv_frame(sock), True
    except (OSError, ValueError, struct.error):
        return None, connected
    finally:
        sock.close()


def _connect(sock: socket.socket, path: str) -> None:
    """Connect, waiting while the agent's backlog is full (a burst of commands): it is busy,
    not gone. Raises OSError when nobody listens or after CONNECT_TIMEOUT."""
    sock.settimeout(CONNECT_TIMEOUT)
    deadline, pause = time.monotonic() + CONNECT_TIMEOUT, 0.005
    while True:
        try:
            sock.connect(path)
            return
        except BlockingIOError:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


def send_message(sock: socket.socket, header: dict[str, object], body: bytes = b"") -> None:
    """One message: FRAME (the two lengths), the JSON header, then the body as is."""
    import json  # noqa: PLC0415 - see the module docstring

    send_frame(sock, json.dumps(header).encode(), body)


def send_frame(sock: socket.socket, header: bytes, body: bytes = b"") -> None:
    sock.sendall(FRAME.pack(len(header), len(body)) + header)
    if body:
        sock.sendall(body)


def recv_message(
    sock: socket.socket, *, deadline: float | None = None
) -> tuple[dict[str, object], bytes]:
    """The next message; ValueError when it is malformed or over the limits, OSError when
    the connection fails or closes early, TimeoutError when `deadline` (a
    `time.monotonic()` value) passes first."""
    header, body = recv_frame(sock, deadline=deadline)
    return _json_header(header), body


def recv_frame(sock: socket.socket, *, deadline: float | None = None) -> tuple[bytes, bytes]:
    """The next message's raw header and body (see `recv_message`)."""
    header_size, body_size = FRAME.unpack(recv_exact(sock, FRAME.size, deadline))
    if header_size > MAX_HEADER or body_size > MAX_BODY:
        raise ValueError("message over the size limits")
    return recv_exact(sock, header_size, deadline), recv_exact(sock, body_size, deadline)


def _json_header(raw: bytes) -> dict[str, object]:
    import json  # noqa: PLC0415 - see the module docstring

    header = json.loads(raw)
    if not isinstance(header, dict):
        raise ValueError("message header is not an object")
    return header


def recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    """Exactly `size` bytes; ConnectionError when the peer closes first, TimeoutError at
    `deadline`. Memory grows with what arrives, never with what the peer announced: a peer
    that claims 256 MiB and sends one byte a second costs one byte a second."""
    chunks: list[bytes] = []
    received = 0
    while received < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the peer took too long to send its message")
            current = sock.gettimeout()
            sock.settimeout(left if current is None else min(current, left))
        chunk = sock.recv(min(size - received, RECV_CHUNK))
        if not chunk:
            raise ConnectionError("the peer closed the connection early")
        chunks.append(chunk)
        received += len(chunk)
    return b"".join(chunks)


def refused(error: KeyvaultError) -> dict[str, object]:
    """The agent's reply for a file it could not open: the error's class and message."""
    return {"error": "refused", "kind": type(error).__name__, "message": error.message}


def refusal(answer: dict[str, object]) -> KeyvaultError:
    """The agent's report of a file it could not open, as the error class it named."""
    kind, message = answer.get("kind"), answer.get("message")
    text = message if isinstance(message, str) else "the session agent could not open the file"
    error_class = next((c for c in REFUSALS if c.__name__ == kind), DamagedFile)
    return error_class(text)


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end, or None where the platform cannot tell."""
    reader = PEER_UID_READERS.get(sys.platform.rstrip("0123456789"))
    return reader(sock) if reader else None


def _peer_uid_linux(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("=iII"))
    _pid, uid, _gid = struct.unpack("=iII", creds)
    return int(uid)


def _peer_uid_bsd(sock: socket.socket) -> int:
    # getpeereid() equivalent: struct xucred {u_int cr_version; uid_t cr_uid; ...} (76 bytes)
    sol_local, local_peercred = 0, 1
    creds = sock.getsockopt(sol_local, local_peercred, 76)
    _version, uid = struct.unpack_from("=II", creds)
    return int(uid)


PEER_UID_READERS: dict[str, Callable[[socket.socket], int]] = {
    "linux": _peer_uid_linux,
    "darwin": _peer_uid_bsd,
    "freebsd": _peer_uid_bsd,
}

"""Real servers on 127.0.0.1 that misbehave on purpose, for the network security tests.

- `RecordingProxy`: a proxy listener that keeps every byte it receives and forwards nothing,
  so a test can prove that no request (and no Authorization header) ever reached a proxy.
- `HostileServer`: an HTTP/1.1 server whose every answer is one of `MODES`: a body trickled
  one byte at a time, headers trickled one byte at a time, a huge body, a gzip bomb, or a
  401 whose message echoes the key it was sent, altered by `echo` (a relay's habit), or
  `payload` as the raw answer followed by a close (`raw`), or by silence until the client
  hangs up (`stall`).

Each runs its own asyncio loop in a daemon thread, like tests/fake_proxy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

LOOPBACK = "127.0.0.1"


class _LoopServer:
    """An asyncio server on loopback in its own thread; subclasses implement `_client`."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Any:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(self._accept, LOOPBACK, 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._client(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class RecordingProxy(_LoopServer):
    """Keeps whatever a client sends (up to 64 KiB a connection), answers 502, forwards nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[bytes] = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        with contextlib.suppress(TimeoutError):
            while len(data) < 65536 and b"\r\n\r\n" not in data:
                chunk = await asyncio.wait_for(reader.read(4096), 2)
                if not chunk:
                    break
                data += chunk
        self.received.append(data)
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()


def gzip_bomb(decompressed: int) -> bytes:
    """`decompressed` zero bytes, gzip-compressed (about 1,000 to 1)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(decompressed >> 20)]
    return b"".join(parts) + packer.flush()


Mode = Callable[["HostileServer", asyncio.StreamWriter], Awaitable[None]]


class HostileServer(_LoopServer):
    """Answers every request with `mode` (see MODES); `interval` paces the trickles,
    `size` is the huge body's length, `payload` the gzip bomb."""

    def __init__(
        self,
        mode: str,
        *,
        interval: float = 0.5,
        size: int = 0,
        payload: bytes = b"",
        echo: Callable[[str], str] = lambda key: key,
    ) -> None:
        super().__init__()
        self.mode, self.interval, self.size, self.payload = mode, interval, size, payload
        self.echo = echo
        self.authorization = ""  # the bearer token of the last request
        self.requests = 0
        self.sent = 0  # body bytes written, all connections together

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.authorization = _bearer(head)
            length = _content_length(head)
            if length:
                await reader.readexactly(length)
            self.requests += 1
            await MODES[self.mode](self, writer)

    async def _trickle(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        for index in range(len(data)):
            writer.write(data[index : index + 1])
            await writer.drain()
            self.sent += 1
            await asyncio.sleep(self.interval)


async def _trickle_body(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    body = b'{"object": "list", "data": []}' + b" " * 100_000
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n")
    await server._trickle(writer, body)


async def _trickle_headers(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + b"x-padding: " + b"a" * 100_000 + b"\r\n\r\n"
    await server._trickle(writer, head)


async def _huge(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {server.size}\r\n"
    writer.write(head.encode() + b"\r\n" + b'{"data": ["')
    block, left = b"x" * (1 << 20), server.size - 11
    while left > 0:
        writer.write(block[:left])
        await writer.drain()
        server.sent += min(left, len(block))
        left -= len(block)


async def _gzip_bomb(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    head = (
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n"
        f"content-length: {len(server.payload)}\r\n\r\n"
    )
    writer.write(head.encode() + server.payload)
    await writer.drain()
    server.sent += len(server.payload)


async def _echo_key(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    message = f"invalid token: {server.echo(server.authorization)} (check your key)"
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode()
    head = (
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()


async def _raw(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    """`payload` as the whole answer, then the connection closes: a body without a length
    (HTTP/1.0 style) ends there, so a cut one looks complete to HTTP's own framing."""
    writer.write(server.payload)
    await writer.drain()
    writer.close()
    raise ConnectionResetError  # ends this connection's loop in _LoopServer._accept


async def _stall(server: HostileServer, writer: asyncio.StreamWriter) -> None:
    """`payload` (say, headers and half a chunked body), then silence with the connection
    open, until the client gives up."""
    writer.write(server.payload)
    await writer.drain()
    while not writer.transport.is_closing():  # the client hung up
        await asyncio.sleep(0.05)


MODES: dict[str, Mode] = {
    "raw": _raw,
    "stall": _stall,
    "trickle-body": _trickle_body,
    "trickle-headers": _trickle_headers,
    "huge": _huge,
    "gzip-bomb": _gzip_bomb,
    "echo-key": _echo_key,
}


def _bearer(head: bytes) -> str:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip().decode("latin-1").removeprefix("Bearer ")
    return ""


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0

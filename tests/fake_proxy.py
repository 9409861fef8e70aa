"""A tiny forward proxy on 127.0.0.1 for tests: CONNECT tunnels and plain-HTTP forwarding.

It counts what passed through, so a test can prove that traffic went via the proxy (and that
a CONNECT tunnel kept the request, and the key in it, out of the proxy's sight). It forwards
only to loopback addresses: tests never reach anything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ForwardProxy:
    def __init__(self) -> None:
        self.port = 0
        self.connects: Counter[str] = Counter()  # "host:port" of CONNECT tunnels
        self.forwards: Counter[str] = Counter()  # absolute URLs forwarded in plain HTTP
        self.seen_authorization: list[str] = []  # Authorization headers the proxy could read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ForwardProxy:
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
        server = loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
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

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method.upper() == "CONNECT":
                await self._tunnel(target, reader, writer)
            else:
                await self._forward(head, target, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError):
            pass
        finally:
            writer.close()

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        if host not in LOOPBACK:
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            return
        self.connects[target] += 1
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _pipe_both(reader, writer, up_reader, up_writer)

    async def _forward(
        self, head: bytes, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        url = urlsplit(target)
        if url.hostname not in LOOPBACK or url.port is None:
            writer.write(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
            return
        self.forwards[target] += 1
        lines = head.decode("latin-1").split("\r\n")
        method = lines[0].split(" ", 1)[0]
        path = url.path + (f"?{url.query}" if url.query else "")
        kept = [
            ln for ln in lines[1:] if ln and not ln.lower().startswith(("connection:", "proxy-"))
        ]
        length = 0
        for line in kept:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            if name.lower() == "authorization":
                self.seen_authorization.append(value.strip())
        body = await reader.readexactly(length) if length else b""
        up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port)
        request = "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""])
        up_writer.write(request.encode("latin-1") + body)
        await up_writer.drain()
        # one request per client connection: answer, then close so the client reconnects
        writer.write(await up_reader.read())
        await writer.drain()
        up_writer.close()


async def _pipe_both(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError, RuntimeError):
            dst.close()

    await asyncio.gather(pipe(a_reader, b_writer), pipe(b_reader, a_writer))


class Socks5Proxy(ForwardProxy):
    """A SOCKS5 server (RFC 1928, no authentication, CONNECT only) in the same harness: the
    kind Clash, v2ray and `ssh -D` offer. `connects` counts "host:port" targets; like the HTTP
    proxy it reaches loopback only."""

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if version != 5 or 0 not in methods:
                writer.write(b"\x05\xff")  # no acceptable method
                return
            writer.write(b"\x05\x00")
            _version, command, _reserved, kind = await reader.readexactly(4)
            host = await _socks_address(reader, kind)
            port = int.from_bytes(await reader.readexactly(2), "big")
            if command != 1 or host not in LOOPBACK:
                writer.write(b"\x05\x02\x00\x01" + bytes(6))  # not allowed by ruleset
                return
            self.connects[f"{host}:{port}"] += 1
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01" + bytes(6))  # succeeded; bound address unused
            await writer.drain()
            await _pipe_both(reader, writer, up_reader, up_writer)
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError):
            pass
        finally:
            writer.close()


async def _socks_address(reader: asyncio.StreamReader, kind: int) -> str:
    if kind == 1:  # IPv4
        return ".".join(str(b) for b in await reader.readexactly(4))
    if kind == 3:  # a domain name, resolved by the proxy (socks5h)
        size = (await reader.readexactly(1))[0]
        return (await reader.readexactly(size)).decode("ascii")
    if kind == 4:  # IPv6
        raw = await reader.readexactly(16)
        return "::1" if raw == bytes(15) + b"\x01" else raw.hex()
    raise ValueError("unknown address type")

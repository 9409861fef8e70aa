"""The concurrency gate: `concurrency` lanes spread over several small httpx clients.

Why not one client with 64 connections: httpcore's pool rescans every connection for every
queued request, so its cost grows with the square of the pool size. Measured here (1,000 keys,
100 ms latency, 64 in flight): one pool of 64 took 10.5 s, sixteen pools of 4 took 1.8 s.
A lane is held only while a request is on the wire, never while a retry sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Final

import httpx

from vault.errors import ConfigError
from vault.store.config import PROXY_HINT

LANES_PER_CLIENT: Final = 4


def http2_available() -> bool:
    """HTTP/2 only when the optional `h2` package is installed; httpx refuses it otherwise."""
    return importlib.util.find_spec("h2") is not None


def make_client(
    *,
    connections: int,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    proxy: str | None = None,
    verify: ssl.SSLContext | bool = True,
    http2: bool = False,
) -> httpx.AsyncClient:
    """One client. `trust_env` keeps HTTPS_PROXY/ALL_PROXY/NO_PROXY working; an explicit `proxy`
    wins over them. Redirects are never followed: a key goes only to its own base URL.

    Plain `http://` never goes through a proxy (DIRECT_HTTP): the only plain-http targets we
    accept are loopback relays, and a proxy would receive that request, its Authorization
    header included, in clear and forward it across the network. https goes through a proxy
    only as a CONNECT tunnel, which the proxy cannot read.
    """
    with refused_proxy():
        return httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
            transport=transport,
            proxy=proxy,
            mounts=DIRECT_HTTP,
            verify=verify,
            trust_env=True,
            http2=http2,
        )


# httpx mounts: None means "no proxy, the client's own transport"; more specific than the
# `all://` of --proxy and ALL_PROXY, and replaces the `http://` of HTTP_PROXY
DIRECT_HTTP: Final[dict[str, httpx.AsyncBaseTransport | None]] = {"http://": None}


@contextlib.contextmanager
def refused_proxy() -> Iterator[None]:
    """httpx checks proxies (ours, or HTTPS_PROXY/ALL_PROXY from the environment) when a client
    is built: turn its refusal into one line that does not repeat the URL, which may hold a
    password."""
    try:
        yield
    except ImportError:  # socksio, which httpx needs for socks5://, is missing
        raise ConfigError(
            "socks5 proxies need the socksio package", hint="pip install 'httpx[socks]'"
        ) from None
    except ValueError:
        raise ConfigError(
            "a proxy setting is not a usable proxy URL",
            hint=f"check --proxy, proxy in config.toml, HTTPS_PROXY and ALL_PROXY; {PROXY_HINT}",
        ) from None


def ssl_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    """The client's TLS context. httpx loads `SSL_CERT_FILE` (or `SSL_CERT_DIR`) when set, as
    curl and the SDK do; one that names a missing or broken file is a setting to fix, and
    its OSError must not surface as "cannot write the output"."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    try:
        return httpx.create_ssl_context(verify)
    except OSError as exc:  # ssl.SSLError is one too: a file that holds no certificate
        where = _ca_source(verify)
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConfigError(
            f"cannot load the CA certificates from {where}: {reason}",
            hint="fix or unset SSL_CERT_FILE and SSL_CERT_DIR; without them keyvault trusts"
            " its own CA bundle (certifi)",
        ) from None


def _ca_source(verify: str | bool) -> str:
    if isinstance(verify, str):
        return verify
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(name):
            return f"{name} ({os.environ[name]})"
    return "the CA bundle"


class Lanes:
    """`concurrency` request slots; each slot belongs to one of the clients."""

    def __init__(
        self,
        concurrency: int,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
        proxy: str | None = None,
        verify: ssl.SSLContext | str | bool = True,
        http2: bool | None = None,
    ) -> None:
        # one SSL context for all clients: building one loads the CA bundle (~60 ms each)
        context = ssl_context(verify)
        # a caller's transport is one object: it gets one client and all the lanes
        sizes = [concurrency] if transport else _split(concurrency, LANES_PER_CLIENT)
        h2 = http2_available() if http2 is None else http2
        self.clients = [
            make_client(
                connections=size,
                timeout=timeout,
                transport=transport,
                proxy=proxy,
                verify=context,
                http2=h2,
            )
            for size in sizes
        ]
        self._free: asyncio.Queue[int] = asyncio.Queue()
        for depth in range(max(sizes)):  # interleaved, so the first requests spread out
            for index, size in enumerate(sizes):
                if depth < size:
                    self._free.put_nowait(index)

    @asynccontextmanager
    async def lane(self) -> AsyncIterator[httpx.AsyncClient]:
        index = await self._free.get()
        try:
            yield self.clients[index]
        finally:
            self._free.put_nowait(index)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


def _split(total: int, per: int) -> list[int]:
    """`total` lanes in groups of at most `per`, as even as possible."""
    groups = -(-total // per)
    return [total // groups + (1 if i < total % groups else 0) for i in range(groups)]

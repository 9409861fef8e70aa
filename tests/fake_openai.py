"""A real HTTP(S) server on 127.0.0.1 that answers like the OpenAI API (and relay gateways).

An asyncio HTTP/1.1 server (keep-alive, Content-Length bodies) on its own event loop in a
daemon thread, so hundreds of concurrent connections with injected latency cost one thread.
It keeps a table of keys -> behaviour (see fake_openai_responses.BEHAVIOURS), counts requests
per key and per path, and records the most requests it ever had in flight at once.

As pytest fixtures: `fake_openai`, `fake_openai_factory`, `fake_openai_tls` (HTTPS with a
trustme CA), `test_ca`, `client_ssl_context`, `forward_proxy` — enable with
`pytest_plugins = ["tests.fake_openai"]` (tests/conftest.py does).
By hand: `python -m tests.fake_openai --latency 0.1 --keys 1000` prints the base URL; keys are
`make_key(0..N-1)`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fake_openai_admin import AdminAPI
from tests.fake_openai_responses import (
    BEHAVIOURS,
    RELAY_ERRORS,
    Canned,
    KeySpec,
    chat_body,
    error_body,
    invalid_key,
    make_key,
    make_relay_key,
    mismatched_org,
    model_not_found,
    models_body,
    no_auth,
    ratelimit_headers,
    request_id,
)

__all__ = ["RELAY_ERRORS", "FakeOpenAI", "KeySpec", "Request", "make_key", "make_relay_key"]

ROUTES = {
    ("GET", "/v1/models"): "models",
    ("POST", "/v1/chat/completions"): "chat",
    ("GET", "/v1/dashboard/billing/subscription"): "billing_subscription",
    ("GET", "/v1/dashboard/billing/usage"): "billing_usage",
}
SESSION_KEY_MSG = (
    "Your request to GET {path} must be made with a session key (that is, it can only be made "
    "from the browser). You made it with: secret key."
)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stats:
    by_key: Counter[str] = field(default_factory=Counter)
    by_path: Counter[str] = field(default_factory=Counter)
    by_key_path: Counter[tuple[str, str]] = field(default_factory=Counter)
    last: dict[str, Request] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    connections: int = 0


class FakeOpenAI:
    """The server. `relay=True` serves the billing endpoints like one-api/new-api do."""

    def __init__(
        self, *, latency: float = 0.0, relay: bool = False, tls: ssl.SSLContext | None = None
    ) -> None:
        self.latency = latency
        self.relay = relay
        self.keys: dict[str, KeySpec] = {}
        self.stats = Stats()
        self.admin = AdminAPI(self)
        self.port = 0
        self._tls = tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._serial = 0

    # --- configuration -----------------------------------------------------------------

    def add_key(self, behaviour: str = "ok", *, key: str | None = None, **spec: Any) -> str:
        """Register a key (generated unless given) with a behaviour; returns the key."""
        if behaviour not in BEHAVIOURS and behaviour not in ("ok", "invalid"):
            raise ValueError(f"unknown behaviour {behaviour}")
        self._serial += 1
        key = key or make_key(f"{behaviour}-{self._serial}")
        self.keys[key] = KeySpec(behaviour=behaviour, **spec)
        return key

    def add_relay_error(self, name: str, **spec: Any) -> str:
        """A relay key answering one of RELAY_ERRORS."""
        status, etype, code, message = RELAY_ERRORS[name]
        self._serial += 1
        key = make_relay_key(f"{name}-{self._serial}")
        return self.add_key(
            "relay",
            key=key,
            status=status,
            error_type=etype,
            error_code=code,
            message=message,
            **spec,
        )

    @property
    def scheme(self) -> str:
        return "https" if self._tls else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    def count(self, key: str, endpoint: str | None = None) -> int:
        """Requests seen with this key (on one endpoint: models, chat, …)."""
        if endpoint is None:
            return self.stats.by_key[key]
        return self.stats.by_key_path[(key, endpoint)]

    def reset_stats(self) -> None:
        self.stats = Stats()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeOpenAI:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake openai server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(
            asyncio.start_server(
                self._connection, "127.0.0.1", self.port, ssl=self._tls, backlog=4096
            )
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            loop.run_until_complete(asyncio.gather(*self._tasks, return_exceptions=True))
            loop.close()

    # --- HTTP/1.1 plumbing -----------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.stats.connections += 1
        try:
            while (request := await read_request(reader)) is not None:
                keep_open = await self._exchange(request, writer)
                if not keep_open or request.headers.get("connection", "").lower() == "close":
                    break
        except (
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
        ):
            pass
        except asyncio.CancelledError:  # server stopping: end quietly, the client sees a close
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _exchange(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            canned = await self.respond(request)
        finally:
            # counted down before writing, so a client never sees more in flight than it sent
            stats.in_flight -= 1
        if canned.reset:
            reset_connection(writer)
            return False
        writer.write(encode_response(canned))
        await writer.drain()
        return True

    # --- the API -------------------------------------------------------------------------

    async def respond(self, request: Request) -> Canned:
        key = request.key or ""
        endpoint = ROUTES.get((request.method, request.path))
        label = endpoint or f"{request.method} {request.path}"
        self.stats.by_key[key] += 1
        self.stats.by_path[label] += 1
        self.stats.by_key_path[(key, label)] += 1
        self.stats.last[key] = request
        admin = self.admin.handle(request)
        if admin is not None:
            return with_openai_headers(admin, "keyvault-tests")
        if endpoint is None:
            msg = f"Invalid URL ({request.method} {request.path})"
            return with_openai_headers(
                Canned(404, error_body(msg, "invalid_request_error", None)), None
            )
        answer, slug = await self._answer(request, endpoint, key)
        return with_openai_headers(answer, slug)

    async def _answer(self, request: Request, endpoint: str, key: str) -> tuple[Canned, str | None]:
        spec = self.keys.get(key)
        if not request.key:
            return no_auth(), None
        if spec is None or spec.behaviour == "invalid":
            return (self.admin.model_api_refusal(key) or invalid_key(key)), None
        org = request.headers.get("openai-organization")
        if spec.org_id and org and org != spec.org_id:
            return mismatched_org(), None
        model = _requested_model(request)
        canned = apply_behaviour(spec, endpoint, model)
        if canned is not None and canned.delay_s:
            await asyncio.sleep(canned.delay_s)
            canned = None
        return canned or self._ok(request, endpoint, spec, model), spec.org_slug

    def _ok(self, request: Request, endpoint: str, spec: KeySpec, model: str) -> Canned:
        if endpoint == "models":
            return Canned(200, models_body(spec.models))
        if endpoint == "chat":
            if model not in spec.models:  # as the API answers a model this key may not use
                return model_not_found(model)
            return chat_ok(request, model)
        if not self.relay:
            msg = SESSION_KEY_MSG.format(path=request.path.removeprefix("/v1"))
            return Canned(403, error_body(msg, "invalid_request_error", None))
        if endpoint == "billing_subscription":
            return Canned(200, subscription_body(spec.hard_limit_usd))
        return Canned(
            200, json.dumps({"object": "list", "total_usage": spec.total_usage_cents}).encode()
        )


def apply_behaviour(spec: KeySpec, endpoint: str, model: str) -> Canned | None:
    """The behaviour's answer on this endpoint, or None to answer normally."""
    if spec.behaviour == "ok":
        return None
    scope, transient, build = BEHAVIOURS[spec.behaviour]
    if endpoint not in (spec.endpoints or scope):
        return None
    if transient:
        if 0 <= spec.times <= spec.served_failures:
            return None
        spec.served_failures += 1
    answer: Canned = build(spec, model)
    return answer


def _requested_model(request: Request) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        model = request.json().get("model")
        if isinstance(model, str):
            return model
    return "gpt-4o-mini"


def chat_ok(request: Request, model: str) -> Canned:
    try:
        doc = request.json()
    except ValueError:
        msg = (
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        )
        return Canned(400, error_body(msg, "invalid_request_error", None))
    if not isinstance(doc, dict) or not doc.get("model"):
        return Canned(
            400, error_body("you must provide a model parameter", "invalid_request_error", None)
        )
    if not isinstance(doc.get("messages"), list) or not doc["messages"]:
        msg = "Missing required parameter: 'messages'."
        return Canned(
            400, error_body(msg, "invalid_request_error", "missing_required_parameter", "messages")
        )
    return Canned(200, chat_body(model), ratelimit_headers())


def subscription_body(hard_limit_usd: float) -> bytes:
    return json.dumps(
        {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": hard_limit_usd,
            "hard_limit_usd": hard_limit_usd,
            "system_hard_limit_usd": hard_limit_usd,
            "access_until": 0,
        }
    ).encode()


def with_openai_headers(canned: Canned, org_slug: str | None) -> Canned:
    headers = {
        "content-type": "application/json",
        "x-request-id": request_id(),
        "openai-processing-ms": "12",
        "openai-version": "2020-10-01",
        "date": time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
    }
    if org_slug:
        headers["openai-organization"] = org_slug
    headers.update(canned.headers)
    return Canned(canned.status, canned.body, headers, canned.reset, canned.delay_s)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One request off a keep-alive connection; None at a clean end of stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    parts = urlsplit(target)
    return Request(
        method.upper(), parts.path, parse_qs(parts.query, keep_blank_values=True), headers, body
    )


def encode_response(canned: Canned) -> bytes:
    reason = (
        HTTPStatus(canned.status).phrase if canned.status in HTTPStatus._value2member_map_ else ""
    )
    headers = {**canned.headers, "content-length": str(len(canned.body))}
    head = f"HTTP/1.1 {canned.status} {reason}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("utf-8") + canned.body


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), like a middlebox killing the connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake_openai_factory() -> Iterator[Callable[..., FakeOpenAI]]:
    """Start servers with settings (latency=, relay=); all are stopped after the test."""
    servers: list[FakeOpenAI] = []

    def make(**settings: Any) -> FakeOpenAI:
        servers.append(FakeOpenAI(**settings).start())
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def test_ca() -> Any:
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def client_ssl_context(test_ca: Any) -> ssl.SSLContext:
    """A client context that trusts only the test CA."""
    ctx = ssl.create_default_context()
    test_ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def fake_openai_tls(test_ca: Any) -> Iterator[FakeOpenAI]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    test_ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    with FakeOpenAI(tls=ctx) as server:
        yield server


@pytest.fixture
def forward_proxy() -> Iterator[Any]:
    from tests.fake_proxy import ForwardProxy

    with ForwardProxy() as proxy:
        yield proxy


@pytest.fixture
def socks_proxy() -> Iterator[Any]:
    from tests.fake_proxy import Socks5Proxy

    with Socks5Proxy() as proxy:
        yield proxy


# ----------------------------------------------------------------------------- by hand


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_openai", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--keys", type=int, default=5, help="ok keys make_key(0..N-1)")
    parser.add_argument("--relay", action="store_true", help="serve billing endpoints")
    args = parser.parse_args(argv)
    server = FakeOpenAI(latency=args.latency, relay=args.relay)
    server.port = args.port
    for i in range(args.keys):
        server.add_key("ok", key=make_key(i))
    with server:
        print(server.base_url, flush=True)
        # serve until stdin closes (the parent exits) or Ctrl-C
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()


if __name__ == "__main__":
    main()

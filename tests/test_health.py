"""The checker against a real local HTTP(S) server: statuses, retries, limits, proxies, secrecy."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.fake_openai_responses import make_key, make_relay_key
from tests.hostile_http import HostileServer
from vault.errors import InvalidValue
from vault.health import HealthResult, ProbeTarget, Status, check, check_targets, exit_code
from vault.health.lanes import _split
from vault.health.transport import is_loopback
from vault.model.secret import Secret

if TYPE_CHECKING:
    from tests.fake_openai import FakeOpenAI
    from tests.fake_proxy import ForwardProxy

Factory = Callable[..., "FakeOpenAI"]

S = Status
NOW = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)


class Sleeps:
    """An injected sleep that records the waits instead of spending them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def target(server: FakeOpenAI, key: str, name: str = "k", **kw: Any) -> ProbeTarget:
    return ProbeTarget(name, Secret(key), server.base_url, **kw)


def run(targets: list[ProbeTarget], sleeps: Sleeps | None = None, **kw: Any) -> list[HealthResult]:
    kw.setdefault("clock", lambda: NOW)
    kw.setdefault("rand", lambda: 0.0)
    return check(targets, sleep=sleeps or Sleeps(), **kw)


def one(server: FakeOpenAI, key: str, sleeps: Sleeps | None = None, **kw: Any) -> HealthResult:
    return run([target(server, key)], sleeps, **kw)[0]


# --- plain answers ----------------------------------------------------------------------


def test_ok_key(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    result = one(fake_openai, key)
    assert result.status is S.OK and result.ok
    assert (result.http_status, result.models, result.attempts, result.probe) == (
        200,
        5,
        1,
        "models",
    )
    assert result.checked_at == "2025-03-04T05:06:07Z"
    assert re.fullmatch(r"req_[0-9a-f]{32}", result.request_id or "")
    assert result.latency_ms is not None and result.latency_ms >= 0
    seen = fake_openai.stats.last[key].headers
    assert seen["authorization"] == f"Bearer {key}"
    assert seen["user-agent"].startswith("keyvault/")
    assert "openai-organization" not in seen and "openai-project" not in seen
    assert fake_openai.count(key, "models") == 1


def test_org_and_project_headers(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok", org_id="org-right")
    good = target(fake_openai, key, org_id="org-right", project_id="proj_abc")
    bad = target(fake_openai, key, name="bad", org_id="org-wrong")
    ok, mismatched = run([good, bad])
    assert ok.status is S.OK
    assert (mismatched.status, mismatched.error_code) == (S.FORBIDDEN, "mismatched_organization")
    assert fake_openai.count(key) == 2


@pytest.mark.parametrize(
    ("behaviour", "status", "code", "requests"),
    [
        ("invalid", S.INVALID, "invalid_api_key", 1),
        ("no_auth", S.NETWORK_ERROR, None, 1),  # a key was sent: a proxy dropped it
        ("no_organization", S.FORBIDDEN, "no_organization", 1),
        ("ip_not_authorized", S.FORBIDDEN, "ip_not_authorized", 1),
        ("missing_scopes", S.FORBIDDEN, None, 1),
        ("region_blocked", S.REGION_BLOCKED, "unsupported_country_region_territory", 1),
        ("garbage", S.UNEXPECTED, None, 1),
        ("server_error", S.SERVER_ERROR, None, 3),
        ("unavailable", S.SERVER_ERROR, None, 3),
        ("reset", S.NETWORK_ERROR, "read_error", 3),
    ],
)
def test_behaviours_on_models(
    fake_openai: FakeOpenAI, behaviour: str, status: Status, code: str | None, requests: int
) -> None:
    key = fake_openai.add_key(behaviour)
    result = one(fake_openai, key)
    assert (result.status, result.error_code) == (status, code)
    assert result.attempts == requests == fake_openai.count(key)


def test_unknown_key_is_invalid_with_the_api_masking(fake_openai: FakeOpenAI) -> None:
    key = make_key("never-registered")
    result = one(fake_openai, key)
    assert result.status is S.INVALID
    assert key[:8] + "*" in (result.message or "")  # the API's own mask, kept as evidence
    assert key not in (result.message or "")


@pytest.mark.parametrize(
    ("behaviour", "status", "code"),
    [
        ("quota", S.QUOTA_EXHAUSTED, "insufficient_quota"),
        ("quota_old", S.QUOTA_EXHAUSTED, None),
        ("model_not_found", S.MODEL_UNAVAILABLE, "model_not_found"),
        ("too_large", S.RATE_LIMITED, "rate_limit_exceeded"),
    ],
)
def test_deep_probe_finds_what_models_cannot(
    fake_openai: FakeOpenAI, behaviour: str, status: Status, code: str | None
) -> None:
    key = fake_openai.add_key(behaviour)
    shallow = one(fake_openai, key)
    assert shallow.status is S.OK  # /v1/models answers 200 for these keys
    deep = one(fake_openai, key, deep=True)
    assert (deep.status, deep.error_code, deep.probe, deep.models) == (status, code, "chat", 5)
    assert fake_openai.count(key, "chat") == 1  # none of these is retried
    assert deep.attempts == 2


def test_deep_probe_request_and_rate_limit_headers(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    result = one(fake_openai, key, deep=True, model="o3-mini")
    assert (result.status, result.probe, result.attempts) == (S.OK, "chat", 2)
    sent = fake_openai.stats.last[key].json()
    assert sent == {
        "model": "o3-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 1,
    }
    assert result.ratelimit == {
        "limit_requests": 10000,
        "remaining_requests": 9999,
        "limit_tokens": 200000,
        "remaining_tokens": 199990,
        "reset_requests_s": 0.006,
        "reset_tokens_s": 13.694,
    }


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("token_exhausted", S.QUOTA_EXHAUSTED),
        ("token_invalid", S.INVALID),
        ("token_exhausted_200", S.QUOTA_EXHAUSTED),
        ("balance_low_200", S.QUOTA_EXHAUSTED),
        ("in_arrears_200", S.QUOTA_EXHAUSTED),
        ("saturated_quota", S.QUOTA_EXHAUSTED),
        ("pre_consume", S.QUOTA_EXHAUSTED),
        ("model_forbidden", S.MODEL_UNAVAILABLE),
        ("ip_denied", S.FORBIDDEN),
        ("token_missing", S.NETWORK_ERROR),
    ],
)
def test_relay_errors(fake_openai: FakeOpenAI, name: str, status: Status) -> None:
    key = fake_openai.add_relay_error(name)
    result = one(fake_openai, key)
    assert result.status is status
    assert fake_openai.count(key) == 1


# --- retries ----------------------------------------------------------------------------


def test_rate_limit_retried_with_retry_after_ms(fake_openai: FakeOpenAI, sleeps: Sleeps) -> None:
    key = fake_openai.add_key("rate_limited", times=2, retry_after_ms="10")
    result = one(fake_openai, key, sleeps)
    assert (result.status, result.attempts, fake_openai.count(key)) == (S.OK, 3, 3)
    assert sleeps.waits == [0.01, 0.01]


def test_retry_after_ms_wins_over_retry_after(fake_openai: FakeOpenAI, sleeps: Sleeps) -> None:
    key = fake_openai.add_key("rate_limited", times=1, retry_after="7", retry_after_ms="30")
    assert one(fake_openai, key, sleeps).status is S.OK
    assert sleeps.waits == [0.03]


def test_retry_after_seconds(fake_openai: FakeOpenAI, sleeps: Sleeps) -> None:
    key = fake_openai.add_key("rate_limited", times=2, retry_after="1")
    assert one(fake_openai, key, sleeps).status is S.OK
    assert sleeps.waits == [1.0, 1.0]


def test_demanded_wait_beyond_limit_stops_and_reports(
    fake_openai: FakeOpenAI, sleeps: Sleeps
) -> None:
    key = fake_openai.add_key("rate_limited", retry_after="60")
    result = one(fake_openai, key, sleeps, max_retry_wait=20.0)
    assert (result.status, result.retry_after_s, result.attempts) == (S.RATE_LIMITED, 60.0, 1)
    assert sleeps.waits == []


def test_persistent_rate_limit_is_bounded(fake_openai: FakeOpenAI, sleeps: Sleeps) -> None:
    key = fake_openai.add_key("rate_limited", retry_after_ms="5")
    result = one(fake_openai, key, sleeps, max_retries=4)
    assert (result.status, fake_openai.count(key)) == (S.RATE_LIMITED, 5)
    assert result.retry_after_s == 0.005


def test_server_errors_back_off_like_the_sdk(fake_openai: FakeOpenAI, sleeps: Sleeps) -> None:
    key = fake_openai.add_key("server_error", times=2)
    assert one(fake_openai, key, sleeps, rand=lambda: 0.0).status is S.OK
    jittered = Sleeps()
    key2 = fake_openai.add_key("unavailable", times=3)
    assert one(fake_openai, key2, jittered, rand=lambda: 1.0, max_retries=3).status is S.OK
    assert sleeps.waits == [0.5, 1.0]
    assert jittered.waits == [0.375, 0.75, 1.5]


def test_no_retries_when_disabled(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("server_error")
    assert one(fake_openai, key, max_retries=0).attempts == fake_openai.count(key) == 1


def test_real_sleep_path(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("rate_limited", times=1, retry_after_ms="20")
    started = time.perf_counter()
    result = check([target(fake_openai, key)])[0]
    assert result.status is S.OK and result.attempts == 2
    assert time.perf_counter() - started >= 0.02


# --- network failures -------------------------------------------------------------------


def test_timeout(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("slow", slow_s=3.0)
    started = time.perf_counter()
    result = one(fake_openai, key, timeout=0.2, max_retries=1)
    assert (result.status, result.error_code) == (S.NETWORK_ERROR, "read_timeout")
    assert fake_openai.count(key) == 2
    assert time.perf_counter() - started < 2.0


def test_connection_refused(sleeps: Sleeps) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    t = ProbeTarget("gone", Secret(make_key("gone")), f"http://127.0.0.1:{port}/v1")
    result = run([t], sleeps)[0]
    assert (result.status, result.error_code, result.attempts) == (
        S.NETWORK_ERROR,
        "connect_error",
        3,
    )
    assert len(sleeps.waits) == 2


def test_redirect_is_classified_not_followed(
    fake_openai: FakeOpenAI, fake_openai_factory: Factory
) -> None:
    elsewhere = fake_openai_factory()
    landing = elsewhere.add_key("ok")
    key = fake_openai.add_key("redirect", location=f"{elsewhere.base_url}/models?x=1")
    result = one(fake_openai, key)
    assert (result.status, result.http_status, result.attempts) == (S.UNEXPECTED, 302, 1)
    assert result.evidence == f"redirect to {elsewhere.base_url}/models"
    assert sum(elsewhere.stats.by_key.values()) == 0
    assert elsewhere.count(landing) == 0


@pytest.mark.parametrize(
    ("base_url", "code"),
    [
        ("http://example.com/v1", "insecure_base_url"),
        ("http://10.1.2.3:8080/v1", "insecure_base_url"),
        ("ftp://example.com/v1", "bad_base_url"),
        ("not a url", "bad_base_url"),
        # httpx sends URL credentials as Basic auth, which replaced the key's Bearer header
        ("https://user:pw@relay.example/v1", "bad_base_url"),
        ("http://user@127.0.0.1:9/v1", "bad_base_url"),
    ],
)
def test_refused_base_urls_send_nothing(
    forward_proxy: ForwardProxy, base_url: str, code: str
) -> None:
    t = ProbeTarget("x", Secret(make_key("refused")), base_url)
    # any attempt would have gone through the proxy and been counted there
    result = run([t], proxy=forward_proxy.url)[0]
    assert (result.status, result.error_code, result.attempts) == (S.UNEXPECTED, code, 0)
    assert not forward_proxy.connects and not forward_proxy.forwards


def test_malformed_key_is_not_sent(fake_openai: FakeOpenAI) -> None:
    result = one(fake_openai, make_key("nl") + "\n")
    assert (result.status, result.error_code, result.attempts) == (S.UNEXPECTED, "malformed_key", 0)
    assert sum(fake_openai.stats.by_key.values()) == 0


def test_loopback_rules() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST"):
        assert is_loopback(host)
    for host in ("10.0.0.1", "example.com", "localhost.example.com", "::2"):
        assert not is_loopback(host)


def test_localhost_name_and_trailing_slash(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    t = ProbeTarget("k", Secret(key), f"http://localhost:{fake_openai.port}/v1/")
    assert run([t])[0].status is S.OK


def test_base_url_without_v1(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    t = ProbeTarget("k", Secret(key), f"http://127.0.0.1:{fake_openai.port}")
    result = run([t])[0]
    assert (result.status, result.http_status) == (S.UNEXPECTED, 404)
    assert "/v1" in (result.evidence or "")


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("keys", "concurrency"), [(60, 8), (200, 64)])
def test_concurrency_bound(fake_openai_factory: Factory, keys: int, concurrency: int) -> None:
    # 0.2 s per answer: long enough for a loaded machine (the full suite on 2 shared cores)
    # to open every lane before the first answers free one; at 0.05 s the peak was 61 of 64
    server = fake_openai_factory(latency=0.2)
    targets = [target(server, server.add_key("ok"), f"k{i}") for i in range(keys)]
    seen: list[str] = []
    results = run(targets, concurrency=concurrency, on_result=lambda r: seen.append(r.name))
    assert [r.name for r in results] == [t.name for t in targets]
    assert sorted(seen) == sorted(t.name for t in targets)
    assert all(r.ok for r in results)
    assert server.stats.max_in_flight == concurrency


def test_lanes_split_evenly() -> None:
    assert _split(64, 4) == [4] * 16
    assert _split(10, 4) == [4, 3, 3]
    assert _split(1, 4) == [1]


def test_default_concurrency_is_64() -> None:
    import inspect

    from vault.health import DEFAULT_CONCURRENCY

    assert DEFAULT_CONCURRENCY == 64
    assert inspect.signature(check_targets).parameters["concurrency"].default == 64


# --- TLS and proxies --------------------------------------------------------------------


def test_https_with_test_ca(
    fake_openai_tls: FakeOpenAI, client_ssl_context: ssl.SSLContext
) -> None:
    key = fake_openai_tls.add_key("ok")
    assert fake_openai_tls.base_url.startswith("https://")
    assert one(fake_openai_tls, key, verify=client_ssl_context).status is S.OK
    untrusted = one(fake_openai_tls, key)
    assert (untrusted.status, untrusted.error_code) == (S.NETWORK_ERROR, "tls_error")
    assert untrusted.attempts == 1  # a certificate problem does not go away on retry
    assert fake_openai_tls.count(key) == 1


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    # loopback targets: make sure no NO_PROXY default lets them bypass the proxy
    monkeypatch.setenv("NO_PROXY", "")
    yield monkeypatch


def test_http_proxy_from_environment_never_carries_plain_http(
    fake_openai: FakeOpenAI, forward_proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    """A plain-http (loopback) target goes direct: a proxy would read its Authorization
    header in clear (tests/test_security_proxy.py proves it through every command)."""
    clean_proxy_env.setenv("HTTP_PROXY", forward_proxy.url)
    clean_proxy_env.setenv("ALL_PROXY", forward_proxy.url)
    keys = [fake_openai.add_key("ok") for _ in range(3)]
    results = run([target(fake_openai, k, f"k{i}") for i, k in enumerate(keys)])
    assert all(r.ok for r in results)
    assert not forward_proxy.forwards and not forward_proxy.seen_authorization
    assert [fake_openai.count(k) for k in keys] == [1, 1, 1]


def test_https_proxy_tunnels(
    fake_openai_tls: FakeOpenAI,
    forward_proxy: ForwardProxy,
    client_ssl_context: ssl.SSLContext,
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    clean_proxy_env.setenv("HTTPS_PROXY", forward_proxy.url)
    key = fake_openai_tls.add_key("ok")
    assert one(fake_openai_tls, key, verify=client_ssl_context).status is S.OK
    assert forward_proxy.connects == {f"127.0.0.1:{fake_openai_tls.port}": 1}
    assert forward_proxy.seen_authorization == []  # the key stayed inside the TLS tunnel


@pytest.mark.parametrize(
    "case",
    [
        ("127.0.0.1", True),
        ("{port}", True),  # host:port
        ("other.example, 127.0.0.1", True),
        ("*", True),
        ("localhost", False),  # a name is not the address it resolves to
        ("127.0.0.0/8", False),  # CIDR: not understood (docs/health.md says so)
    ],
)
def test_no_proxy_forms(
    fake_openai_tls: FakeOpenAI,
    forward_proxy: ForwardProxy,
    client_ssl_context: ssl.SSLContext,
    clean_proxy_env: pytest.MonkeyPatch,
    case: tuple[str, bool],
) -> None:
    """What docs/health.md promises of NO_PROXY, and that a form it does not understand
    costs a tunnel through the proxy, never the key in clear."""
    no_proxy, direct = case
    clean_proxy_env.setenv("HTTPS_PROXY", forward_proxy.url)
    clean_proxy_env.setenv("NO_PROXY", no_proxy.format(port=f"127.0.0.1:{fake_openai_tls.port}"))
    key = fake_openai_tls.add_key("ok")
    assert one(fake_openai_tls, key, verify=client_ssl_context).status is S.OK
    assert sum(forward_proxy.connects.values()) == (0 if direct else 1)
    assert forward_proxy.seen_authorization == []


def test_a_proxy_asking_for_a_password_is_a_network_error(
    client_ssl_context: ssl.SSLContext, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    """A 407 to the CONNECT: not the key's fault, not retried, the reason in the message."""
    auth = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Basic realm="corp"\r\ncontent-length: 0\r\n\r\n'
    )
    with HostileServer("raw", payload=auth) as proxy:
        t = ProbeTarget("k", Secret(make_key("p")), "https://api.openai.com/v1")
        [result] = run([t], proxy=proxy.url, verify=client_ssl_context)
    assert (result.status, result.error_code, result.attempts) == (
        S.NETWORK_ERROR,
        "proxy_error",
        1,
    )
    assert "407 Proxy Authentication Required" in (result.message or "")
    assert proxy.authorization == ""  # the CONNECT carried no key


def test_ipv6_loopback_is_direct_plain_http(
    forward_proxy: ForwardProxy, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    """http://[::1] is loopback like 127.0.0.1: accepted, and never sent through a proxy."""

    class Models(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # no keep-alive, body ends at the close

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"object": "list", "data": [{"id": "gpt-4o-mini"}]}')

        def log_message(self, *args: object) -> None:
            pass

    class Server6(HTTPServer):
        address_family = socket.AF_INET6

    try:
        server = Server6(("::1", 0), Models)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clean_proxy_env.setenv("ALL_PROXY", forward_proxy.url)
    try:
        base = f"http://[::1]:{server.server_address[1]}/v1"
        [result] = run([ProbeTarget("k", Secret(make_key("v6")), base)])
    finally:
        server.shutdown()
        server.server_close()
    assert (result.status, result.models) == (S.OK, 1)
    assert not forward_proxy.forwards and not forward_proxy.connects


def test_explicit_proxy_argument(
    fake_openai_tls: FakeOpenAI,
    forward_proxy: ForwardProxy,
    client_ssl_context: ssl.SSLContext,
    clean_proxy_env: pytest.MonkeyPatch,
) -> None:
    key = fake_openai_tls.add_key("ok")
    result = one(fake_openai_tls, key, verify=client_ssl_context, proxy=forward_proxy.url)
    assert result.status is S.OK
    assert sum(forward_proxy.connects.values()) == 1


def test_custom_transport(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    result = one(fake_openai, key, transport=httpx.AsyncHTTPTransport(retries=0))
    assert result.status is S.OK


# --- balance (relays) -------------------------------------------------------------------


@pytest.fixture
def relay(fake_openai_factory: Factory) -> FakeOpenAI:
    return fake_openai_factory(relay=True)


def test_relay_balance(relay: FakeOpenAI) -> None:
    rich = relay.add_key(
        "ok", key=make_relay_key("rich"), hard_limit_usd=10.0, total_usage_cents=250
    )
    broke = relay.add_key(
        "ok", key=make_relay_key("broke"), hard_limit_usd=5.0, total_usage_cents=500
    )
    ok, empty = run([target(relay, rich, "rich"), target(relay, broke, "broke")], balance=True)
    assert (ok.status, ok.balance_usd, ok.probe, ok.attempts) == (S.OK, 7.5, "models", 3)
    assert (empty.status, empty.balance_usd, empty.probe) == (S.QUOTA_EXHAUSTED, 0.0, "balance")
    query = relay.stats.last[rich].query
    assert query == {"start_date": ["2024-11-25"], "end_date": ["2025-03-05"]}


@pytest.mark.parametrize(
    ("hard", "cents", "missing"),
    [
        (10**400, 0, "hard_limit_usd"),  # JSON allows it; float() overflowed: "internal error"
        (100, 10**400, "total_usage"),
        (float("nan"), 0, "hard_limit_usd"),  # Python's json writes and reads NaN
        ("1e400", 0, "hard_limit_usd"),
        ("", 0, "hard_limit_usd"),
        (True, 0, "hard_limit_usd"),
        (None, 0, "hard_limit_usd"),
        ({"usd": 5}, 0, "hard_limit_usd"),
        (100, "lots", "total_usage"),
        (100, None, "total_usage"),
    ],
)
def test_a_balance_that_is_not_a_number_leaves_the_key_ok(
    relay: FakeOpenAI, hard: object, cents: object, missing: str
) -> None:
    """A relay's billing answer with the field missing, null, not a number or beyond a float:
    the key's check stands (ok), the balance is unknown and the evidence names the field."""
    key = relay.add_key(
        "ok", key=make_relay_key("odd"), hard_limit_usd=hard, total_usage_cents=cents
    )
    result = one(relay, key, balance=True)
    assert (result.status, result.balance_usd) == (S.OK, None)
    assert (
        result.evidence == f"http 200; balance unavailable (http 200 without a numeric {missing})"
    )


def test_relay_balance_in_strings_and_negative_spending(relay: FakeOpenAI) -> None:
    """Numbers sent as strings are read; a negative spend is no balance at all (it would
    raise the balance above the limit), while a negative limit is a relay's overdrawn token."""
    strings = relay.add_key(
        "ok", key=make_relay_key("s"), hard_limit_usd="10", total_usage_cents="250"
    )
    refund = relay.add_key("ok", key=make_relay_key("r"), hard_limit_usd=10, total_usage_cents=-500)
    overdrawn = relay.add_key(
        "ok", key=make_relay_key("o"), hard_limit_usd=-2.5, total_usage_cents=0
    )
    got = run([target(relay, k) for k in (strings, refund, overdrawn)], balance=True)
    assert [(r.status, r.balance_usd) for r in got] == [
        (S.OK, 7.5),
        (S.OK, None),
        (S.QUOTA_EXHAUSTED, -2.5),
    ]
    assert "total_usage -500 makes no sense" in (got[1].evidence or "")


def test_balance_at_openai_is_unavailable_not_fatal(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    result = one(fake_openai, key, balance=True)
    assert (result.status, result.balance_usd) == (S.OK, None)
    assert "balance unavailable" in (result.evidence or "")


# --- secrecy ----------------------------------------------------------------------------


def test_secret_never_in_results(fake_openai: FakeOpenAI) -> None:
    """A canary key per behaviour, including a relay that echoes the key whole."""
    keys = [fake_openai.add_key(b) for b in ("ok", "invalid", "quota", "garbage", "redirect")]
    echo = make_relay_key("canary-echo")
    fake_openai.add_key("relay", key=echo, status=401, message=f"无效的令牌 {echo} / {echo[3:]}")
    keys.append(echo)
    odd = "not-a-sk-key-" + "C" * 30  # relay keys need not look like sk-…
    fake_openai.add_key("relay", key=odd, status=200, message=f"token {odd} exhausted 余额不足")
    keys.append(odd)
    results = run([target(fake_openai, k, f"k{i}") for i, k in enumerate(keys)], deep=True)
    for key, result in zip(keys, results, strict=True):
        dumped = json.dumps(result.to_dict(), ensure_ascii=False) + repr(result)
        for fragment in {key, key.removeprefix("sk-"), key[10:34]}:
            assert fragment not in dumped, result.name
    assert results[-2].status is S.INVALID and results[-1].status is S.QUOTA_EXHAUSTED


# --- the API around check ---------------------------------------------------------------


def test_async_entry_point_and_edge_cases(fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("ok")
    results = asyncio.run(check_targets([target(fake_openai, key)]))
    assert results[0].ok
    assert check([]) == []
    with pytest.raises(InvalidValue):
        check([target(fake_openai, key)], concurrency=0)


def test_exit_code_and_from_entry(fake_openai: FakeOpenAI) -> None:
    class Entry:
        name = "main"
        secret = Secret(fake_openai.add_key("ok"))
        base_url = fake_openai.base_url
        org_id = ""
        project_id = None

    t = ProbeTarget.from_entry(Entry())
    assert (t.name, t.base_url, t.org_id) == ("main", fake_openai.base_url, None)
    bad = fake_openai.add_key("invalid")
    results = run([t, target(fake_openai, bad, "bad")])
    assert exit_code(results[:1]) == 0
    assert exit_code(results) == 5

"""One logical HTTP request to a target: URL policy, headers, bounded retries, failure mapping.

The key goes only to the target's own base URL: redirects are never followed (a 3xx is
classified, not obeyed) and plain `http://` is refused unless the host is loopback, where a
local relay or test server lives (and then never through a proxy: lanes.make_client). Each
attempt is bounded in time and size by `fetch.Limits`; retries stop at the run's deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from vault import __version__
from vault.health.classify import classify
from vault.health.fetch import Limits, fetch
from vault.health.lanes import Lanes
from vault.health.model import DEFAULT_MAX_WAIT, Classification, ProbeTarget, Status
from vault.health.redact import safe_message

USER_AGENT: Final = f"keyvault/{__version__}"

# (exception class, error_code, worth retrying); first match wins, so subclasses come first
TRANSPORT_ERRORS: Final[tuple[tuple[type[Exception], str, bool], ...]] = (
    (httpx.ConnectTimeout, "connect_timeout", True),
    (httpx.ReadTimeout, "read_timeout", True),
    (httpx.WriteTimeout, "write_timeout", True),
    (httpx.PoolTimeout, "pool_timeout", True),
    (httpx.ProxyError, "proxy_error", False),
    (httpx.ConnectError, "connect_error", True),
    (httpx.ReadError, "read_error", True),
    (httpx.WriteError, "write_error", True),
    (httpx.RemoteProtocolError, "protocol_error", True),
    (httpx.TransportError, "transport_error", True),
)


# failures before a request's first byte was written: no server can have acted on it
UNSENT: Final = frozenset({"connect_error", "connect_timeout", "pool_timeout"})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying again; sleep and randomness are injectable.

    `max_retry_wait` bounds the waiting of one key in total (every retry of every probe), so
    a key that stays rate-limited costs at most that much time, then is reported with its
    retry time. `on_wait(target name, seconds)` hears of each wait before it starts (for a
    progress display)."""

    max_retries: int = 2
    max_retry_wait: float = DEFAULT_MAX_WAIT
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = random.random
    on_wait: Callable[[str, float], None] | None = None

    def backoff(self, retry: int) -> float:
        """The official SDKs' delay: min(0.5·2^n, 8) s, minus up to 25 % jitter."""
        return min(0.5 * 2.0**retry, 8.0) * (1 - 0.25 * self.rand())


@dataclass(frozen=True)
class Exchange:
    """The final answer to one logical request, after any retries."""

    classification: Classification
    body: bytes = b""
    attempts: int = 0
    latency_ms: int | None = None
    waits: tuple[float, ...] = field(default=())


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(target: ProbeTarget) -> Classification | None:
    """Why this target must not be sent its key at all, or None if it may."""
    try:
        url = httpx.URL(target.base_url)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        return _refused("bad_base_url", "base url must be an http(s) url with a host")
    if url.userinfo:  # httpx would send it as Basic auth in place of the key's Bearer
        return _refused("bad_base_url", "base url must not contain a user name or password")
    if url.scheme == "http" and not is_loopback(url.host):
        return _refused("insecure_base_url", f"refused to send a key over plain http to {url.host}")
    key = target.secret.reveal()
    if not key or not all(0x21 <= ord(ch) <= 0x7E for ch in key):
        return _refused("malformed_key", "key is empty or has spaces, newlines or non-ascii")
    return None


def _refused(code: str, message: str) -> Classification:
    return Classification(
        Status.UNEXPECTED,
        False,
        f"refused: {message}",
        error_type="keyvault",
        error_code=code,
        message=message,
    )


def request_headers(target: ProbeTarget) -> dict[str, str]:
    headers = {
        "Authorization": f"Bearer {target.secret.reveal()}",
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
    }
    if target.org_id:
        headers["OpenAI-Organization"] = target.org_id
    if target.project_id:
        headers["OpenAI-Project"] = target.project_id
    return headers


def endpoint(base_url: str, path: str) -> httpx.URL:
    """`base_url` + `path`, keeping the base's `/v1` (a naive urljoin would drop it)."""
    base = httpx.URL(base_url)
    return base.copy_with(path=base.path.rstrip("/") + path, query=None, fragment=None)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_failure(exc: Exception, secrets: tuple[str, ...]) -> Classification:
    """A request that got no HTTP answer: network_error (retryable or not) or a client bug."""
    detail = safe_message(f"{type(exc).__name__}: {exc}".rstrip(": "), secrets)
    if _is_tls_failure(exc):
        return Classification(
            Status.NETWORK_ERROR,
            False,
            "tls handshake failed",
            error_code="tls_error",
            message=detail,
        )
    for exc_type, code, retryable in TRANSPORT_ERRORS:
        if isinstance(exc, exc_type):
            return Classification(
                Status.NETWORK_ERROR,
                retryable,
                code.replace("_", " "),
                error_code=code,
                message=detail,
            )
    return Classification(
        Status.UNEXPECTED, False, "client error", error_code="client_error", message=detail
    )


@dataclass(frozen=True)
class Session:
    """Everything needed to talk to one target: the shared lanes, the target, the policy."""

    lanes: Lanes
    target: ProbeTarget
    policy: RetryPolicy
    waited: list[float] = field(default_factory=list)  # every wait so far, for the budget
    limits: Limits = field(default_factory=Limits)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.target.secret.reveal(),)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        idempotent: bool = True,
    ) -> Exchange:
        """Send with retries for what can succeed on retry; honour the server's requested wait
        while this key's waits stay within `max_retry_wait` in total, beyond that stop and
        report (the result keeps retry_after_s). `idempotent=False` (a request that creates
        something, where a lost answer does not mean nothing was created) is retried only
        when it never left: no connection could be made."""
        url = endpoint(self.target.base_url, path)
        attempts, waits = 0, list[float]()
        while True:
            attempts += 1
            verdict, body, latency = await self._send_once(method, url, params, json_body)
            retry_no = len(waits)
            again = verdict.retryable and (idempotent or verdict.error_code in UNSENT)
            if not again or retry_no >= self.policy.max_retries:
                break
            wait = verdict.retry_after_s
            wait = self.policy.backoff(retry_no) if wait is None else wait
            left = self.limits.run_left()
            over_budget = sum(self.waited) + wait > self.policy.max_retry_wait
            if over_budget or (left is not None and wait >= left):
                break
            waits.append(wait)
            self.waited.append(wait)
            if self.policy.on_wait is not None:
                self.policy.on_wait(self.target.name, wait)
            await self.policy.sleep(wait)
        return Exchange(verdict, body, attempts, latency, tuple(waits))

    async def _send_once(
        self, method: str, url: httpx.URL, params: Mapping[str, str] | None, json_body: Any
    ) -> tuple[Classification, bytes, int | None]:
        headers = request_headers(self.target)
        async with self.lanes.lane() as client:  # held while on the wire, not while sleeping
            try:
                got = await fetch(
                    client,
                    method,
                    url,
                    headers=headers,
                    limits=self.limits,
                    params=params,
                    json_body=json_body,
                )
            except Exception as exc:  # every failure becomes a classified result
                return transport_failure(exc, self.secrets), b"", None
        if got.failure is not None:
            return got.failure, b"", None
        verdict = classify(got.status_code, got.headers, got.body, secrets=self.secrets)
        return verdict, got.body, got.latency_ms

"""One bounded HTTP exchange: a total deadline, and a body capped before and after decoding.

httpx's timeouts are per operation: a relay that sends one byte every few seconds never trips
a read timeout and holds `check` (and a cron job) forever. So every request here runs under
one total deadline (connect, send, headers and the whole body), the shorter of the request's
own (`timeout` in config.toml, `--timeout`) and what is left of the run (`run_timeout`).

httpx decodes gzip one network chunk at a time with no output bound: a 64 KiB chunk of a
gzip bomb becomes ~64 MiB in one step, before any cap on the decoded size can act. So the
body is read raw, capped, and decoded here with zlib's `max_length`, which never produces
more than the cap. Only gzip and deflate are asked for (Accept-Encoding) and accepted.

Used by the health checker (transport.Session) and the Administration API client (admin.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import httpx

from vault.health.model import Classification, Status

MAX_BODY: Final = 2 * 1024 * 1024  # a model list is ~20 KiB; a runaway body must not eat memory
ACCEPT_ENCODING: Final = "gzip, deflate"  # what `_Decoder` can bound; never br or zstd
DEFAULT_REQUEST_TIMEOUT: Final = 30.0  # seconds per request, first byte sent to last received
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS


class BadBody(Exception):
    """raised inside `fetch` when a body cannot be read as sent; `verdict` says what it is
    (`answered`: the HTTP status the answer came with)"""

    def verdict(self, limits: Limits, answered: int | None) -> Classification:
        evidence = f"answer in {self.args[0]}"
        return Classification(
            Status.UNEXPECTED, False, evidence, error_code="encoding", message=evidence
        )


class BodyTooLarge(BadBody):
    """raised inside `fetch` when a body passes its cap, raw or decoded"""

    def verdict(self, limits: Limits, answered: int | None) -> Classification:
        evidence = f"answer larger than {limits.max_body // 1024} KiB, not read"
        return Classification(
            Status.UNEXPECTED, False, evidence, error_code="body_too_large", message=evidence
        )


class UnreadableEncoding(BadBody):
    """raised inside `fetch` for a body in an encoding that was not asked for (br, zstd: a
    CDN or relay that compresses whatever the client said) or that does not inflate. Something
    between us and the API mangled the answer, so what it says about the key is unknown: a
    network problem, like a body cut short, but not retried (the same hop will do it again).
    Decoders for br and zstd are not installed: each is one more compiled dependency (and
    brotli bounds its output only since 1.2.0), for hops that ignore our Accept-Encoding."""

    def __init__(self, evidence: str, why: str) -> None:
        super().__init__(evidence)
        self.why = why

    def verdict(self, limits: Limits, answered: int | None) -> Classification:
        # the status is kept ("http 401 in br" is not "no answer"); the explanation goes in
        # the evidence, since `message` with a status is shown as what the server said
        return Classification(
            Status.NETWORK_ERROR,
            False,
            f"{self.why}: a relay, proxy or CDN on the way changed it",
            answered,
            error_code="encoding",
        )


class UnsupportedEncoding(UnreadableEncoding):
    """raised inside `fetch` for a Content-Encoding we did not ask for and cannot bound"""

    def __init__(self, coding: str) -> None:
        why = f"answer in {coding}, which keyvault did not ask for and cannot read"
        super().__init__(f"an unsupported encoding ({coding})", why)


class CorruptBody(UnreadableEncoding):
    """raised inside `fetch` for a compressed body that does not inflate"""

    def __init__(self, coding: str | None) -> None:
        why = f"{coding} body that does not inflate"
        super().__init__(f"a corrupt encoding ({coding})", why)


class CutShort(BadBody):
    """raised inside `fetch` when a compressed body ends before its end marker: the
    connection closed early (HTTP's own framing cannot tell, when it is closed by length)"""

    def verdict(self, limits: Limits, answered: int | None) -> Classification:
        return Classification(
            Status.NETWORK_ERROR,
            True,  # like a chunked body cut short (httpx's RemoteProtocolError): worth a retry
            "answer cut short",
            error_code="truncated_body",
            message=f"the {self.args[0]} body ended before its end marker: the connection"
            " closed early",
        )


@dataclass(frozen=True)
class Limits:
    """How long one request may take, when the whole run must end, how large a body may be.

    `run_ends` is a `time.monotonic()` value: a clock change does not move it.
    """

    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    run_timeout: float | None = None
    run_ends: float | None = None
    max_body: int = MAX_BODY

    @classmethod
    def starting_now(
        cls, request_timeout: float, run_timeout: float | None, *, max_body: int = MAX_BODY
    ) -> Limits:
        ends = None if run_timeout is None else time.monotonic() + run_timeout
        return cls(request_timeout, run_timeout, ends, max_body)

    def with_max_body(self, max_body: int) -> Limits:
        return dataclasses.replace(self, max_body=max_body)

    def run_left(self) -> float | None:
        """Seconds left in the run, or None when the run has no deadline."""
        return None if self.run_ends is None else self.run_ends - time.monotonic()

    def budget(self) -> tuple[float, bool]:
        """Seconds this request may take, and whether the run's deadline is what limits it."""
        left = self.run_left()
        if left is not None and left < self.request_timeout:
            return max(left, 0.0), True
        return self.request_timeout, False


def deadline_failure(limits: Limits, *, run: bool) -> Classification:
    """The verdict on a request (or a key) that ran out of time."""
    if run:
        seconds = limits.run_timeout or 0.0
        return Classification(
            Status.NETWORK_ERROR,
            False,
            f"run deadline of {seconds:g} s passed",
            error_code="run_deadline",
            message=f"the whole run's deadline ({seconds:g} s, --run-timeout or run_timeout in"
            " config.toml) passed before this key's check finished",
        )
    seconds = limits.request_timeout
    return Classification(
        Status.NETWORK_ERROR,
        False,  # a server that trickles will trickle again
        f"no complete answer within {seconds:g} s",
        error_code="deadline",
        message=f"the server did not finish its answer within {seconds:g} s (--timeout or"
        " timeout in config.toml)",
    )


class Fetched(NamedTuple):
    """An HTTP answer (status, headers, decoded body) or, in `failure`, why there is none."""

    failure: Classification | None
    status_code: int | None = None
    headers: Mapping[str, str] = {}
    body: bytes = b""
    latency_ms: int | None = None


async def fetch(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    *,
    headers: Mapping[str, str],
    limits: Limits,
    params: Mapping[str, Any] | None = None,
    json_body: Any = None,
) -> Fetched:
    """Send one request and read its whole answer within `limits`; never raises for what
    the network or the server does (a transport error is re-raised for the caller to map)."""
    seconds, run_bound = limits.budget()
    if seconds <= 0:
        return Fetched(deadline_failure(limits, run=True))
    sent = {**headers, "Accept-Encoding": ACCEPT_ENCODING}
    started = time.perf_counter()
    answered: int | None = None
    try:
        async with asyncio.timeout(seconds):
            async with client.stream(
                method, url, params=params, json=json_body, headers=sent
            ) as response:
                answered = response.status_code
                body = await read_body(response, limits.max_body)
    except TimeoutError:  # asyncio's total deadline; httpx's own timeouts are not TimeoutError
        return Fetched(deadline_failure(limits, run=run_bound))
    except BadBody as exc:
        return Fetched(exc.verdict(limits, answered))
    latency = round((time.perf_counter() - started) * 1000)
    return Fetched(None, response.status_code, response.headers, body, latency)


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The decoded body; BodyTooLarge as soon as the raw or the decoded size passes `limit`."""
    decoder = _Decoder(response.headers.get("content-encoding", ""), limit)
    raw_size = 0
    async for chunk in response.aiter_raw():
        raw_size += len(chunk)
        if raw_size > limit:
            raise BodyTooLarge
        decoder.feed(chunk)
    return decoder.finish()


class _Decoder:
    """gzip or deflate (or nothing), never producing more than `limit` bytes in total."""

    def __init__(self, header: str, limit: int) -> None:
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in ("gzip", "x-gzip", "deflate")):
            raise UnsupportedEncoding(", ".join(codings)[:40])
        self._coding = codings[0] if codings else None
        self._limit, self._parts, self._size = limit, list[bytes](), 0
        wbits = _GZIP_WBITS if self._coding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits) if self._coding else None
        self._first = True

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self._zlib is None:
            self._keep(data)
            return
        try:
            out = self._zlib.decompress(data, self._limit - self._size + 1)
        except zlib.error:
            if not (self._first and self._coding == "deflate"):
                raise CorruptBody(self._coding) from None
            # "deflate" is raw deflate on some servers, zlib-wrapped on others (httpx does this)
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                out = self._zlib.decompress(data, self._limit - self._size + 1)
            except zlib.error:
                raise CorruptBody(self._coding) from None
        self._first = False
        self._keep(out)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise BodyTooLarge
        self._parts.append(data)

    def finish(self) -> bytes:
        if self._zlib is not None:
            self._keep(self._zlib.flush(self._limit - self._size + 1))
            # zlib keeps quiet about a stream that simply stops; an empty body (a 204, a
            # redirect sent with the header anyway) is no stream at all, not a cut one
            if not self._zlib.eof and not self._first:
                raise CutShort(self._coding)
        return b"".join(self._parts)

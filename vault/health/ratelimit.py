"""Parsing of rate-limit and retry headers; every parser returns None on garbage, never raises.

OpenAI sends `x-ratelimit-*` headers with Go durations (`12ms`, `13.694s`, `6m0s`) and, on
429, `retry-after-ms` and/or `Retry-After`; relays send whatever they like.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Final

_UNIT_SECONDS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_GO_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)")
_NUMBER: Final = re.compile(r"\d+(?:\.\d*)?|\.\d+")
# "Please try again in 20s." / "try again in 6m0s" / "try again in 1.5 seconds"
_TRY_AGAIN: Final = re.compile(r"(?i)try again in ((?:\d+(?:\.\d*)?(?:ns|us|µs|ms|s|m|h))+)\b")
_MAX_SECONDS: Final = 10 * 365 * 86400.0
# The longest wait a server may ask for: a day, OpenAI's longest limit window (requests and
# tokens per day). A relay's `Retry-After: 99999999` (three years) is taken as a day: it still
# says "not now", but must not bench the key (rotation's cooldown honours it) for years.
MAX_SERVER_WAIT: Final = 86400.0

# header suffix -> (result key, parser kind)
_RATELIMIT_HEADERS: Final = {
    "limit-requests": ("limit_requests", "count"),
    "remaining-requests": ("remaining_requests", "count"),
    "limit-tokens": ("limit_tokens", "count"),
    "remaining-tokens": ("remaining_tokens", "count"),
    "reset-requests": ("reset_requests_s", "duration"),
    "reset-tokens": ("reset_tokens_s", "duration"),
}


def _finite(value: float | None) -> float | None:
    return value if value is not None and 0 <= value <= _MAX_SECONDS else None


def _wait(value: float | None) -> float | None:
    """A wait a server asked for, at most MAX_SERVER_WAIT; None if negative or not a number."""
    return min(value, MAX_SERVER_WAIT) if value is not None and value >= 0 else None


def _seconds(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _go_seconds(text: str) -> float | None:
    text = text.strip()
    if _NUMBER.fullmatch(text):
        return _seconds(float(text))
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return _seconds(sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def parse_go_duration(text: str | None) -> float | None:
    """Seconds in a Go duration (`1h2m3.5s`, `12ms`) or a bare number of seconds; else None."""
    return None if text is None else _finite(_go_seconds(text))


def _parse_count(text: str) -> float | None:
    text = text.strip()
    return _finite(_seconds(float(text))) if _NUMBER.fullmatch(text) else None


def parse_ratelimit(headers: Mapping[str, str]) -> dict[str, float] | None:
    """The `x-ratelimit-*` headers as numbers (durations in seconds); None if none parse."""
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed: dict[str, float] = {}
    for suffix, (key, kind) in _RATELIMIT_HEADERS.items():
        raw = lowered.get("x-ratelimit-" + suffix)
        if raw is None:
            continue
        value = parse_go_duration(raw) if kind == "duration" else _parse_count(raw)
        if value is not None:
            parsed[key] = int(value) if kind == "count" and value.is_integer() else value
    return parsed or None


def _http_date_delta(value: str, date_header: str | None) -> float | None:
    """Seconds from the response's own Date to an HTTP-date Retry-After (pure: no local clock)."""
    if date_header is None:
        return None
    try:
        delta = (parsedate_to_datetime(value) - parsedate_to_datetime(date_header)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _wait(max(delta, 0.0))


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, at most MAX_SERVER_WAIT: `retry-after-ms` first, then `Retry-After`
    (seconds or HTTP-date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms", "").strip()
    if _NUMBER.fullmatch(millis):
        return _wait(_seconds(float(millis) / 1000))
    value = lowered.get("retry-after", "").strip()
    if not value:
        return None
    if _NUMBER.fullmatch(value):
        return _wait(_seconds(float(value)))
    return _http_date_delta(value, lowered.get("date"))


def retry_hint_from_message(message: str | None) -> float | None:
    """The wait in OpenAI's rate-limit prose ("Please try again in 20s."), used without
    headers; at most MAX_SERVER_WAIT."""
    if not message:
        return None
    match = _TRY_AGAIN.search(message)
    return _wait(_go_seconds(match.group(1))) if match else None

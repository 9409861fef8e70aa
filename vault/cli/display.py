"""How health reads for people: times, evidence and advice, in one place for `check`, `show`
and `rotate`.

Times are local unless the invocation asked for `--utc` (vault/cli/options.py); JSON output
never comes through here and stays UTC ISO. Server text is shown through `server_text`: the
API's own masking of a key (`sk-proj-****…****wxyz`, ~150 asterisks for a project key) is
shortened to `sk-proj-…wxyz`, and control characters are neutralised.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Final, Protocol

from vault.cli.options import utc_wanted
from vault.cli.report import safe
from vault.model.clock import human, parse_time, time_of_day
from vault.model.entry import CREDIT_RELAY, CREDIT_TYPED, Entry
from vault.model.health import ADVICE, HealthRecord, HealthStatus

_LONG_MASK: Final = re.compile(r"\*{5,}")
SERVER_TEXT_LIMIT: Final = 160
# statuses whose evidence depends on where the key was sent: show the base URL with them
_WHERE_MATTERS: Final = frozenset({HealthStatus.UNEXPECTED, HealthStatus.NETWORK_ERROR})


class Evidence(Protocol):
    """What a stored `HealthRecord` and a fresh `HealthResult` both carry."""

    @property
    def status(self) -> HealthStatus: ...
    @property
    def probe(self) -> str: ...
    @property
    def http_status(self) -> int | None: ...
    @property
    def evidence(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def retry_at(self) -> str | None: ...
    @property
    def checked_at(self) -> str: ...


def when(moment: dt.datetime | str | None, *, seconds: bool = False) -> str:
    """A date and time for people: local with its zone, or UTC with `--utc`."""
    return human(moment, utc=utc_wanted(), seconds=seconds)


def clock_time(moment: dt.datetime | str | None) -> str:
    """A time of day (`15:21:07`, `15:21:07 UTC` with `--utc`) for waits measured in seconds."""
    parsed = parse_time(moment) if isinstance(moment, str) else moment
    if parsed is None:
        return "-"
    return time_of_day(parsed, utc=utc_wanted(), seconds=True)


def _retry_time(health: Evidence) -> str:
    """When to retry: a time of day when that is the day of the check, else with its date
    (a daily limit's reset tomorrow, or a record read days later by `show`)."""
    retry, checked = parse_time(health.retry_at), parse_time(health.checked_at)
    if retry is None or checked is None:
        return when(retry, seconds=True)
    zone = dt.UTC if utc_wanted() else None
    same_day = retry.astimezone(zone).date() == checked.astimezone(zone).date()
    return clock_time(retry) if same_day else when(retry, seconds=True)


def server_text(message: str, limit: int = SERVER_TEXT_LIMIT) -> str:
    """A server's words, short: long runs of mask asterisks become `…`, one line, clipped."""
    text = safe(_LONG_MASK.sub("…", message))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_line(health: Evidence, base_url: str | None = None) -> str:
    """What decided a verdict: the probe, the HTTP status, the rule, the retry time, the
    base URL when it matters, and the server's own words."""
    parts = [f"{health.probe} probe"]
    if health.http_status is not None and f"http {health.http_status}" not in (
        health.evidence or ""
    ):
        parts.append(f"http {health.http_status}")
    if health.evidence:
        parts.append(safe(health.evidence))
    if health.retry_at and health.status is not HealthStatus.OK:
        parts.append(f"retry after {_retry_time(health)}")
    if base_url and health.status in _WHERE_MATTERS:
        parts.append(f"base_url {safe(base_url)}")
    line = ", ".join(parts)
    if health.message:  # the server's words only when a server answered
        label = "server said" if health.http_status is not None else "detail"
        line += f'; {label} "{server_text(health.message)}"'
    return line


def advice_lines(statuses: Iterable[HealthStatus]) -> list[str]:
    """One line of advice per status that is not ok, in the table's order (ADVICE)."""
    present = set(statuses)
    return [f"{s}: {ADVICE[s]}" for s in ADVICE if s in present and s is not HealthStatus.OK]


def summary(statuses: Iterable[HealthStatus]) -> str:
    """`12 ok, 2 invalid, 1 quota_exhausted`: ok first, then the table's order."""
    counts: Mapping[HealthStatus, int] = Counter(statuses)
    return ", ".join(f"{counts[s]} {s}" for s in ADVICE if counts.get(s))


def health_lines(health: HealthRecord | None, *, base_url: str | None = None) -> list[str]:
    """A stored health record as readable lines (`keyvault show`)."""
    if health is None:
        return ["never checked"]
    lines = [f"{health.status} ({health.probe} probe, {when(health.checked_at)})"]
    if health.ok:
        return lines
    lines.append(evidence_line(health, base_url))
    lines.append(f"what to do: {ADVICE[health.status]}")
    if health.consecutive_failures > 1:
        lines.append(f"{health.consecutive_failures} hard failures in a row")
    lines.append(f"last ok {when(health.last_ok_at)}" if health.last_ok_at else "never ok")
    return lines


def credit(entry: Entry) -> str:
    """The recorded credit and where it came from: `$7.50 (read from the relay 2026-03-01
    12:00 CET)`, `$20.00 (typed 2026-02-01 10:00 CET)`, `-` when none is recorded."""
    if entry.credit_usd is None:
        return "-"
    amount = f"${entry.credit_usd:,.2f}"
    if entry.credit_source is None:
        return amount
    source = CREDIT_SOURCES.get(entry.credit_source, entry.credit_source)
    return f"{amount} ({source} {when(entry.credit_at)})"


CREDIT_SOURCES: Final[Mapping[str, str]] = {
    CREDIT_TYPED: "typed",
    CREDIT_RELAY: "read from the relay",
}

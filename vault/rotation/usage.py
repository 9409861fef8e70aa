"""Spend per project and per key from the Administration API: `keyvault usage`.

Costs come grouped by project and API key (every page). A vault entry is matched to an API
key id through the mint records (exact) or the key list's redacted value (`sk-abc...def`,
first and last characters, within the same OpenAI project). Remaining credit is an estimate:
the entry's recorded `credit_usd` minus what the key spent since that figure was recorded
(`credit_at`; for entries from before keyvault kept it, since the entry was last updated).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from vault.errors import InvalidValue
from vault.health.admin import AdminClient
from vault.health.admin_answers import CostRow
from vault.health.fetch import Limits
from vault.model.clock import iso, parse_time
from vault.model.document import Entry, Kind, VaultDoc
from vault.rotation.mint_admin import admin_entry, project_id_for
from vault.store.keyvault import Keyvault

MAX_DAYS = 180
DAY = 86_400


@dataclass(frozen=True)
class KeySpend:
    api_key_id: str | None
    project_id: str | None
    spend_usd: float
    name: str | None = None  # the vault entry, when matched
    credit_usd: float | None = None
    remaining_usd: float | None = None


@dataclass(frozen=True)
class ProjectSpend:
    project_id: str | None
    spend_usd: float
    name: str | None = None  # OpenAI's project name
    vault_project: str | None = None


@dataclass(frozen=True)
class DaySpend:
    day: str  # the API's day bucket, YYYY-MM-DD in UTC
    spend_usd: float


@dataclass
class UsageReport:
    days: int
    start: str
    end: str
    projects: list[ProjectSpend] = field(default_factory=list)
    keys: list[KeySpend] = field(default_factory=list)
    daily: list[DaySpend] = field(default_factory=list)  # every day of the window, oldest first

    def project_label(self, project_id: str | None) -> str | None:
        """How people know a project: the vault's name for it, else OpenAI's, else the id."""
        for p in self.projects:
            if p.project_id == project_id:
                return p.vault_project or p.name or project_id
        return project_id

    @property
    def total_usd(self) -> float:
        return round(sum(p.spend_usd for p in self.projects), 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "start": self.start,
            "end": self.end,
            "total_usd": self.total_usd,
            "projects": [p.__dict__ for p in self.projects],
            "keys": [k.__dict__ for k in self.keys],
            "daily": [d.__dict__ for d in self.daily],
        }


def usage_report(
    kv: Keyvault,
    project: str | None,
    days: int,
    *,
    every_project: bool = False,
    admin: str | None = None,
    proxy: str | None = None,
    transport: Any = None,
    request_timeout: float | None = None,
    run_timeout: float | None = None,
) -> UsageReport:
    """Spend over the last `days` days, for one vault project or (`every_project`) all.
    The deadlines default to `timeout` and `run_timeout` in config.toml."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidValue(f"days must be between 1 and {MAX_DAYS}")
    doc, end = kv.read(), kv.clock()
    start = end - dt.timedelta(days=days)
    key = admin_entry(doc, project, admin)
    only = None if every_project else [project_id_for(doc, kv, project)]
    limits = Limits.starting_now(
        request_timeout or kv.config.timeout, run_timeout or kv.config.run_timeout
    )
    with AdminClient(
        key.secret,
        base_url=key.effective_base_url,
        proxy=proxy,
        transport=transport,
        limits=limits,
    ) as api:
        rows = api.costs(int(start.timestamp()), int(end.timestamp()), project_ids=only)
        names = {p["id"]: p.get("name") for p in api.list_projects() if "id" in p}
        spent_ids = {r.project_id for r in rows if r.project_id}
        listed = {pid: api.list_api_keys(pid) for pid in sorted(spent_ids)}
    report = UsageReport(days, iso(start), iso(end))
    report.projects = _by_project(rows, names, doc)
    report.keys = _by_key(rows, _match_keys(doc, listed))
    report.daily = _by_day(rows, start, end)
    return report


def _by_day(rows: Iterable[CostRow], start: dt.datetime, end: dt.datetime) -> list[DaySpend]:
    """Spend per UTC day bucket, with the days nothing was spent, so gaps show."""
    totals: dict[str, float] = defaultdict(float)
    for row in rows:
        totals[dt.datetime.fromtimestamp(row.start_time, dt.UTC).date().isoformat()] += (
            row.amount_usd
        )
    first, last = start.astimezone(dt.UTC).date(), end.astimezone(dt.UTC).date()
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return [DaySpend(d.isoformat(), round(totals.get(d.isoformat(), 0.0), 6)) for d in days]


def _by_project(
    rows: Iterable[CostRow], names: dict[str, Any], doc: VaultDoc
) -> list[ProjectSpend]:
    totals: dict[str | None, float] = defaultdict(float)
    for row in rows:
        totals[row.project_id] += row.amount_usd
    ours: dict[str | None, str | None] = {
        e.project_id: e.project for e in doc.entries if e.project_id
    }
    out = [
        ProjectSpend(pid, round(v, 6), names.get(pid or ""), ours.get(pid))
        for pid, v in totals.items()
    ]
    return sorted(out, key=lambda p: -p.spend_usd)


def _match_keys(doc: VaultDoc, listed: dict[str, list[dict[str, Any]]]) -> dict[str, Entry]:
    """API key id → vault entry: minted keys by record, others by their redacted value."""
    matched: dict[str, Entry] = {}
    for rec in doc.mints:
        entry = doc.by_id(rec.entry)
        if entry is not None and rec.key_id:
            matched[rec.key_id] = entry
    for project_id, keys in listed.items():
        for key in keys:
            if key.get("id") in matched:
                continue
            entry = _by_redacted(doc, project_id, str(key.get("redacted_value") or ""))
            if entry is not None:
                matched[str(key["id"])] = entry
    return matched


def _by_redacted(doc: VaultDoc, project_id: str, redacted: str) -> Entry | None:
    head, sep, tail = redacted.partition("...")
    if not sep or len(head) < 4 or not tail:
        return None
    found = [
        e
        for e in doc.entries
        if e.kind is Kind.API
        and e.project_id in (None, project_id)
        and e.secret.reveal().startswith(head)
        and e.secret.reveal().endswith(tail)
    ]
    return found[0] if len(found) == 1 else None  # ambiguous: better unnamed than wrong


def _by_key(rows: list[CostRow], matched: dict[str, Entry]) -> list[KeySpend]:
    spend: dict[tuple[str | None, str | None], float] = defaultdict(float)
    for row in rows:
        spend[(row.api_key_id, row.project_id)] += row.amount_usd
    out = []
    for (key_id, project_id), total in spend.items():
        entry = matched.get(key_id or "")
        remaining = None
        if entry is not None and entry.credit_usd is not None:
            remaining = round(entry.credit_usd - _spent_since(rows, key_id, entry), 6)
        out.append(
            KeySpend(
                key_id,
                project_id,
                round(total, 6),
                entry.name if entry else None,
                entry.credit_usd if entry else None,
                remaining,
            )
        )
    return sorted(out, key=lambda k: -k.spend_usd)


def _spent_since(rows: list[CostRow], key_id: str | None, entry: Entry) -> float:
    """Spend of one key in the day buckets from the day its credit was recorded on."""
    since = parse_time(entry.credit_at or entry.updated_at or entry.added_at)
    first = 0 if since is None else int(since.timestamp()) // DAY * DAY
    return sum(r.amount_usd for r in rows if r.api_key_id == key_id and r.start_time >= first)

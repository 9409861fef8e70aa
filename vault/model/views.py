"""What `list` and `cards` show: filters, sort orders and sums per card. Pure (no I/O).

A filter that names something the vault does not have (a tag no key carries, a card or phone
on no entry) is an error with "did you mean", never an empty list: a typo must not read as
"no such keys".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from vault.errors import EntryNotFound
from vault.model.document import Entry, Status, VaultDoc, did_you_mean, stored_form
from vault.model.health import HARD_FAILURES, HealthStatus
from vault.model.records import Action

UNCHECKED = "unchecked"  # the --health value of a key never checked
HEALTH_CHOICES = (*(s.value for s in HealthStatus), UNCHECKED)


def _health_rank(entry: Entry) -> int:
    """Problems first: hard failures, then other failures, then ok, then never checked."""
    if entry.health is None:
        return 3
    if entry.health.ok:
        return 2
    return 0 if entry.health.status in HARD_FAILURES else 1


def _credit_rank(entry: Entry) -> tuple[bool, float]:
    # least credit first (the keys about to run dry), unknown credit last
    return (entry.credit_usd is None, entry.credit_usd or 0.0)


SORTS: dict[str, Callable[[Entry], Any]] = {
    "name": lambda e: e.name.casefold(),
    "project": lambda e: ((e.project or "").casefold(), e.name.casefold()),
    "created": lambda e: (e.created or "", e.name.casefold()),
    "credit": _credit_rank,
    "health": lambda e: (_health_rank(e), e.name.casefold()),
}


class ListQuery(NamedTuple):
    """Which entries `list` shows and in what order (None: any; sort None: vault order)."""

    project: str | None = None
    status: str | None = None
    tags: tuple[str, ...] = ()
    phone: str | None = None
    card: str | None = None
    health: str | None = None
    sort: str | None = None

    def matches(self, entry: Entry) -> bool:
        checks = (
            self.project is None or entry.project == self.project,
            self.status is None or entry.status == self.status,
            all(tag in entry.tags for tag in self.tags),
            self.phone is None or entry.phone == self.phone,
            self.card is None or self.card.casefold() in (entry.card or "").casefold(),
            self.health is None or _health_name(entry) == self.health,
        )
        return all(checks)

    @property
    def filtered(self) -> bool:
        return any((self.project, self.status, self.tags, self.phone, self.card, self.health))


def _health_name(entry: Entry) -> str:
    return entry.health.status.value if entry.health is not None else UNCHECKED


def select_entries(doc: VaultDoc, query: ListQuery) -> list[Entry]:
    """The entries `query` asks for, sorted; EntryNotFound for a project, tag, phone or card
    that no entry has."""
    query = query._replace(
        project=stored_form(query.project) if query.project is not None else None,
        tags=tuple(map(stored_form, query.tags)),
    )
    doc.require_project(query.project)
    _require(query.tags, {t for e in doc.entries for t in e.tags}, "tag")
    _require([query.phone] if query.phone else [], {e.phone for e in doc.entries}, "phone")
    cards = {e.card for e in doc.entries if e.card}
    if query.card and not any(query.card.casefold() in c.casefold() for c in cards):
        raise EntryNotFound(
            f"no card label contains {query.card!r}", hint=_hint(query.card, sorted(cards), "card")
        )
    chosen = [e for e in doc.entries if query.matches(e)]
    if query.sort is not None:
        chosen.sort(key=SORTS[query.sort])
    return chosen


def _require(wanted: Iterable[str], known: set[str | None], what: str) -> None:
    names = sorted(k for k in known if k)
    for item in wanted:
        if item not in known:
            raise EntryNotFound(f"no key has the {what} {item!r}", hint=_hint(item, names, what))


def _hint(item: str, names: list[str], what: str) -> str | None:
    close = did_you_mean(item, names)
    if close and close.startswith("did you mean"):
        return close
    shown = ", ".join(names[:10]) + (", …" if len(names) > 10 else "")
    return f"{what}s on file: {shown}" if names else f"no key has a {what} yet"


def count_line(shown: list[Entry], total: int) -> str:
    """`3 keys: 1 active, 2 standby` (or `2 of 5 keys: …` when filtered)."""
    by_status = [f"{n} {s.value}" for s in Status if (n := sum(1 for e in shown if e.status is s))]
    noun = "key" if total == 1 else "keys"
    head = f"{len(shown)} {noun}" if len(shown) == total else f"{len(shown)} of {total} {noun}"
    return f"{head}: {', '.join(by_status)}" if by_status else head


# --- cards ------------------------------------------------------------------------------


class Totals(NamedTuple):
    """Keys, credit left and recorded spend of one card, or of one project on a card."""

    card: str | None
    project: str | None  # None in a card's own total row
    keys: int
    active: int
    credit_usd: float | None  # None: no key of the group has its credit recorded
    spend_usd: float


def recorded_spend(doc: VaultDoc) -> dict[str, float]:
    """Spend per entry id, from the credit drops that balance checks recorded (`credit`
    events: `previous` → `credit_usd`). A recharge (a rise) is not negative spend."""
    spend: dict[str, float] = {}
    for event in doc.history:
        if event.action != Action.CREDIT or event.entry is None:
            continue
        before, after = event.detail.get("previous"), event.detail.get("credit_usd")
        if isinstance(before, int | float) and isinstance(after, int | float) and after < before:
            spend[event.entry] = spend.get(event.entry, 0.0) + (before - after)
    return spend


def card_totals(doc: VaultDoc) -> list[Totals]:
    """For each card (keys without one last, as card None): its total row, then one row per
    project that has keys on it."""
    spend = recorded_spend(doc)
    cards = sorted({e.card for e in doc.entries}, key=lambda c: (c is None, (c or "").casefold()))
    rows: list[Totals] = []
    for card in cards:
        on_card = [e for e in doc.entries if e.card == card]
        rows.append(_totals(card, None, on_card, spend))
        projects = sorted({e.project for e in on_card}, key=lambda p: (p is None, p or ""))
        rows += [_totals(card, p, [e for e in on_card if e.project == p], spend) for p in projects]
    return rows


def _totals(
    card: str | None, project: str | None, entries: list[Entry], spend: dict[str, float]
) -> Totals:
    credits = [e.credit_usd for e in entries if e.credit_usd is not None]
    return Totals(
        card,
        project,
        len(entries),
        sum(1 for e in entries if e.status is Status.ACTIVE),
        round(sum(credits), 4) if credits else None,
        round(sum(spend.get(e.id, 0.0) for e in entries), 4),
    )

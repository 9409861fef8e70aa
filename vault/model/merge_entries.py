"""Merging the entries of two versions of a vault: by id, field by field (docs/team.md).

- A field changed on one side only takes that side's value; changed on both sides to
  different values, the side whose last change to that entry is later wins (its history
  events and `updated_at`), and the conflict is reported. Tags merge as a set.
- A secret replaced on both sides keeps both keys: the later one in the entry, the other
  as a new standby entry (a key that exists at OpenAI is never dropped).
- Health follows the secret it was measured on; credit moves as one unit with its source.
- Deleted on one side and edited on the other: the edited entry stays, reported. A health
  check, a relay's balance or a policy's status change is not an edit: such an entry goes.
- The same secret added on both sides under two ids: the one added first stays, reported.
Names and active keys are settled afterwards, on the whole list (vault/model/merge.py).
Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from vault.model.entry import CREDIT_RELAY, Entry, Status
from vault.model.merge_records import MISSING, Conflict, canonical, later, three_way
from vault.model.records import EMPTY, Action, Event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

# fields merged together: the credit figure, where it came from and when
_CREDIT: Final = ("credit_usd", "credit_source", "credit_at")
_SINGLE: Final = tuple(
    f
    for f in Entry.__slots__
    if f not in {*_CREDIT, "id", "secret", "health", "tags", "updated_at", "extra"}
)
# what is no edit when deciding "deleted on one side, edited on the other"
_NOT_AN_EDIT: Final = frozenset({"health", "updated_at"})


class Side:
    """One side's entries and, per entry id, the time of its last change since the base."""

    __slots__ = ("entries", "stamps")

    def __init__(self, entries: list[Entry], new_events: Iterable[Event]) -> None:
        self.entries = {e.id: e for e in entries}
        self.stamps: dict[str, str] = {}
        for event in new_events:
            if event.entry is not None and event.at > self.stamps.get(event.entry, ""):
                self.stamps[event.entry] = event.at

    def stamp(self, entry: Entry) -> str:
        return max(self.stamps.get(entry.id, ""), entry.updated_at or "")


class EntryMerge:
    """The merged entries, what was resolved, and the events the merge itself adds."""

    def __init__(self, at: str) -> None:
        self.at = at
        self.entries: list[Entry] = []
        self.conflicts: list[Conflict] = []
        self.events: list[Event] = []
        self.dropped: dict[str, str] = {}  # an id merged away → the id that replaced it

    def report(self, kind: str, subject: str, detail: str) -> None:
        self.conflicts.append(Conflict(kind, subject, detail))


def merge_entries(base: list[Entry], a: Side, b: Side, *, at: str) -> EntryMerge:
    old = {e.id: e for e in base}
    out = EntryMerge(at)
    new_ids = {*a.entries, *b.entries} - set(old)
    ordered = [e.id for e in base] + sorted(new_ids, key=lambda i: (_added(a, b, i), i))
    for entry_id in ordered:
        merged = _one(old.get(entry_id), a, b, entry_id, out)
        if merged is not None:
            out.entries.append(merged)
    _same_key_twice(out, new_ids)
    return out


def _added(a: Side, b: Side, entry_id: str) -> str:
    sides = (a.entries.get(entry_id), b.entries.get(entry_id))
    return min((e.added_at or "") for e in sides if e is not None)


def _one(old: Entry | None, a: Side, b: Side, entry_id: str, out: EntryMerge) -> Entry | None:
    mine, theirs = a.entries.get(entry_id), b.entries.get(entry_id)
    if mine is not None and theirs is not None:
        return mine if mine == theirs else _fields(old, mine, theirs, sides=(a, b), out=out)
    present = mine if mine is not None else theirs
    if present is None or old is None:
        return present  # added on one side, or removed on both
    if not edited(old, present):
        return None  # removed on one side, untouched on the other
    out.report("delete-edit", present.name, "removed on one side, edited on the other: kept")
    return present


def edited(old: Entry, new: Entry) -> bool:
    """Whether `new` holds a change someone made on purpose (see the module docstring)."""
    for field in Entry.__slots__:
        if field in _NOT_AN_EDIT or getattr(old, field) == getattr(new, field):
            continue
        if field in _CREDIT and new.credit_source == CREDIT_RELAY:
            continue
        if field == "status" and new.status is not Status.ACTIVE:
            continue
        return True
    return False


def _fields(
    old: Entry | None, mine: Entry, theirs: Entry, *, sides: tuple[Side, Side], out: EntryMerge
) -> Entry:
    stamp_a, stamp_b = sides[0].stamp(mine), sides[1].stamp(theirs)
    values: dict[str, Any] = {}
    for field in _SINGLE:
        base = getattr(old, field) if old is not None else MISSING
        values[field], clash = three_way(
            base, getattr(mine, field), getattr(theirs, field), stamp_a, stamp_b
        )
        if clash:
            out.report("field", mine.name, f"{field} edited on both sides: the later edit kept")
    values.update(_credit(old, mine, theirs, stamps=(stamp_a, stamp_b), out=out))
    values["tags"] = _tags(old, mine, theirs)
    values["extra"] = _extra(old, mine, theirs, stamp_a, stamp_b)
    values["updated_at"] = max(mine.updated_at or "", theirs.updated_at or "") or None
    secret, loser = _secret(old, mine, theirs, stamp_a, stamp_b)
    values["secret"] = secret.secret
    values["health"] = _health(old, mine, theirs, secret.secret)
    merged = mine.evolve(**values)
    if loser is not None:
        _keep_other_key(merged, loser, out)
    return merged


def _credit(
    old: Entry | None, mine: Entry, theirs: Entry, *, stamps: tuple[str, str], out: EntryMerge
) -> dict[str, Any]:
    def unit(entry: Entry | None) -> Any:
        return tuple(getattr(entry, f) for f in _CREDIT) if entry is not None else MISSING

    when_a = mine.credit_at or stamps[0]
    when_b = theirs.credit_at or stamps[1]
    value, clash = three_way(unit(old), unit(mine), unit(theirs), when_a, when_b)
    if clash:
        out.report("field", mine.name, "credit changed on both sides: the later figure kept")
    return dict(zip(_CREDIT, value, strict=True))


def _tags(old: Entry | None, mine: Entry, theirs: Entry) -> list[str]:
    before = set(old.tags) if old is not None else set()
    removed = (before - set(mine.tags)) | (before - set(theirs.tags))
    return sorted({*mine.tags, *theirs.tags} - removed)


def _extra(
    old: Entry | None, mine: Entry, theirs: Entry, stamp_a: str, stamp_b: str
) -> dict[str, Any]:
    base: Mapping[str, Any] = old.extra if old is not None else {}
    merged = {}
    for key in sorted({*base, *mine.extra, *theirs.extra}):
        value, _ = three_way(
            base.get(key, MISSING),
            mine.extra.get(key, MISSING),
            theirs.extra.get(key, MISSING),
            stamp_a,
            stamp_b,
        )
        if value is not MISSING:
            merged[key] = value
    return merged


def _secret(
    old: Entry | None, mine: Entry, theirs: Entry, stamp_a: str, stamp_b: str
) -> tuple[Entry, Entry | None]:
    """The side whose secret the entry keeps, and the other side when it replaced the
    secret too (its key then lives on as a new entry)."""
    if mine.secret == theirs.secret or (old is not None and theirs.secret == old.secret):
        return mine, None
    if old is not None and mine.secret == old.secret:
        return theirs, None
    winner = later(mine, theirs, stamp_a, stamp_b)
    return winner, (theirs if winner is mine else mine)


def _health(old: Entry | None, mine: Entry, theirs: Entry, secret: Any) -> Any:
    """The health measured on the secret the entry keeps; both sides measured it: the later
    check (a side that did not check keeps the base's result, which the other replaced)."""
    sides = [e for e in (mine, theirs) if e.secret == secret]
    if len(sides) == 1:
        return sides[0].health
    base = old.health if old is not None and old.secret == secret else MISSING
    first, second = mine.health, theirs.health
    when_a = first.checked_at if first is not None else ""
    when_b = second.checked_at if second is not None else ""
    value, _ = three_way(base, first, second, when_a, when_b)
    return value


def _keep_other_key(merged: Entry, loser: Entry, out: EntryMerge) -> None:
    """Both sides replaced this entry's secret: keep the earlier replacement as a standby
    entry of its own (its id is derived from both, so every machine derives the same)."""
    copy_id = _derived_id(merged.id, loser.secret.reveal())
    name = f"{merged.name[:116].rstrip()} (other key)"
    copy = loser.evolve(id=copy_id, name=name, status=Status.STANDBY)
    out.entries.append(copy)
    out.report(
        "secret",
        merged.name,
        "secret replaced on both sides: the later key kept, the other stored as a new entry",
    )
    detail = {
        "status": copy.status.value,
        "reason": f"merge: the other new secret of {merged.name}",
    }
    out.events.append(Event(out.at, Action.ADD, copy.id, copy.name, copy.project, detail))


def _derived_id(entry_id: str, secret: str) -> str:
    from _blake2 import blake2b  # noqa: PLC0415

    return blake2b(f"{entry_id}\0{secret}".encode(), digest_size=8, person=b"kv-merge").hexdigest()


def _same_key_twice(out: EntryMerge, new_ids: set[str]) -> None:
    """One secret added on both sides under two ids: the entry added first stays."""
    by_secret: dict[str, list[Entry]] = {}
    for entry in out.entries:
        if entry.id in new_ids:
            by_secret.setdefault(entry.secret.reveal(), []).append(entry)
    for twins in by_secret.values():
        if len(twins) < 2:
            continue
        # an active twin stays (its project keeps its key), else the one added first
        first, *others = sorted(
            twins, key=lambda e: (e.status is not Status.ACTIVE, e.added_at or "", e.id)
        )
        for other in others:
            out.entries.remove(other)
            out.dropped[other.id] = first.id
            out.report(
                "same-key",
                other.name,
                f"the same key was added on both sides: kept as {first.name}",
            )


def merge_event(conflicts: list[Conflict], at: str) -> Event:
    """The history event a merge leaves: what it resolved (never a value)."""
    shown = [str(c) for c in conflicts[:50]]
    detail = {"conflicts": shown, "resolved": len(conflicts)} if conflicts else EMPTY
    return Event(at, Action.MERGE, detail=detail)


def canonical_entry(entry: Entry) -> str:
    return canonical({f: getattr(entry, f) for f in Entry.__slots__})

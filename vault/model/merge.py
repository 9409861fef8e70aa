"""The semantic 3-way merge of two versions of a vault document (docs/team.md).

    merged = merge(base, ours, theirs, at=now, rand=os.urandom)
    merged.doc          # a VaultDoc whose invariants hold
    merged.conflicts    # what both sides changed, and how it was resolved

git's merge driver, `keyvault sync` and `git pull --rebase` all come here. The merge is
deterministic and symmetric: merge(b, x, y) and merge(b, y, x) give the same document
(tests/test_merge_properties.py), so it never matters which machine merges. It never drops
a key either side still has or changed (vault/model/merge_entries.py), unions history
ordered by time, keeps every team secret, and rotates the team secret when the merged
members lack anyone either side had (so nobody removed on one side can still write a vault
the others accept). Pure: time and randomness come in as arguments.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.model.document import VaultDoc
from vault.model.entry import Entry, Kind, Status
from vault.model.merge_entries import EntryMerge, Side, merge_entries, merge_event
from vault.model.merge_records import (
    Conflict,
    canonical,
    free_name,
    merge_exports,
    merge_mapping,
    merge_members,
    merge_mints,
    merge_phones,
)
from vault.model.phones import phone_usage
from vault.model.records import Action, Event, MintRecord
from vault.model.team import Rand, merge_teams, new_team, with_fresh_secret
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Conflict", "Merged", "merge"]

DEFAULT_PHONE_SLOTS = 2  # as vault/store/config.py; the store passes the configured value


class Merged(NamedTuple):
    doc: VaultDoc
    conflicts: list[Conflict]


def merge(
    base: VaultDoc | None,
    ours: VaultDoc,
    theirs: VaultDoc,
    *,
    at: str,
    rand: Rand,
    phone_slots: int = DEFAULT_PHONE_SLOTS,
) -> Merged:
    """One document holding both sides' changes since `base` (None: no common version, so
    everything either side has counts as added). MergeRefused for two different vaults."""
    base = base if base is not None else VaultDoc()
    new_a, new_b = _new_events(base, ours), _new_events(base, theirs)
    entries = merge_entries(
        base.entries, Side(ours.entries, new_a), Side(theirs.entries, new_b), at=at
    )
    removed = _removal_times([*new_a, *new_b])
    members, member_conflicts = merge_members(
        base.recipients, ours.recipients, theirs.recipients, removed
    )
    doc = VaultDoc(
        generation=max(ours.generation, theirs.generation) + 1,
        recipients=members,
        entries=entries.entries,
        history=_history(ours.history, theirs.history),
        exports=merge_exports(base.exports, ours.exports, theirs.exports),
        mints=_remap_mints(merge_mints(base.mints, ours.mints, theirs.mints), entries),
        phones=merge_phones(base.phones, ours.phones, theirs.phones),
        team=merge_teams([ours.team, theirs.team]),
    )
    conflicts = [*entries.conflicts, *member_conflicts]
    doc.history.extend(entries.events)
    _drop_live_past_keys(doc)
    _unique_names(doc, conflicts, at)
    _one_active_per_project(doc, conflicts, at)
    _settle_team(doc, (ours, theirs), conflicts, at=at, rand=rand)
    _over_committed_phones(doc, (ours, theirs), phone_slots, conflicts)
    doc.extra, clashes = merge_mapping(base.extra, ours.extra, theirs.extra)
    conflicts += [
        Conflict("field", "document", f"{k} set on both sides: the larger kept") for k in clashes
    ]
    conflicts.sort(key=lambda c: (c.kind, c.subject, c.detail))
    doc.record(merge_event(conflicts, at))
    doc.check_invariants()
    return Merged(doc, conflicts)


# --- history ------------------------------------------------------------------------------


def _common_prefix(a: Sequence[Event], b: Sequence[Event]) -> int:
    length = min(len(a), len(b))
    index = 0
    while index < length and a[index] == b[index]:
        index += 1
    return index


def _new_events(base: VaultDoc, side: VaultDoc) -> list[Event]:
    """What `side` recorded since `base` (history is only appended to)."""
    return side.history[_common_prefix(base.history, side.history) :]


def _history(a: list[Event], b: list[Event]) -> list[Event]:
    """Both histories: the shared beginning as it is, then every other event once, by
    time (ties by value, so any order of the sides gives the same list)."""
    shared = _common_prefix(a, b)
    rest: dict[str, Event] = {}
    for event in (*a[shared:], *b[shared:]):
        rest.setdefault(_event_key(event), event)
    tail = sorted(rest.items(), key=lambda item: (item[1].at, item[0]))
    return [*a[:shared], *(event for _, event in tail)]


def _event_key(event: Event) -> str:
    return canonical(
        [event.at, str(event.action), event.entry, event.name, event.project, event.detail]
    )


def _removal_times(events: list[Event]) -> dict[str, str]:
    """Public key → the latest time either side removed it."""
    removed: dict[str, str] = {}
    for event in events:
        key = event.detail.get("recipient") if event.action is Action.RECIPIENT_RM else None
        if isinstance(key, str) and event.at > removed.get(key, ""):
            removed[key] = event.at
    return removed


# --- settling the whole document ------------------------------------------------------------


def _remap_mints(mints: list[MintRecord], entries: EntryMerge) -> list[MintRecord]:
    """A mint whose key was merged into its twin (the same key added on both sides)."""
    return [
        m._replace(entry=entries.dropped[m.entry]) if m.entry in entries.dropped else m
        for m in mints
    ]


def _drop_live_past_keys(doc: VaultDoc) -> None:
    """A key removed on one side but kept (edited on the other) is live, not past: its
    phone must not count it twice."""
    live = {e.id for e in doc.entries}
    doc.phones = [
        p._replace(past=tuple(k for k in p.past if k.entry not in live)) for p in doc.phones
    ]


def _unique_names(doc: VaultDoc, conflicts: list[Conflict], at: str) -> None:
    """Two entries with one name (added or renamed on both sides): the later one is renamed."""
    taken: set[str] = set()
    for entry in sorted(doc.entries, key=lambda e: (e.added_at or "", e.id)):
        if entry.name in taken:
            old = entry.name
            entry = _change(doc, entry, name=free_name(old, taken | set(doc.names())))  # noqa: PLW2901
            conflicts.append(
                Conflict(
                    "same-name", old, f"two keys share the name: the later one is now {entry.name}"
                )
            )
            detail = {"fields": ["name"], "reason": f"merge: {old} was taken"}
            doc.record(Event(at, Action.EDIT, entry.id, entry.name, entry.project, detail))
        taken.add(entry.name)


_ACTIVATING = frozenset({Action.ROTATE, Action.ADD, Action.EDIT})


def _one_active_per_project(doc: VaultDoc, conflicts: list[Conflict], at: str) -> None:
    """Both sides rotated one project: the key activated later stays active, the other is
    standby; an admin key is never active."""
    activated = _activation_times(doc)
    by_project: dict[str | None, list[Entry]] = {}
    for entry in doc.entries:
        if entry.status is Status.ACTIVE:
            if entry.kind is Kind.ADMIN:
                _demote(doc, entry, at, "merge: an admin key is never active")
                continue
            by_project.setdefault(entry.project, []).append(entry)
    for project, active in by_project.items():
        if len(active) < 2:
            continue
        keep = max(active, key=lambda e: (activated.get(e.id, e.updated_at or ""), e.id))
        for entry in active:
            if entry is not keep:
                _demote(doc, entry, at, f"merge: {keep.name} was activated later")
        where = f"project {project}" if project else "the default project"
        conflicts.append(
            Conflict(
                "two-active",
                where,
                f"both sides changed the active key: {keep.name} (the later) stays active",
            )
        )


def _activation_times(doc: VaultDoc) -> dict[str, str]:
    times: dict[str, str] = {}
    for event in doc.history:
        if event.entry is None or event.action not in _ACTIVATING:
            continue
        detail = event.detail
        if event.action is Action.ADD and detail.get("status") != Status.ACTIVE.value:
            continue
        if event.action is Action.EDIT and "status" not in detail.get("fields", ()):
            continue
        if event.at >= times.get(event.entry, ""):
            times[event.entry] = event.at
    return times


def _change(doc: VaultDoc, entry: Entry, **changes: Any) -> Entry:
    """A changed copy of `entry` in its place: the sides' own entries are never modified."""
    changed = entry.evolve(**changes)
    index = next(i for i, e in enumerate(doc.entries) if e is entry)
    doc.entries[index] = changed
    return changed


def _demote(doc: VaultDoc, entry: Entry, at: str, why: str) -> None:
    updated = max(at, entry.updated_at or "")
    entry = _change(doc, entry, status=Status.STANDBY, updated_at=updated)
    doc.record(
        Event(
            at,
            Action.STATUS,
            entry.id,
            entry.name,
            entry.project,
            {"status": "standby", "reason": why},
        )
    )


def _settle_team(
    doc: VaultDoc,
    sides: tuple[VaultDoc, VaultDoc],
    conflicts: list[Conflict],
    *,
    at: str,
    rand: Rand,
) -> None:
    """A merged vault always has a team record; when the merged members lack anyone either
    side had, a secret that person may have read is no longer proof of membership: a fresh
    one is added, which only the remaining members will read."""
    if doc.team is None:
        doc.team = new_team(at=at, rand=rand)
        reason = "first save with a team record"
    else:
        kept = {r.recipient for r in doc.recipients}
        gone = sorted({r.name for s in sides for r in s.recipients if r.recipient not in kept})
        if not gone:
            return
        doc.team = with_fresh_secret(doc.team, at=at, rand=rand)
        reason = f"merge: {', '.join(gone)} no longer a member"
        conflicts.append(
            Conflict("team", "team secret", f"rotated: {', '.join(gone)} removed on one side")
        )
    doc.record(
        Event(at, Action.TEAM_ROTATED, detail={"secret": doc.team.current.id, "reason": reason})
    )


def _over_committed_phones(
    doc: VaultDoc, sides: tuple[VaultDoc, VaultDoc], slots: int, conflicts: list[Conflict]
) -> None:
    """Keys on one phone beyond its slots, which neither side had: all kept (they exist at
    OpenAI); `phones` and `doctor` flag the phone."""
    before: dict[str, int] = {}
    for side in sides:
        for usage in phone_usage(side, slots):
            before[usage.phone] = max(before.get(usage.phone, 0), usage.used)
    for usage in phone_usage(doc, slots):
        if usage.over and before.get(usage.phone, 0) <= slots:
            conflicts.append(
                Conflict(
                    "phone",
                    usage.phone,
                    f"verifies {usage.used} keys (limit {slots}): all kept; over-committed",
                )
            )

"""The 3-way rules the merge shares, and the records besides entries: recipients, phones,
export targets, mint records, unknown fields (vault/model/merge.py puts them together).

Every rule is symmetric: it never prefers a side for being "ours". Where both sides changed
one value differently, the later change wins (each side's time stamp for it), and on equal
stamps the larger value in canonical JSON, so merge(base, x, y) == merge(base, y, x).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from enum import Enum

from vault.model.entry import Entry
from vault.model.records import MINT_TRANSITIONS, ExportTarget, MintRecord, MintState, Phone
from vault.model.records import Recipient as Member
from vault.model.secret import Secret
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final, TypeVar

    T = TypeVar("T")
    K = TypeVar("K")


class _Missing:
    """A value a side does not have (no base, or a record one side lacks)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()


class Conflict(NamedTuple):
    """One thing both sides changed, and how it was resolved; never holds a secret."""

    kind: str  # field, secret, delete-edit, same-name, same-key, two-active, phone, member, …
    subject: str  # the entry, member or record it is about
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail}"


def canonical(value: Any) -> str:
    """A total order for values of one field: their canonical JSON (secrets included: this
    string only orders values and is never shown)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_plain)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Entry):
        return {name: getattr(value, name) for name in Entry.__slots__}
    raise TypeError(type(value).__name__)


def later(a: T, b: T, stamp_a: str, stamp_b: str) -> T:
    """The value changed later; on equal stamps the larger one (the same in any order)."""
    if stamp_a != stamp_b:
        return a if stamp_a > stamp_b else b
    return a if canonical(a) >= canonical(b) else b


def three_way(base: Any, a: Any, b: Any, stamp_a: str, stamp_b: str) -> tuple[Any, bool]:
    """The merged value, and whether both sides changed it differently."""
    if a == b:
        return a, False
    if base is not MISSING and a == base:
        return b, False
    if base is not MISSING and b == base:
        return a, False
    return later(a, b, stamp_a, stamp_b), True


def merge_mapping(
    base: Mapping[str, Any] | None, a: Mapping[str, Any], b: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Unknown fields (a newer keyvault's) key by key; a key both sides set differently
    gets the larger value. Returns the merged mapping and the clashing keys."""
    merged: dict[str, Any] = {}
    clashes = []
    keys = sorted({*(base or {}), *a, *b})
    for key in keys:
        old = (base or {}).get(key, MISSING)
        value, clash = three_way(old, a.get(key, MISSING), b.get(key, MISSING), "", "")
        if clash:
            clashes.append(key)
        if value is not MISSING:
            merged[key] = value
    return merged, clashes


def ordered_union(base: Iterable[K], added: Iterable[K], sort_key: Callable[[K], Any]) -> list[K]:
    """Keys in base order, then the keys either side added, sorted (the same either way)."""
    seen = list(dict.fromkeys(base))
    known = set(seen)
    return seen + sorted({k for k in added if k not in known}, key=sort_key)


# --- recipients -------------------------------------------------------------------------


def merge_members(
    base: list[Member], a: list[Member], b: list[Member], removed_at: Mapping[str, str]
) -> tuple[list[Member], list[Conflict]]:
    """Recipients by public key. A removal on either side wins over "unchanged" on the
    other (removing is a security action); a side that added the key back after that
    removal keeps it. `removed_at` maps a public key to the latest removal time either side
    recorded. Never empty: if both sides removed everyone else, both removals are undone."""
    old = {r.recipient: r for r in base}
    mine, theirs = {r.recipient: r for r in a}, {r.recipient: r for r in b}
    keys = ordered_union(
        [r.recipient for r in base],
        [*mine, *theirs],
        lambda k: (min((r.added_at or "") for r in (mine.get(k), theirs.get(k)) if r), k),
    )
    merged, conflicts = [], []
    for key in keys:
        kept = _member(old.get(key), mine.get(key), theirs.get(key), removed_at.get(key, ""))
        if kept is not None:
            merged.append(kept)
    if not merged:
        merged = [mine.get(k) or theirs[k] for k in keys if k in mine or k in theirs]
        conflicts.append(
            Conflict("member", "recipients", "both sides removed every other member: all kept")
        )
    return _unique_member_names(merged, conflicts), conflicts


def _member(old: Member | None, a: Member | None, b: Member | None, rm_at: str) -> Member | None:
    if a is not None and b is not None:
        return a if a == b else later(a, b, a.added_at or "", b.added_at or "")
    present = a if a is not None else b
    if present is None or old is None:
        return present  # added on one side (or gone on both)
    if present == old:
        return None  # removed on one side, untouched on the other
    return present if (present.added_at or "") > rm_at else None  # added back after removal?


def _unique_member_names(members: list[Member], conflicts: list[Conflict]) -> list[Member]:
    taken: set[str] = set()
    out = []
    for member in sorted(members, key=lambda r: (r.added_at or "", r.recipient)):
        if member.name in taken:
            renamed = free_name(member.name, taken)
            conflicts.append(
                Conflict(
                    "same-name", member.name, f"two members share the name: one is now {renamed}"
                )
            )
            member = member._replace(name=renamed)  # noqa: PLW2901
        taken.add(member.name)
        out.append(member)
    order = {r.recipient: i for i, r in enumerate(members)}
    return sorted(out, key=lambda r: order[r.recipient])


def free_name(name: str, taken: set[str]) -> str:
    """`name-2`, `name-3`, … the first one not taken (cut to fit the 128-character limit)."""
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = name[: 128 - len(suffix)].rstrip() + suffix
        if candidate not in taken:
            return candidate
        number += 1


# --- phones, exports, mints ----------------------------------------------------------------


def merge_phones(base: list[Phone], a: list[Phone], b: list[Phone]) -> list[Phone]:
    """Union of spare phones and past verifications (OpenAI counts each once)."""
    old = {p.number: p for p in base}
    mine, theirs = {p.number: p for p in a}, {p.number: p for p in b}
    numbers = ordered_union([p.number for p in base], [*mine, *theirs], lambda n: n)
    merged = []
    for number in numbers:
        sides = [p for p in (mine.get(number), theirs.get(number)) if p is not None]
        if not sides:
            continue
        if len(sides) == 1:
            merged.append(sides[0])
            continue
        first, second = sides
        was = old.get(number)
        note, _ = three_way(was.note if was else MISSING, first.note, second.note, "", "")
        extra, _ = merge_mapping(was.extra if was else None, first.extra, second.extra)
        past = {k.entry: k for k in (*first.past, *second.past)}
        added = min((p.added_at for p in sides if p.added_at), default=None)
        ordered = tuple(sorted(past.values(), key=lambda k: (k.removed_at, k.entry)))
        merged.append(Phone(number, added, note, ordered, extra))
    return merged


def merge_exports(
    base: list[ExportTarget], a: list[ExportTarget], b: list[ExportTarget]
) -> list[ExportTarget]:
    """Registered .env files by path; a path registered differently on both sides goes to
    the later registration."""
    old = {t.path: t for t in base}
    mine, theirs = {t.path: t for t in a}, {t.path: t for t in b}
    paths = ordered_union([t.path for t in base], [*mine, *theirs], lambda p: p)
    merged = []
    for path in paths:
        value, _ = three_way(
            old.get(path, MISSING),
            mine.get(path, MISSING),
            theirs.get(path, MISSING),
            _added(mine.get(path)),
            _added(theirs.get(path)),
        )
        if value is not MISSING:
            merged.append(value)
    return merged


def _added(target: ExportTarget | None) -> str:
    return (target.added_at or "") if target is not None else ""


_M = MintState
_MINT_RANK: Final = {
    _M.INTENT: 0, _M.CREATED: 1, _M.SWITCHED: 2, _M.ACTIVE: 3,
    _M.RETIRING: 4, _M.ORPHANED: 4, _M.DELETED: 5, _M.ABANDONED: 5,
}  # fmt: skip
assert set(_MINT_RANK) == set(MINT_TRANSITIONS)  # noqa: S101 - a new state needs a rank


def merge_mints(
    base: list[MintRecord], a: list[MintRecord], b: list[MintRecord]
) -> list[MintRecord]:
    """Mint records by rid; one in both is the one further along its state machine."""
    mine, theirs = {r.rid: r for r in a}, {r.rid: r for r in b}
    rids = ordered_union([r.rid for r in base], [*mine, *theirs], lambda r: r)
    merged = []
    for rid in rids:
        sides = [r for r in (mine.get(rid), theirs.get(rid)) if r is not None]
        if sides:
            merged.append(max(sides, key=lambda r: (_MINT_RANK[r.state], canonical(r))))
    return merged

"""The decrypted vault document and its invariants; pure (no I/O, no clock of its own).

Entries themselves live in `vault.model.entry` (re-exported here).

Invariants kept here and nowhere else:
- entry names are unique;
- a project has at most one `active` entry, and it is never an admin key;
- a phone verifies at most `phone_slots` keys (retired keys still used their slot: OpenAI
  counts verifications, not live keys);
- `history` is only ever appended to.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from vault.errors import (
    DamagedVault,
    DuplicateName,
    EntryNotFound,
    NoActiveKey,
    PhoneFull,
    PolicyViolation,
)
from vault.model.entry import DEFAULT_BASE_URL, Entry, Kind, Status

__all__ = [
    "DEFAULT_BASE_URL",
    "FORMAT",
    "Entry",
    "Kind",
    "PhoneUsage",
    "Status",
    "VaultDoc",
    "check_exportable",
    "check_phone_room",
    "entry_event",
    "iter_entries",
    "phone_usage",
    "refuse_admin",
]

FORMAT = "keyvault/1"


class VaultDoc:
    """The decrypted document: recipients, entries and the append-only history."""

    def __init__(
        self,
        *,
        generation: int = 0,
        recipients: list[dict[str, str]] | None = None,
        entries: list[Entry] | None = None,
        history: list[dict[str, Any]] | None = None,
        exports: list[dict[str, Any]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.generation = generation
        self.recipients = recipients if recipients is not None else []
        self.entries = entries if entries is not None else []
        self.history = history if history is not None else []
        self.exports = exports if exports is not None else []
        self.extra = extra if extra is not None else {}  # unknown top-level keys, kept as-is

    _FIELDS = ("generation", "recipients", "entries", "history", "exports", "extra")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VaultDoc):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"VaultDoc(generation={self.generation}, entries={len(self.entries)})"

    # --- lookup ---------------------------------------------------------------------------

    def find(self, name: str) -> Entry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise EntryNotFound(f"no entry named {name!r}", hint="see `keyvault list`")

    def by_id(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def active(self, project: str | None) -> Entry:
        """The project's active key, never an admin key (even in a hand-edited vault)."""
        for entry in self.entries:
            if entry.project != project or entry.kind is Kind.ADMIN:
                continue
            if entry.status is Status.ACTIVE:
                return entry
        where = f"project {project!r}" if project else "the default project"
        problem, hint = (
            "has no active key",
            "activate one with `keyvault edit NAME --status active`",
        )
        if not any(e.project == project for e in self.entries):
            problem = "has no keys"
            others = sorted(
                e.project for e in self.entries if e.status is Status.ACTIVE and e.project
            )
            if others:
                hint = (
                    f"projects with an active key: {', '.join(others)}; choose one with"
                    " --project, a .keyvault.toml, or default_project in config.toml"
                )
            else:
                hint = "add one with `keyvault add NAME`"
        raise NoActiveKey(f"{where} {problem}", hint=hint)

    def projects(self) -> list[str | None]:
        return sorted({e.project for e in self.entries}, key=lambda p: (p is not None, p or ""))

    # --- changes --------------------------------------------------------------------------

    def add(self, entry: Entry, *, phone_slots: int) -> None:
        if any(e.name == entry.name for e in self.entries):
            raise DuplicateName(f"an entry named {entry.name!r} already exists")
        if entry.phone:
            check_phone_room(self.entries, entry.phone, phone_slots)
        check_exportable(entry)  # before appending: a refused entry leaves no trace
        self.entries.append(entry)
        if entry.status is Status.ACTIVE:
            self.activate(entry)

    def update(self, name: str, changes: Mapping[str, Any], *, phone_slots: int) -> Entry:
        """Apply metadata changes to one entry, keeping every invariant."""
        entry = self.find(name)
        new_name = changes.get("name")
        if new_name and new_name != name and any(e.name == new_name for e in self.entries):
            raise DuplicateName(f"an entry named {new_name!r} already exists")
        new_phone = changes.get("phone")
        if new_phone and new_phone != entry.phone:
            others = [e for e in self.entries if e is not entry]
            check_phone_room(others, new_phone, phone_slots)
        updated = entry.evolve(**changes)
        check_exportable(updated)
        self.entries[self.entries.index(entry)] = updated
        if updated.status is Status.ACTIVE:
            self.activate(updated)
        return updated

    def activate(self, entry: Entry) -> Entry | None:
        """Make `entry` its project's only active key; return the one it displaced."""
        refuse_admin(entry)
        displaced = None
        for other in self.entries:
            same_project = other.project == entry.project
            if other is not entry and same_project and other.status is Status.ACTIVE:
                other.status = Status.STANDBY
                displaced = other
        entry.status = Status.ACTIVE
        return displaced

    def remove(self, name: str) -> Entry:
        entry = self.find(name)
        self.entries.remove(entry)
        return entry

    def record(self, event: dict[str, Any]) -> None:
        self.history.append(event)

    def check_invariants(self) -> None:
        """Raise DamagedVault if a loaded document breaks an invariant."""
        names = Counter(e.name for e in self.entries)
        dupes = [n for n, c in names.items() if c > 1]
        if dupes:
            raise DamagedVault(f"vault has two entries named {dupes[0]!r}")
        active = Counter(e.project for e in self.entries if e.status is Status.ACTIVE)
        doubled = [p for p, c in active.items() if c > 1]
        if doubled:
            raise DamagedVault(f"vault has two active keys in project {doubled[0]!r}")


def entry_event(at: str, action: str, entry: Entry, **detail: Any) -> dict[str, Any]:
    """A history record about one entry; it names the entry and never holds its secret."""
    return {
        "at": at,
        "action": action,
        "entry": entry.id,
        "name": entry.name,
        "project": entry.project,
        **detail,
    }


def check_exportable(entry: Entry) -> None:
    """Refuse an entry that is active but could never be exported (an admin key)."""
    if entry.status is Status.ACTIVE:
        refuse_admin(entry)


def refuse_admin(entry: Entry) -> None:
    """Refuse making `entry` a project's active key if it is an admin key."""
    if entry.kind is Kind.ADMIN:
        raise PolicyViolation(
            f"{entry.name!r} is an admin key: it cannot call the model API and is never a"
            " project's active key"
        )


class PhoneUsage(NamedTuple):
    phone: str
    used: int
    slots: int
    entries: tuple[str, ...]

    @property
    def free(self) -> int:
        return max(self.slots - self.used, 0)


def phone_usage(entries: Iterable[Entry], slots: int) -> list[PhoneUsage]:
    """Slot usage per phone, fullest first."""
    names: dict[str, list[str]] = {}
    for entry in entries:
        if entry.phone:
            names.setdefault(entry.phone, []).append(entry.name)
    rows = [PhoneUsage(p, len(n), slots, tuple(n)) for p, n in names.items()]
    return sorted(rows, key=lambda r: (-r.used, r.phone))


def check_phone_room(entries: Iterable[Entry], phone: str, slots: int) -> None:
    usage = phone_usage(entries, slots)
    current = next((u for u in usage if u.phone == phone), None)
    if current is None or current.used < slots:
        return
    with_room = [u.phone for u in usage if u.free > 0]
    hint = (
        "phones with a free slot: " + ", ".join(with_room)
        if with_room
        else "no phone on file has a free slot: verify the key with a new number"
    )
    raise PhoneFull(
        f"phone {phone} already verified {current.used} keys (limit {slots}):"
        f" {', '.join(current.entries)}",
        hint=hint,
    )


def iter_entries(
    doc: VaultDoc, *, project: str | None = None, status: str | None = None
) -> Iterator[Entry]:
    for entry in doc.entries:
        if project is not None and entry.project != project:
            continue
        if status is not None and entry.status != status:
            continue
        yield entry

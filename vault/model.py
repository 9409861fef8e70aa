"""Entries and the decrypted vault document; pure (no I/O, no clock of its own).

Invariants kept here and nowhere else:
- entry names are unique;
- a project has at most one `active` entry, and it is never an admin key;
- a phone verifies at most `phone_slots` keys (retired keys still used their slot: OpenAI
  counts verifications, not live keys);
- `history` is only ever appended to.
"""

from __future__ import annotations

import operator
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from vault.errors import (
    DamagedVault,
    DuplicateName,
    EntryNotFound,
    NoActiveKey,
    PhoneFull,
    PolicyViolation,
)
from vault.secret import Secret

FORMAT = "keyvault/1"
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class Status(StrEnum):
    ACTIVE = "active"  # the one key a project exports
    STANDBY = "standby"  # healthy spare, candidate for rotation
    DISABLED = "disabled"  # kept, never chosen (dead or paused)
    RETIRED = "retired"  # revoked or given up; kept for history and phone accounting


class Kind(StrEnum):
    API = "api"  # a key that calls the model API
    ADMIN = "admin"  # an `sk-admin-…` key: Administration API only, never exported


class Entry:
    """One stored key and its metadata.

    A plain class with __slots__ rather than a dataclass: building dataclasses costs
    milliseconds at import on the `keyvault env` hot path, and slots keep a 10,000-key vault
    within a small RSS budget.
    """

    __slots__ = (
        "added_at", "base_url", "card", "created", "credit_usd", "extra", "health", "id",
        "kind", "name", "note", "org_id", "phone", "priority", "project", "project_id",
        "provider", "secret", "status", "tags", "updated_at",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        name: str,
        secret: Secret,
        *,
        provider: str = "openai",
        kind: Kind = Kind.API,
        project: str | None = None,
        created: str | None = None,
        phone: str | None = None,
        card: str | None = None,
        credit_usd: float | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        base_url: str | None = None,
        tags: list[str] | None = None,
        note: str | None = None,
        status: Status = Status.STANDBY,
        priority: int = 0,
        health: dict[str, Any] | None = None,
        added_at: str | None = None,
        updated_at: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.id, self.name, self.secret, self.provider, self.kind = id, name, secret, provider, kind
        self.project, self.created, self.phone, self.card = project, created, phone, card
        self.credit_usd, self.org_id, self.project_id = credit_usd, org_id, project_id
        self.base_url, self.tags, self.note, self.status = base_url, tags or [], note, status
        self.priority, self.health, self.added_at = priority, health, added_at
        self.updated_at = updated_at
        # fields a newer keyvault added: kept and written back, so an older reader loses nothing
        self.extra = extra if extra is not None else {}

    def evolve(self, **changes: Any) -> Entry:
        """A copy with some fields changed (the entry itself is left as it was)."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Entry(**values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    # mutable, so unhashable (as the dataclass it replaced)
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:  # the secret shows masked: Secret's repr masks itself
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in ("id", "name", "secret", "project"))
        return f"Entry({shown}, status={self.status.value!r})"

    def to_dict(self, *, reveal: bool = False) -> dict[str, Any]:
        """A JSON-ready dict; the secret is masked unless `reveal`."""
        out = {**self.extra, **dict(zip(_FIELD_TYPES, _read_fields(self), strict=True))}
        out["secret"] = self.secret.reveal() if reveal else self.secret.masked
        out["kind"] = self.kind.value
        out["status"] = self.status.value
        out["tags"] = list(self.tags)
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Entry:
        """An entry from its JSON form; DamagedVault when a field has the wrong type.

        Entries of one vault share a handful of shapes (which fields, in which order, of
        which JSON types), so each shape is checked once and remembered: a 10,000-key vault
        runs this on every command.
        """
        try:
            shape = (tuple(raw), tuple(map(type, raw.values())))
            fields = _KNOWN_SHAPES.get(shape)
            if fields is None:
                fields = _check_shape(*shape)
            values = {key: raw[key] for key in fields} if len(fields) != len(raw) else dict(raw)
            tags = values.get("tags")
            if tags and any(type(tag) is not str for tag in tags):
                raise TypeError("tags")
            if len(fields) != len(raw):
                values["extra"] = {k: v for k, v in raw.items() if k not in _FIELD_TYPES}
            values["secret"] = Secret(values["secret"])
            values["provider"] = sys.intern(values.get("provider", "openai"))
            values["kind"] = _KINDS[values.get("kind", "api")]
            values["status"] = _STATUSES[values.get("status", "standby")]
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            name = raw.get("name", "?") if isinstance(raw, Mapping) else "?"
            what = (
                f"field {exc.args[0]!r}" if exc.args and exc.args[0] in _FIELD_TYPES else "a field"
            )
            shown = str(name)[:64]
            raise DamagedVault(
                f"vault entry {shown!r} is malformed ({what} is missing or has the wrong type)"
            ) from None

    @property
    def effective_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URL


_OPTIONAL_TEXT: frozenset[type] = frozenset({str, type(None)})
# stored field → the exact JSON types it may have; anything else means a damaged or crafted
# vault (bool is not accepted where a number is: `type(True) is bool`)
_FIELD_TYPES: dict[str, frozenset[type]] = {
    "id": frozenset({str}),
    "name": frozenset({str}),
    "secret": frozenset({str}),
    "provider": frozenset({str}),
    "kind": frozenset({str}),
    "project": _OPTIONAL_TEXT,
    "created": _OPTIONAL_TEXT,
    "phone": _OPTIONAL_TEXT,
    "card": _OPTIONAL_TEXT,
    "credit_usd": frozenset({int, float, type(None)}),
    "org_id": _OPTIONAL_TEXT,
    "project_id": _OPTIONAL_TEXT,
    "base_url": _OPTIONAL_TEXT,
    "tags": frozenset({list}),
    "note": _OPTIONAL_TEXT,
    "status": frozenset({str}),
    "priority": frozenset({int}),
    "health": frozenset({dict, type(None)}),
    "added_at": _OPTIONAL_TEXT,
    "updated_at": _OPTIONAL_TEXT,
}
# stored value → member; a KeyError for an unknown one becomes DamagedVault
_KINDS: dict[str, Kind] = {kind.value: kind for kind in Kind}
_read_fields = operator.attrgetter(*_FIELD_TYPES)  # one C call for all stored fields
# shape (keys in order, their JSON types) → the known fields among the keys, once checked
_KNOWN_SHAPES: dict[tuple[tuple[str, ...], tuple[type, ...]], tuple[str, ...]] = {}
_MAX_SHAPES = 1024  # a crafted vault could give every entry its own shape: stop remembering


def _check_shape(keys: tuple[str, ...], types: tuple[type, ...]) -> tuple[str, ...]:
    """The known fields among `keys`; TypeError(field) when one has a type it may not have
    (exact JSON types: `type(True) is bool`, never int)."""
    fields = []
    for key, kind in zip(keys, types, strict=True):
        allowed = _FIELD_TYPES.get(key)
        if allowed is None:
            continue
        if kind not in allowed:
            raise TypeError(key)
        fields.append(key)
    if len(_KNOWN_SHAPES) < _MAX_SHAPES:
        _KNOWN_SHAPES[keys, types] = tuple(fields)
    return tuple(fields)


_STATUSES: dict[str, Status] = {status.value: status for status in Status}


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

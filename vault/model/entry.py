"""One stored key: `Entry`, its status and kind, and its JSON form in the vault document.

Pure (no I/O). `Entry.from_dict` is the strict reader of an entry: any field with a type it
may not have makes the vault "damaged" (exit 4); unknown fields from a newer keyvault are kept
in `extra` and written back, so an older reader loses nothing.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from vault.errors import DamagedVault
from vault.model.secret import Secret

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

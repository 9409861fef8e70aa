"""One stored key: `Entry`, its status and kind.

Pure (no I/O). Its JSON form is read and written by vault/model/codec.py, which also checks
every field; changes that touch invariants (status, phone, secret) go through `VaultDoc`.
Unknown fields from a newer keyvault are kept in `extra` and written back.
"""

from __future__ import annotations

from enum import StrEnum

from vault.model.health import HealthRecord
from vault.model.secret import Secret

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# where an entry's credit_usd figure came from (`credit_source`)
CREDIT_TYPED = "typed"  # the user gave it (`add/edit --credit`)
CREDIT_RELAY = "relay"  # read from a relay's billing endpoints (`check --balance`)


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
        "added_at", "base_url", "card", "created", "credit_at", "credit_source", "credit_usd",
        "extra", "health", "id", "kind", "name", "note", "org_id", "phone", "priority",
        "project", "project_id", "provider", "secret", "status", "tags", "updated_at",
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
        credit_source: str | None = None,
        credit_at: str | None = None,
        org_id: str | None = None,
        project_id: str | None = None,
        base_url: str | None = None,
        tags: list[str] | None = None,
        note: str | None = None,
        status: Status = Status.STANDBY,
        priority: int = 0,
        health: HealthRecord | None = None,
        added_at: str | None = None,
        updated_at: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.id, self.name, self.secret, self.provider, self.kind = id, name, secret, provider, kind
        self.project, self.created, self.phone, self.card = project, created, phone, card
        self.credit_usd, self.org_id, self.project_id = credit_usd, org_id, project_id
        # where credit_usd came from (CREDIT_TYPED, CREDIT_RELAY) and when; None when unknown
        self.credit_source, self.credit_at = credit_source, credit_at
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

    @property
    def effective_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URL

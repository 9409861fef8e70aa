"""The typed records of the vault document besides entries: history events, export targets,
recipients, mint records, phones and the team secret.

Each is an immutable NamedTuple (cheap to import on the `keyvault env` path, unlike
dataclasses); `extra` keeps the fields a newer keyvault wrote, so an older one loses nothing.
Changes go through `VaultDoc` methods (vault/model/document.py), which keep the invariants;
the JSON form is written and read in one place, vault/model/codec.py. docs/format.md lists
the actions and states from the enums here (tests/test_cli_docs.py keeps them equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from vault.errors import PolicyViolation
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class Action(StrEnum):
    """What a history event records; the comment says which change writes it."""

    INIT = "init"  # the vault was created
    ADD = "add"  # a key was stored
    EDIT = "edit"  # a key's metadata or secret changed (`fields` lists which)
    RM = "rm"  # a key was removed (its phone keeps the verification)
    STATUS = "status"  # a key's status changed as a side effect (displaced by another)
    CHECK = "check"  # a health check changed a key's status verdict
    DISABLE = "disable"  # the health policy disabled a failing standby key
    ENABLE = "enable"  # the health policy re-enabled a key that passed again
    CREDIT = "credit"  # credit_usd changed: typed or a relay's balance (`source`, `previous`)
    ROTATE = "rotate"  # a project's active key was replaced (`from`, `reason`)
    EXPORT = "export"  # a .env file was registered to a project (`path`)
    EXPORT_MOVE = "export-move"  # a .env file moved from one project to another
    EXPORT_FORGET = "export-forget"  # a .env file is no longer kept up to date (`path`)
    RECIPIENT_ADD = "recipient-add"  # someone can now open the vault
    RECIPIENT_RM = "recipient-rm"  # someone can no longer open new versions
    PHONE_ADD = "phone-add"  # a spare phone was recorded before it verified a key
    MINT_INTENT = "mint-intent"  # a service-account key is about to be created
    MINT = "mint"  # a service-account key was created and stored
    MINT_ABANDONED = "mint-abandoned"  # an interrupted mint was cleaned up
    MINT_ORPHANED = "mint-orphaned"  # a minted key was removed before it became active
    DELETE_SERVICE_ACCOUNT = "delete-service-account"  # a replaced minted account was deleted
    TEAM_ROTATED = "team-secret"  # a new team secret: first save, a member removed, or a merge
    MERGE = "merge"  # two versions were merged (`conflicts` says what was resolved and how)


class Event(NamedTuple):
    """One history event: when, what, about which entry; `detail` holds the rest (never a
    secret). `action` is a plain string only for an action a newer keyvault wrote."""

    at: str
    action: Action | str
    entry: str | None = None
    name: str | None = None
    project: str | None = None
    detail: Mapping[str, Any] = EMPTY


class ExportKind(StrEnum):
    DOTENV = "dotenv"  # a .env file written by `keyvault dotenv`


class ExportTarget(NamedTuple):
    """A file a project's key was written to, so every change of that key reaches it. A file
    belongs to one project at a time; registering it to another project moves it."""

    kind: ExportKind | str
    project: str | None
    path: str  # absolute
    added_at: str | None = None
    extra: Mapping[str, Any] = EMPTY


class Recipient(NamedTuple):
    """Someone (or a CI job) the vault is sealed to: a name and an `age1…` public key."""

    name: str
    recipient: str
    added_at: str | None = None
    extra: Mapping[str, Any] = EMPTY


class MintState(StrEnum):
    """Where a mint (a service-account key made through the Administration API) stands;
    vault/rotation/mint.py explains each step."""

    INTENT = "intent"  # name chosen and saved; the API may or may not have made the account
    CREATED = "created"  # the account exists and its key is a standby entry
    SWITCHED = "switched"  # its key is the active key (its .env files followed in that save)
    ACTIVE = "active"  # done
    RETIRING = "retiring"  # replaced by a newer mint; deleted once `delete_after` passes
    ORPHANED = "orphaned"  # the user removed the minted key; the account is deleted next
    DELETED = "deleted"  # the account was deleted at OpenAI
    ABANDONED = "abandoned"  # an interrupted intent, cleaned up


M = MintState
MINT_TRANSITIONS: Final[Mapping[MintState, frozenset[MintState]]] = MappingProxyType(
    {
        M.INTENT: frozenset({M.CREATED, M.ABANDONED}),
        M.CREATED: frozenset({M.SWITCHED, M.ORPHANED}),
        M.SWITCHED: frozenset({M.ACTIVE, M.RETIRING, M.ORPHANED}),
        M.ACTIVE: frozenset({M.RETIRING}),
        M.RETIRING: frozenset({M.DELETED}),
        M.ORPHANED: frozenset({M.DELETED}),
        M.DELETED: frozenset(),
        M.ABANDONED: frozenset(),
    }
)
OPEN_MINT_STATES: Final = (M.INTENT, M.CREATED, M.SWITCHED)


class MintRecord(NamedTuple):
    """One mint's progress, saved before each step so a crash can be resumed."""

    rid: str
    state: MintState
    project: str | None
    project_id: str
    admin: str  # the admin entry's id
    name: str  # the service account's name at OpenAI
    planned_at: str
    id: str | None = None  # the service account's id
    key_id: str | None = None
    entry: str | None = None  # the entry holding its key
    delete_after: str | None = None
    created_at: str | None = None
    activated_at: str | None = None
    settled_at: str | None = None
    abandoned_at: str | None = None
    orphaned_at: str | None = None
    deleted_at: str | None = None
    extra: Mapping[str, Any] = EMPTY

    def advance(self, state: MintState, **changes: Any) -> MintRecord:
        """This record in `state`; PolicyViolation for a step the state machine forbids."""
        if state not in MINT_TRANSITIONS[self.state]:
            raise PolicyViolation(f"mint {self.name}: cannot go from {self.state} to {state}")
        return self._replace(state=state, **changes)


class PastKey(NamedTuple):
    """A key a phone verified that is no longer in the vault: OpenAI still counts it."""

    entry: str
    name: str
    removed_at: str


class Phone(NamedTuple):
    """A phone number the vault knows beyond its entries: a spare not yet used, or one that
    verified keys since removed (they still use its slots)."""

    number: str  # E.164
    added_at: str | None = None
    note: str | None = None
    past: tuple[PastKey, ...] = ()
    extra: Mapping[str, Any] = EMPTY


class TeamSecret(NamedTuple):
    """One team secret: 32 random bytes (base64) that only members can read. A vault.age is
    accepted only when its chain holds the secret this machine pinned (vault/store/trust.py)."""

    id: str  # 16 hex digits
    key: str  # base64 of 32 random bytes; never shown, logged or written outside vault.age
    added_at: str | None = None
    extra: Mapping[str, Any] = EMPTY

    def __repr__(self) -> str:  # a traceback or a debug print never shows the key
        return f"TeamSecret(id={self.id!r}, added_at={self.added_at!r})"


class Team(NamedTuple):
    """What proves a vault.age was written by a member: the vault's id and its chain of
    secrets, oldest first; the last one is current (docs/security.md, docs/format.md)."""

    vault_id: str  # 16 hex digits, fixed when the team record is created
    secrets: tuple[TeamSecret, ...]
    extra: Mapping[str, Any] = EMPTY

    @property
    def current(self) -> TeamSecret:
        return self.secrets[-1]

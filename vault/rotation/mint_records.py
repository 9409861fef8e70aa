"""Where a mint's state lives, and which admin key and OpenAI project it uses.

The records are the document's top-level `service_accounts` list (an older keyvault keeps it
as an unknown key); vault/mint.py explains the states.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from vault.errors import ConfigError, DamagedVault, NoAdminKey
from vault.health.admin import AdminClient
from vault.health.checking import CheckOptions, run_limits
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.rotation.policy import rotation_policy
from vault.store.keyvault import Keyvault

RECORDS: Final = "service_accounts"
CRASH_ENV: Final = "KEYVAULT_TEST_CRASH_AT"  # tests only: os._exit at a named step
CRASH_EXIT: Final = 86
OPEN_STATES: Final = ("intent", "created", "switched")


@dataclass(frozen=True)
class MintOptions:
    admin: str | None = None  # admin entry name; default: the project's, else the only one
    grace_hours: float | None = None  # None: policy's grace_hours, else delete at --finish
    retire: bool = False
    check_options: CheckOptions = field(default_factory=CheckOptions)
    transport: Any = None  # httpx.AsyncBaseTransport for the admin client (tests)
    rand: Callable[[int], bytes] = os.urandom


def crash_point(step: str) -> None:
    """Die here when a test asks for it: proves each step is resumable."""
    if os.environ.get(CRASH_ENV) == step:
        os._exit(CRASH_EXIT)


def records(doc: VaultDoc) -> list[dict[str, Any]]:
    found = doc.extra.setdefault(RECORDS, [])
    if not isinstance(found, list):
        raise DamagedVault("vault: service_accounts is not a list")
    return found


def find_record(doc: VaultDoc, record_id: str) -> dict[str, Any]:
    return next(r for r in records(doc) if r["rid"] == record_id)


def record_event(now: str, action: str, record: dict[str, Any], **detail: Any) -> dict[str, Any]:
    return {
        "at": now,
        "action": action,
        "project": record["project"],
        "service_account": record.get("id"),
        "account_name": record["name"],
        **detail,
    }


# --- choosing the admin key and project id -------------------------------------------------


def admin_entry(doc: VaultDoc, project: str | None, name: str | None) -> Entry:
    if name is not None:
        entry = doc.find(name)
        if entry.kind is not Kind.ADMIN:
            raise NoAdminKey(f"{name!r} is not an admin key (sk-admin-…)")
        return entry
    admins = [e for e in doc.entries if e.kind is Kind.ADMIN and e.status is not Status.RETIRED]
    mine = [e for e in admins if e.project == project] or [e for e in admins if e.project is None]
    if len(mine) == 1 or len(admins) == 1:
        return (mine or admins)[0]
    if not admins:
        raise NoAdminKey(
            "the vault holds no admin key",
            hint='add one: printf %s "$ADMIN_KEY" | keyvault add org-admin',
        )
    raise NoAdminKey("several admin keys fit", hint="choose one with --admin NAME")


def project_id_for(doc: VaultDoc, kv: Keyvault, project: str | None) -> str:
    ids = [e.project_id for e in doc.entries if e.project == project and e.status is Status.ACTIVE]
    found = next((i for i in ids if i), None) or rotation_policy(kv.config, project).project_id
    if found:
        return found
    raise ConfigError(
        f"project {project!r} has no openai project id",
        hint="set it: keyvault edit NAME --project-id proj_… (the active key)",
    )


def admin_client(admin: Entry, kv: Keyvault, options: MintOptions) -> AdminClient:
    return AdminClient(
        admin.secret,
        base_url=admin.effective_base_url,
        proxy=options.check_options.proxy or kv.config.proxy,
        transport=options.transport,
        limits=run_limits(options.check_options),
    )


def admin_of(doc: VaultDoc, record: dict[str, Any]) -> Entry:
    admin = doc.by_id(str(record["admin"]))
    if admin is None:
        raise NoAdminKey(
            "the admin key that started this mint was removed",
            hint="add it back, then run `keyvault rotate --finish`",
        )
    return admin

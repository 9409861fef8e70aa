"""Where a mint's state lives, and which admin key and OpenAI project it uses.

The records are `VaultDoc.mints` (`service_accounts` in the JSON; an older keyvault keeps it as
an unknown key); vault/model/records.py defines the states, vault/rotation/mint.py the steps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vault.errors import ConfigError, NoAdminKey
from vault.health.admin import AdminClient
from vault.health.checking import CheckOptions, run_limits
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.model.records import MintRecord
from vault.rotation.policy import Verify, rotation_policy
from vault.store.keyvault import Keyvault


@dataclass(frozen=True)
class MintOptions:
    admin: str | None = None  # admin entry name; default: the project's, else the only one
    grace_hours: float | None = None  # None: policy's grace_hours, else delete at --finish
    retire: bool = False
    verify: Verify | None = None  # how the new key is checked; None: `[rotation] verify`
    check_options: CheckOptions = field(default_factory=CheckOptions)
    proxy: str | None = None  # the invocation's proxy (vault/store/context.py resolves it)
    transport: Any = None  # httpx.AsyncBaseTransport for the admin client (tests)
    rand: Callable[[int], bytes] = os.urandom
    # called after each step is saved, with its name: the seam tests use to stop the process
    # there and prove every step resumes (tests/test_mint.py)
    after_step: Callable[[str], None] = lambda _step: None


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
        proxy=options.proxy,
        transport=options.transport,
        limits=run_limits(options.check_options),
    )


def admin_of(doc: VaultDoc, record: MintRecord, name: str | None = None) -> Entry:
    """The admin key that started the mint; once that entry is gone (removed, or removed and
    added back, which makes a new entry), the admin key a new mint would use (`--admin NAME`,
    else the project's or the only one). The record's OpenAI project id stays what it was."""
    admin = doc.by_id(record.admin)
    if admin is not None:
        return admin
    try:
        return admin_entry(doc, record.project, name)
    except NoAdminKey:
        raise NoAdminKey(
            "the admin key that started this mint was removed",
            hint="add it (or another admin key of that organization) back, then run"
            " `keyvault rotate --finish` (with --admin NAME when several fit)",
        ) from None

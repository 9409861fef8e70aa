"""Deleting the service accounts that minting leaves behind, and cleaning up after a crash.

A replaced account is deleted once its grace period ends (`delete_after`; None means at the
next `keyvault rotate --finish`); the entry of a deleted account becomes `retired`, since its
key stops working. An account whose key is active again (the user switched back) is never
deleted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from vault.model.document import Status, VaultDoc
from vault.rotation.mint_records import (
    MintOptions,
    admin_client,
    admin_of,
    crash_point,
    find_record,
    record_event,
    records,
)
from vault.rotation.policy import parse_time
from vault.store.keyvault import Keyvault


def abandon(kv: Keyvault, rid: str, options: MintOptions) -> str:
    """Resume an `intent`: delete the account if the API made it (its key was never saved)."""
    doc = kv.read()
    rec = find_record(doc, rid)
    with admin_client(admin_of(doc, rec), kv, options) as api:
        found = api.find_service_account(rec["project_id"], rec["name"])
        if found is not None:
            api.delete_service_account(rec["project_id"], found)
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        rec = find_record(doc, rid)
        rec.update(state="abandoned", id=found, abandoned_at=now)
        doc.record(record_event(now, "mint-abandoned", rec, deleted=found is not None))

    kv.transact(change)
    return f"cleaned up interrupted mint {rec['name']}" + (f" (deleted {found})" if found else "")


def delete_due(
    kv: Keyvault, options: MintOptions, *, project: str | None, at_finish: bool
) -> list[str]:
    """Delete replaced (and orphaned) service accounts whose time has come."""
    doc, now = kv.read(), kv.clock()
    notes = []
    for rec in records(doc):
        if (project is None or rec["project"] == project) and _deletable(doc, rec, now, at_finish):
            notes.append(_delete(kv, str(rec["rid"]), options))
    return notes


def _deletable(doc: VaultDoc, rec: dict[str, Any], now: dt.datetime, at_finish: bool) -> bool:
    entry = doc.by_id(str(rec.get("entry")))
    if entry is not None and entry.status is Status.ACTIVE:
        return False  # the user switched back to it: never pull the active key away
    if rec["state"] == "orphaned":
        return True
    if rec["state"] != "retiring":
        return False
    when = parse_time(rec.get("delete_after"))
    return at_finish if when is None else when <= now


def _delete(kv: Keyvault, rid: str, options: MintOptions) -> str:
    doc = kv.read()
    rec = find_record(doc, rid)
    with admin_client(admin_of(doc, rec), kv, options) as api:
        existed = api.delete_service_account(rec["project_id"], rec["id"])
    crash_point("deleted")
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        rec = find_record(doc, rid)
        rec.update(state="deleted", deleted_at=now)
        entry = doc.by_id(str(rec.get("entry")))
        if entry is not None and entry.status is not Status.ACTIVE:
            entry.status, entry.updated_at = Status.RETIRED, now  # its key no longer works
        doc.record(record_event(now, "delete-service-account", rec, existed=existed))

    kv.transact(change)
    return f"deleted service account {rec['id']} ({rec['name']})"

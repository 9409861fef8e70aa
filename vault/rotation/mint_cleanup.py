"""Deleting the service accounts that minting leaves behind, and cleaning up after a crash.

A replaced account is deleted once its grace period ends (`delete_after`; None means at the
next `keyvault rotate --finish`); the entry of a deleted account becomes `retired`, since its
key stops working. An account whose key is active again (the user switched back) is never
deleted.
"""

from __future__ import annotations

import datetime as dt

from vault.model.clock import parse_time
from vault.model.document import Status, VaultDoc
from vault.model.records import Action, MintRecord, MintState
from vault.rotation.mint_admin import MintOptions, admin_client, admin_of
from vault.store.keyvault import Keyvault


def abandon(kv: Keyvault, rid: str, options: MintOptions) -> str:
    """Resume an `intent`: delete the account if the API made it (its key was never saved)."""
    doc = kv.read()
    rec = doc.mint(rid)
    with admin_client(admin_of(doc, rec, options.admin), kv, options) as api:
        found = api.find_service_account(rec.project_id, rec.name)
        if found is not None:
            api.delete_service_account(rec.project_id, found)
    now = kv.now_iso()
    kv.transact(
        lambda doc: doc.advance_mint(
            rid,
            MintState.ABANDONED,
            at=now,
            action=Action.MINT_ABANDONED,
            id=found,
            abandoned_at=now,
        )
    )
    return f"cleaned up interrupted mint {rec.name}" + (f" (deleted {found})" if found else "")


def delete_due(
    kv: Keyvault, options: MintOptions, *, project: str | None, at_finish: bool
) -> list[str]:
    """Delete replaced (and orphaned) service accounts whose time has come."""
    doc, now = kv.read(), kv.clock()
    return [
        _delete(kv, rec.rid, options)
        for rec in doc.mints
        if (project is None or rec.project == project) and _deletable(doc, rec, now, at_finish)
    ]


def _deletable(doc: VaultDoc, rec: MintRecord, now: dt.datetime, at_finish: bool) -> bool:
    entry = doc.by_id(rec.entry)
    if entry is not None and entry.status is Status.ACTIVE:
        return False  # the user switched back to it: never pull the active key away
    if rec.state is MintState.ORPHANED:
        return True
    if rec.state is not MintState.RETIRING:
        return False
    when = parse_time(rec.delete_after)
    return at_finish if when is None else when <= now


def _delete(kv: Keyvault, rid: str, options: MintOptions) -> str:
    doc = kv.read()
    rec = doc.mint(rid)
    with admin_client(admin_of(doc, rec, options.admin), kv, options) as api:
        existed = api.delete_service_account(rec.project_id, rec.id or "")
    options.after_step("deleted")
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        done = doc.advance_mint(
            rid, MintState.DELETED, at=now, action=Action.DELETE_SERVICE_ACCOUNT, deleted_at=now
        )
        entry = doc.by_id(done.entry)
        if entry is not None and entry.status not in (Status.ACTIVE, Status.RETIRED):
            why = f"service account {done.id} was deleted" + ("" if existed else " (already gone)")
            doc.set_status(entry, Status.RETIRED, at=now, action=Action.STATUS, why=why)

    kv.transact(change)
    return f"deleted service account {rec.id} ({rec.name})"

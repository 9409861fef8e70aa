"""Rotation by minting: a fresh service-account key through the Administration API.

Every step is written to the vault before the next one runs, so a crash anywhere can be
resumed (`keyvault rotate --mint` again, or `keyvault rotate --finish`) without losing a
secret or leaving a service account nobody knows about. The records live in the document's
top-level `service_accounts` list (kept by older keyvaults as an unknown key):

    intent    name chosen and saved; the API may or may not have created it
    created   the account exists and its key is saved as a standby entry
    switched  the key is the project's active key; .env files may still be stale
    active    done; this account's key is (or was last) the active one
    retiring  replaced by a newer mint; deleted once `delete_after` passes (None: at --finish)
    deleted / abandoned

Resuming `intent` finds the account by name (the secret is lost: OpenAI sends it once, and
the crash came before it was saved), deletes it, and mints again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from vault.errors import KeyvaultError, NoHealthyCandidate
from vault.health.checking import Probed, interrupts_deferred, probe_entries
from vault.model.document import Entry, VaultDoc
from vault.rotation.mint_cleanup import abandon, delete_due
from vault.rotation.mint_records import (
    OPEN_STATES,
    MintOptions,
    admin_client,
    admin_entry,
    admin_of,
    crash_point,
    find_record,
    project_id_for,
    record_event,
    records,
)
from vault.rotation.policy import rotation_policy
from vault.rotation.rotate import (
    DotenvOutcome,
    DueReport,
    RotateOptions,
    Rotation,
    rotate_due,
    rotate_in,
    rotate_project,
    sync_dotenv,
)
from vault.store.keyvault import Keyvault

# --- the steps ------------------------------------------------------------------------------


def _plan(kv: Keyvault, project: str | None, options: MintOptions) -> str:
    """Step 1: save the intent (the name we will create) before calling the API."""
    now = kv.now_iso()
    suffix = options.rand(3).hex()
    stamp = kv.clock().strftime("%Y%m%d%H%M%S")

    def change(doc: VaultDoc) -> str:
        admin = admin_entry(doc, project, options.admin)
        record = {
            "rid": options.rand(8).hex(),
            "state": "intent",
            "project": project,
            "project_id": project_id_for(doc, kv, project),
            "admin": admin.id,
            "name": f"keyvault-{project or 'default'}-{stamp}-{suffix}",
            "planned_at": now,
            "id": None,
            "key_id": None,
            "entry": None,
            "delete_after": None,
        }
        records(doc).append(record)
        doc.record(record_event(now, "mint-intent", record))
        return str(record["rid"])

    return kv.transact(change)


def _create(kv: Keyvault, rid: str, options: MintOptions) -> None:
    """Step 2: create the account and save its key as a standby entry at once."""
    doc = kv.read()
    record = find_record(doc, rid)
    admin = admin_of(doc, record)
    with admin_client(admin, kv, options) as api:
        account = api.create_service_account(record["project_id"], record["name"])
    crash_point("created")
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        rec = find_record(doc, rid)
        entry = Entry(
            id=options.rand(8).hex(),
            name=_free_name(doc, rec),
            secret=account.secret,
            project=rec["project"],
            created=now[:10],
            project_id=rec["project_id"],
            base_url=admin.base_url,
            tags=["minted"],
            added_at=now,
            updated_at=now,
            note=f"service account {account.id} minted by keyvault",
        )
        doc.add(entry, phone_slots=kv.config.phone_slots)
        rec.update(
            state="created", id=account.id, key_id=account.key_id, entry=entry.id, created_at=now
        )
        doc.record(record_event(now, "mint", rec, entry=entry.id, name=entry.name))

    kv.transact(change)


def _free_name(doc: VaultDoc, record: dict[str, Any]) -> str:
    base = f"{record['project'] or 'default'}-svc-{record['name'][-6:]}"[:60]
    taken = {e.name for e in doc.entries}
    return next(n for n in (base, *(f"{base}-{i}" for i in range(2, 999))) if n not in taken)


def _activate(kv: Keyvault, rid: str, options: MintOptions) -> Rotation:
    """Step 3: check the new key; if healthy, switch to it and schedule the old account's
    deletion, all in one save."""
    doc = kv.read()
    record = find_record(doc, rid)
    entry = doc.by_id(str(record["entry"]))
    probed = Probed()
    if entry is not None:
        checks = options.check_options
        proxy = checks.proxy or kv.config.proxy
        probed = probe_entries([entry], checks, proxy=proxy, clock=kv.clock)
        if probed.interrupted:
            raise KeyboardInterrupt
    crash_point("checked")
    grace = options.grace_hours
    if grace is None:
        grace = rotation_policy(kv.config, record["project"]).grace_hours
    failure: list[KeyvaultError] = []

    def change(doc: VaultDoc) -> Rotation | None:
        rec = find_record(doc, rid)
        new = doc.by_id(str(rec["entry"]))
        if new is None:
            rec["state"] = "orphaned"  # the user removed the key; --finish deletes the account
            failure.append(NoHealthyCandidate("the minted key was removed from the vault"))
            return None
        run = RotateOptions(to=new.name, retire=options.retire, reason="mint")
        try:
            rotation = rotate_in(doc, kv, rec["project"], run, probed)
        except KeyvaultError as exc:  # failed its check: keep the result, try again later
            failure.append(exc)
            return None
        rec.update(state="switched", activated_at=kv.now_iso())
        _schedule_retirement(doc, rotation, kv.clock(), grace)
        return rotation

    with interrupts_deferred():
        rotation = kv.transact(change)
    if rotation is None:
        raise failure[0]
    return rotation


def _schedule_retirement(
    doc: VaultDoc, rotation: Rotation, now: dt.datetime, grace_hours: float | None
) -> None:
    """The minted account whose key was just displaced is deleted after the grace period."""
    if rotation.old is None:
        return
    old_id = doc.find(rotation.old).id
    when = None if grace_hours is None else _iso(now + dt.timedelta(hours=grace_hours))
    for rec in records(doc):
        if rec.get("entry") == old_id and rec["state"] in ("active", "switched"):
            rec.update(state="retiring", delete_after=when)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _settle(kv: Keyvault, rid: str) -> list[DotenvOutcome]:
    """Step 4: bring the project's .env files up to date, then mark the mint done."""
    outcomes = sync_dotenv(kv, find_record(kv.read(), rid)["project"])
    crash_point("dotenv")
    now = kv.now_iso()
    kv.transact(lambda doc: find_record(doc, rid).update(state="active", settled_at=now))
    return outcomes


# --- the flows ------------------------------------------------------------------------------


@dataclass
class MintReport:
    project: str | None
    rotation: Rotation | None = None
    notes: list[str] = field(default_factory=list)  # resumed or cleaned-up steps
    dotenv: list[DotenvOutcome] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # old service accounts removed
    error: KeyvaultError | None = None  # why `finish` could not complete this project

    @property
    def ok(self) -> bool:
        return self.error is None and all(d.ok for d in self.dotenv)


def _open_record(doc: VaultDoc, project: str | None) -> dict[str, Any] | None:
    return next(
        (r for r in records(doc) if r["project"] == project and r["state"] in OPEN_STATES), None
    )


def mint_rotate(kv: Keyvault, project: str | None, options: MintOptions) -> MintReport:
    """Mint a service-account key for `project` and make it active, resuming an interrupted
    mint of the same project first. Old minted accounts are deleted once due."""
    report = MintReport(project)
    pending = _open_record(kv.read(), project)
    if pending is not None and pending["state"] == "intent":
        report.notes.append(abandon(kv, pending["rid"], options))
        pending = None
    if pending is None:
        rid = _plan(kv, project, options)
        crash_point("intent")
        _create(kv, rid, options)
        crash_point("saved")
        state = "created"
    else:
        rid, state = pending["rid"], pending["state"]
        report.notes.append(f"resumed mint {pending['name']} ({state})")
    if state == "created":
        report.rotation = _activate(kv, rid, options)
        crash_point("switched")
    report.dotenv = _settle(kv, rid)
    report.deleted = delete_due(kv, options, project=project, at_finish=False)
    return report


def finish(kv: Keyvault, options: MintOptions, *, at_finish: bool = True) -> list[MintReport]:
    """Resume every interrupted mint, then delete the retired accounts that are due
    (`at_finish`: also those waiting for "the next --finish")."""
    reports = []
    for project in dict.fromkeys(
        r["project"] for r in records(kv.read()) if r["state"] in OPEN_STATES
    ):
        try:
            reports.append(mint_rotate(kv, project, options))
        except KeyvaultError as exc:  # one stuck project must not block the others' cleanup
            reports.append(MintReport(project, error=exc))
    cleanup = MintReport(None, deleted=delete_due(kv, options, project=None, at_finish=at_finish))
    return [*reports, cleanup] if cleanup.deleted else reports


def run_due(
    kv: Keyvault, rotate_options: RotateOptions, mint_options: MintOptions, *, mint: bool
) -> DueReport:
    """For cron: rotate every due project (minting when asked), then delete due accounts."""

    def by_mint(kv: Keyvault, project: str | None, options: RotateOptions) -> Rotation:
        done = mint_rotate(kv, project, mint_options)
        rotation = done.rotation or Rotation(project, "?", None, options.reason)
        rotation.reason, rotation.dotenv = options.reason, done.dotenv
        return rotation

    report = rotate_due(kv, rotate_options, by_mint if mint else rotate_project)
    try:
        report.finished = delete_due(kv, mint_options, project=None, at_finish=False)
    except KeyvaultError as exc:
        report.failures.append((None, exc))
    return report


def preview(kv: Keyvault, project: str | None, options: MintOptions) -> list[str]:
    """What `rotate --mint` would do, without calling the API or saving anything."""
    doc = kv.read()
    pending = _open_record(doc, project)
    if pending is not None:
        return [f"would resume mint {pending['name']} ({pending['state']})"]
    admin = admin_entry(doc, project, options.admin)
    project_id = project_id_for(doc, kv, project)
    return [
        f"would create a service account in {project_id} with admin key {admin.name}",
        "would save its key, check it and make it the active key",
    ]

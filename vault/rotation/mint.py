"""Rotation by minting: a fresh service-account key through the Administration API.

Every step is saved to the vault before the next one runs, so a crash anywhere can be
resumed (`keyvault rotate --mint` again, or `keyvault rotate --finish`) without losing a
secret or leaving a service account nobody knows about. The steps move a `MintRecord`
(vault/model/records.py) along `MINT_TRANSITIONS`:

    intent    name chosen and saved; the API may or may not have created it
    created   the account exists and its key is saved as a standby entry
    switched  the key is the project's active key (its .env files follow in the same save)
    active    done; this account's key is (or was last) the active one
    retiring  replaced by a newer mint; deleted once `delete_after` passes (None: at --finish)
    deleted / abandoned / orphaned

Resuming `intent` finds the account by name (the secret is lost: OpenAI sends it once, and
the crash came before it was saved), deletes it, and mints again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from vault.errors import KeyvaultError, NoHealthyCandidate
from vault.export.targets import SyncOutcome
from vault.health.checking import Probed, interrupts_deferred, probe_entries
from vault.model.clock import iso, local_date
from vault.model.document import Entry, VaultDoc
from vault.model.records import OPEN_MINT_STATES, Action, MintRecord, MintState
from vault.rotation.mint_admin import (
    MintOptions,
    admin_client,
    admin_entry,
    admin_of,
    project_id_for,
)
from vault.rotation.mint_cleanup import abandon, delete_due
from vault.rotation.policy import Verify, rotation_policy
from vault.rotation.rotate import (
    DueReport,
    RotateOptions,
    Rotation,
    rotate_due,
    rotate_in,
    rotate_project,
)
from vault.store.keyvault import Keyvault

# --- the steps ------------------------------------------------------------------------------


def _plan(kv: Keyvault, project: str | None, options: MintOptions) -> str:
    """Step 1: save the intent (the name we will create) before calling the API."""
    now = kv.now_iso()
    suffix = options.rand(3).hex()
    stamp = kv.clock().strftime("%Y%m%d%H%M%S")
    rid = options.rand(8).hex()

    def change(doc: VaultDoc) -> None:
        admin = admin_entry(doc, project, options.admin)  # first: the likelier missing piece
        record = MintRecord(
            rid=rid,
            state=MintState.INTENT,
            project=project,
            project_id=project_id_for(doc, kv, project),
            admin=admin.id,
            name=f"keyvault-{project or 'default'}-{stamp}-{suffix}",
            planned_at=now,
        )
        doc.add_mint(record, at=now)

    kv.transact(change)
    return rid


def _create(kv: Keyvault, rid: str, options: MintOptions) -> None:
    """Step 2: create the account and save its key as a standby entry at once."""
    doc = kv.read()
    record = doc.mint(rid)
    admin = admin_of(doc, record, options.admin)
    with admin_client(admin, kv, options) as api:
        account = api.create_service_account(record.project_id, record.name)
    options.after_step("created")
    moment = kv.clock()
    now = iso(moment)
    entry_id = options.rand(8).hex()

    def change(doc: VaultDoc) -> None:
        rec = doc.mint(rid)
        entry = Entry(
            id=entry_id,
            name=_free_name(doc, rec),
            secret=account.secret,
            project=rec.project,
            created=local_date(moment).isoformat(),
            project_id=rec.project_id,
            base_url=minted_base_url(admin),
            tags=["minted"],
            added_at=now,
            updated_at=now,
            note=f"service account {account.id} minted by keyvault",
        )
        doc.add_entry(entry, at=now, phone_slots=kv.config.phone_slots)
        doc.advance_mint(
            rid,
            MintState.CREATED,
            at=now,
            action=Action.MINT,
            id=account.id,
            key_id=account.key_id,
            entry=entry.id,
            created_at=now,
        )

    kv.transact(change)


def minted_base_url(admin: Entry) -> str:
    """Where a minted key works: the API that minted it, written down. Left empty, the key
    would follow config.toml's `default_base_url`, a relay for many users, which never
    applies to admin keys: an OpenAI key would be sent to the relay."""
    return admin.effective_base_url


def _free_name(doc: VaultDoc, record: MintRecord) -> str:
    base = f"{record.project or 'default'}-svc-{record.name[-6:]}"[:60]
    taken = set(doc.names())
    return next(n for n in (base, *(f"{base}-{i}" for i in range(2, 999))) if n not in taken)


def _activate(kv: Keyvault, rid: str, options: MintOptions) -> Rotation:
    """Step 3: check the new key; if healthy, switch to it and schedule the old account's
    deletion, all in one save (which also brings the project's .env files along)."""
    doc = kv.read()
    record = doc.mint(rid)
    entry = doc.by_id(record.entry)
    probed = Probed()
    policy = rotation_policy(kv.config, record.project)
    mode = options.verify or policy.verify
    if entry is not None and mode is not Verify.NONE:  # chat: a new key may have no credit yet
        checks = replace(options.check_options, deep=mode is Verify.CHAT)
        if policy.model is not None:
            checks = replace(checks, model=policy.model)
        probed = probe_entries([entry], checks, proxy=options.proxy, clock=kv.clock)
        if probed.interrupted:
            raise KeyboardInterrupt
    options.after_step("checked")
    grace = options.grace_hours if options.grace_hours is not None else policy.grace_hours
    failure: list[KeyvaultError] = []
    now = kv.now_iso()

    def change(doc: VaultDoc) -> Rotation | None:
        rec = doc.mint(rid)
        new = doc.by_id(rec.entry)
        if new is None:  # the user removed the key; --finish deletes the account
            doc.advance_mint(
                rid, MintState.ORPHANED, at=now, action=Action.MINT_ORPHANED, orphaned_at=now
            )
            failure.append(NoHealthyCandidate("the minted key was removed from the vault"))
            return None
        run = RotateOptions(to=new.name, retire=options.retire, reason="mint", verify=mode)
        try:
            rotation = rotate_in(doc, kv, rec.project, run, probed)
        except KeyvaultError as exc:  # failed its check: keep the result, try again later
            failure.append(exc)
            return None
        doc.advance_mint(rid, MintState.SWITCHED, at=now, activated_at=now)
        _schedule_retirement(doc, rotation, kv.clock(), grace, now)
        return rotation

    with interrupts_deferred():
        rotation = kv.transact(change)
    if rotation is None:
        raise failure[0]
    rotation.dotenv = list(kv.synced)
    return rotation


def _schedule_retirement(
    doc: VaultDoc, rotation: Rotation, clock_now: dt.datetime, grace_hours: float | None, now: str
) -> None:
    """The minted account whose key was just displaced is deleted after the grace period."""
    if rotation.old is None:
        return
    old_id = doc.find(rotation.old).id
    when = None if grace_hours is None else iso(clock_now + dt.timedelta(hours=grace_hours))
    for rec in list(doc.mints):
        if rec.entry == old_id and rec.state in (MintState.ACTIVE, MintState.SWITCHED):
            doc.advance_mint(rec.rid, MintState.RETIRING, at=now, delete_after=when)


def _settle(kv: Keyvault, rid: str) -> None:
    """Step 4: mark the mint done (its .env files followed the switch in the same save)."""
    now = kv.now_iso()
    kv.transact(lambda doc: doc.advance_mint(rid, MintState.ACTIVE, at=now, settled_at=now))


# --- the flows ------------------------------------------------------------------------------


@dataclass
class MintReport:
    project: str | None
    rotation: Rotation | None = None
    notes: list[str] = field(default_factory=list)  # resumed or cleaned-up steps
    dotenv: list[SyncOutcome] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # old service accounts removed
    error: KeyvaultError | None = None  # why `finish` could not complete this project

    @property
    def ok(self) -> bool:
        return self.error is None and all(d.ok for d in self.dotenv)


def _open_record(doc: VaultDoc, project: str | None) -> MintRecord | None:
    return next(
        (r for r in doc.mints if r.project == project and r.state in OPEN_MINT_STATES), None
    )


def mint_rotate(kv: Keyvault, project: str | None, options: MintOptions) -> MintReport:
    """Mint a service-account key for `project` and make it active, resuming an interrupted
    mint of the same project first. Old minted accounts are deleted once due."""
    report = MintReport(project)
    pending = _open_record(kv.read(), project)
    if pending is not None and pending.state is MintState.INTENT:
        report.notes.append(abandon(kv, pending.rid, options))
        pending = None
    if pending is None:
        rid = _plan(kv, project, options)
        options.after_step("intent")
        _create(kv, rid, options)
        options.after_step("saved")
        state = MintState.CREATED
    else:
        rid, state = pending.rid, pending.state
        report.notes.append(f"resumed mint {pending.name} ({state})")
    if state is MintState.CREATED:
        report.rotation = _activate(kv, rid, options)
        report.dotenv = report.rotation.dotenv
        options.after_step("switched")
    _settle(kv, rid)
    report.deleted = delete_due(kv, options, project=project, at_finish=False)
    return report


def finish(kv: Keyvault, options: MintOptions, *, at_finish: bool = True) -> list[MintReport]:
    """Resume every interrupted mint, then delete the retired accounts that are due
    (`at_finish`: also those waiting for "the next --finish")."""
    reports = []
    pending = kv.read().mints
    for project in dict.fromkeys(r.project for r in pending if r.state in OPEN_MINT_STATES):
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
        return [f"would resume mint {pending.name} ({pending.state})"]
    admin = admin_entry(doc, project, options.admin)
    project_id = project_id_for(doc, kv, project)
    return [
        f"would create a service account in {project_id} with admin key {admin.name}",
        "would save its key, check it and make it the active key",
    ]

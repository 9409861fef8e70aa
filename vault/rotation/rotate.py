"""Switching a project's active key: the library call behind `keyvault rotate`.

    rotation = rotate_project(kv, "work", RotateOptions(reason="manual"))

The standby keys are checked first (outside the lock), then ONE `kv.transact` stores the
results, picks the best candidate and switches: the new key becomes active and the old one
standby (or retired) in the same save, so the project never has zero or two active keys on
disk. Afterwards every `.env` file the project was exported to is updated, each reported.

Best candidate: an API key of the project, standby, healthy (checked now, or with
`check=False` last known ok or never checked), not cooling down after a rate limit, not itself
due under the policy; then highest priority, most credit left (unknown last), oldest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from vault.errors import KeyvaultError, NoHealthyCandidate, UsageError
from vault.export.targets import SyncOutcome, sync
from vault.health.checking import (
    Checked,
    CheckOptions,
    Probed,
    interrupts_deferred,
    merge_results,
    probe_entries,
)
from vault.model.document import Entry, Kind, Status, VaultDoc, refuse_admin
from vault.rotation.policy import (
    RotationPolicy,
    advice,
    cooldown_until,
    due_reason,
    health_policy,
    health_status,
    project_due,
    rotation_policy,
)
from vault.store.keyvault import Keyvault


@dataclass(frozen=True)
class RotateOptions:
    to: str | None = None
    dry_run: bool = False
    check: bool = True
    retire: bool = False
    reason: str = "manual"
    check_options: CheckOptions = field(default_factory=CheckOptions)


@dataclass
class Rotation:
    project: str | None
    new: str
    old: str | None
    reason: str
    dry_run: bool = False
    checked: list[Checked] = field(default_factory=list)
    dotenv: list[SyncOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.dotenv)

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "new": self.new,
            "old": self.old,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "dotenv": [d.to_dict() for d in self.dotenv],
            "checked": [c.to_dict() for c in self.checked],
        }


# --- choosing -------------------------------------------------------------------------------


def _rank(entry: Entry) -> tuple[int, int, float, str, str]:
    credit = entry.credit_usd
    return (-entry.priority, credit is None, -(credit or 0.0), entry.created or "9999", entry.name)


def eligible(
    entry: Entry, policy: RotationPolicy, now: dt.datetime, *, trust_unchecked: bool
) -> bool:
    """Whether `entry` may become active now (status, kind and health; not its project)."""
    if entry.kind is Kind.ADMIN or entry.status is not Status.STANDBY:
        return False
    status = health_status(entry)
    if status != "ok" and not (status is None and trust_unchecked):
        return False
    until = cooldown_until(entry, policy)
    return (until is None or until <= now) and due_reason(entry, policy, now) is None


def pool(
    doc: VaultDoc, project: str | None, policy: RotationPolicy, now: dt.datetime
) -> list[Entry]:
    """The keys worth checking before a rotation: standby API keys not cooling down."""
    return [
        e
        for e in doc.entries
        if e.project == project
        and e.kind is Kind.API
        and e.status is Status.STANDBY
        and ((u := cooldown_until(e, policy)) is None or u <= now)
    ]


def choose(
    doc: VaultDoc,
    project: str | None,
    policy: RotationPolicy,
    now: dt.datetime,
    *,
    to: str | None,
    trust_unchecked: bool,
    phone_slots: int,
) -> Entry:
    """The entry to activate, or NoHealthyCandidate saying what the user can do next."""
    if to is not None:
        return _chosen(doc, project, to, trust_unchecked)
    ranked = sorted(
        (
            e
            for e in doc.entries
            if e.project == project and eligible(e, policy, now, trust_unchecked=trust_unchecked)
        ),
        key=_rank,
    )
    if ranked:
        return ranked[0]
    where = f"project {project!r}" if project else "the default project"
    raise NoHealthyCandidate(
        f"no healthy standby key in {where}",
        hint="; ".join(advice(doc, project, policy, now, phone_slots)),
    )


def _chosen(doc: VaultDoc, project: str | None, to: str, trust_unchecked: bool) -> Entry:
    entry = doc.find(to)
    refuse_admin(entry)
    if entry.project != project:
        raise UsageError(
            f"{to!r} belongs to project {entry.project!r}",
            hint=f"add --project {entry.project}" if entry.project else None,
        )
    if entry.status is Status.ACTIVE:
        raise UsageError(f"{to!r} is already the active key")
    if entry.status is Status.RETIRED:
        raise UsageError(f"{to!r} is retired", hint=f"`keyvault edit {to} --status standby` first")
    status = health_status(entry)
    if status != "ok" and not trust_unchecked:
        raise NoHealthyCandidate(
            f"{to!r} failed its check ({status})", hint="add --no-check to switch to it anyway"
        )
    return entry


# --- switching ------------------------------------------------------------------------------


def switch(doc: VaultDoc, new: Entry, *, retire: bool, reason: str, now: str) -> Entry | None:
    """Make `new` active and its predecessor standby (or retired), recording why."""
    return doc.rotate_to(new, at=now, reason=reason, retire_old=retire)


def rotate_in(
    doc: VaultDoc, kv: Keyvault, project: str | None, options: RotateOptions, probed: Probed
) -> Rotation:
    """The whole change on one document: store the check results, choose, switch."""
    now = kv.clock()
    checked = merge_results(doc, probed, health_policy(kv.config), kv.now_iso())
    new = choose(
        doc,
        project,
        rotation_policy(kv.config, project),
        now,
        to=options.to,
        trust_unchecked=not options.check,
        phone_slots=kv.config.phone_slots,
    )
    old = switch(doc, new, retire=options.retire, reason=options.reason, now=kv.now_iso())
    return Rotation(
        project, new.name, old.name if old else None, options.reason, options.dry_run, checked
    )


def rotate_project(kv: Keyvault, project: str | None, options: RotateOptions) -> Rotation:
    """Check, choose and switch in one save, then update the project's `.env` files."""
    doc = kv.read()
    policy = rotation_policy(kv.config, project)
    todo = [doc.find(options.to)] if options.to else pool(doc, project, policy, kv.clock())
    probed = Probed()
    if options.check:
        checks = options.check_options
        probed = probe_entries(todo, checks, proxy=checks.proxy, clock=kv.clock)
        if probed.interrupted:
            raise KeyboardInterrupt
    if options.dry_run:  # the same change on a copy that is never saved
        preview = rotate_in(doc, kv, project, options, probed)
        preview.dotenv = sync(doc, [project], dry_run=True)
        return preview
    failure: list[KeyvaultError] = []

    def change(fresh: VaultDoc) -> Rotation | None:
        try:
            return rotate_in(fresh, kv, project, options, probed)
        except NoHealthyCandidate as exc:  # keep the check results, report after the save
            failure.append(exc)
            return None

    with interrupts_deferred():
        rotation = kv.transact(change)
    if rotation is None:
        raise failure[0]
    rotation.dotenv = list(kv.synced)
    return rotation


# --- policy-driven (cron) -------------------------------------------------------------------


@dataclass
class DueReport:
    rotations: list[Rotation] = field(default_factory=list)
    failures: list[tuple[str | None, KeyvaultError]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # pending mint steps completed

    @property
    def ok(self) -> bool:
        return not self.failures and all(r.ok for r in self.rotations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rotations": [r.to_dict() for r in self.rotations],
            "failures": [
                {"project": p, "error": e.message, "hint": e.hint} for p, e in self.failures
            ],
            "finished": self.finished,
        }


def due_projects(kv: Keyvault) -> list[tuple[str | None, str]]:
    doc, now = kv.read(), kv.clock()
    found = [(p, project_due(doc, p, rotation_policy(kv.config, p), now)) for p in doc.projects()]
    return [(p, reason) for p, reason in found if reason]


def rotate_due(
    kv: Keyvault,
    options: RotateOptions,
    rotate: Callable[[Keyvault, str | None, RotateOptions], Rotation] = rotate_project,
) -> DueReport:
    """Rotate every project the policy marks due; one project's failure does not stop the rest."""
    report = DueReport()
    for project, reason in due_projects(kv):
        try:
            report.rotations.append(rotate(kv, project, replace(options, reason=reason)))
        except KeyvaultError as exc:
            report.failures.append((project, exc))
    return report

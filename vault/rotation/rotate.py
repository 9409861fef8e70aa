"""Switching a project's active key: the library call behind `keyvault rotate`.

    rotation = rotate_project(kv, "work", RotateOptions(reason="manual"))

The candidates are ranked (vault/rotation/candidates.py: every key that may not become
active says why), then verified one at a time, best first, until one serves a real request
(vault/rotation/verify.py: by default the 1-token chat probe, which proves credit; `[rotation]
verify = "models"` for the free probe; `Verify.NONE` trusts stored results). Then ONE
`kv.transact` stores the check results and switches: the new key becomes active and the old
one standby (or retired) in the same save, so the project never has zero or two active keys on
disk. Afterwards every `.env` file the project was exported to is updated, each reported.

When no candidate got an answer at all (network, proxy or the API down), nothing is saved and
`NetworkUnavailable` says so: a network failure is never reported as a bad key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from vault.errors import KeyvaultError, NetworkUnavailable, NoHealthyCandidate, UsageError
from vault.export.targets import SyncOutcome, sync
from vault.health.checking import Checked, CheckOptions, Probed, interrupts_deferred, merge_results
from vault.health.policy import health_policy
from vault.model.document import Entry, Status, VaultDoc, refuse_admin
from vault.model.health import NOT_THE_KEY, HealthStatus
from vault.rotation.candidates import model_tip, nothing_qualifies, rank, rank_key, where
from vault.rotation.policy import (
    ANY_PROJECT,
    Verify,
    advice,
    health_status,
    project_due,
    rotation_policy,
)
from vault.rotation.verify import (
    VERIFY_MAX_WAIT,
    Verification,
    failure_reason,
    verify_in_turn,
)
from vault.store.keyvault import Keyvault


@dataclass(frozen=True)
class RotateOptions:
    to: str | None = None
    dry_run: bool = False
    verify: Verify | None = None  # None: the project's `[rotation] verify` (chat by default)
    retire: bool = False
    reason: str = "manual"
    utc: bool = False  # times in reasons ("cooling down until 15:21") in UTC, not local
    check_options: CheckOptions = field(
        default_factory=lambda: CheckOptions(max_retry_wait=VERIFY_MAX_WAIT)
    )


@dataclass
class Rotation:
    project: str | None
    new: str
    old: str | None
    reason: str
    dry_run: bool = False
    checked: list[Checked] = field(default_factory=list)
    dotenv: list[SyncOutcome] = field(default_factory=list)
    verify: str = Verify.NONE
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why), tried first
    requests: int = 0  # HTTP requests the verification made
    chats: int = 0  # of which 1-token chat completions

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
            "verify": str(self.verify),
            "skipped": [{"name": n, "reason": why} for n, why in self.skipped],
            "requests": self.requests,
            "chat_completions": self.chats,
            "dotenv": [d.to_dict() for d in self.dotenv],
            "checked": [c.to_dict() for c in self.checked],
        }


# --- choosing -------------------------------------------------------------------------------


def named(doc: VaultDoc, project: str | None, to: str) -> Entry:
    """The key `--to` names, if it may become `project`'s active key at all."""
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
    return entry


# --- the whole rotation ---------------------------------------------------------------------


@dataclass
class _Plan:
    """What was decided before the save: the verification and, if it failed, the error."""

    verification: Verification
    failure: KeyvaultError | None = None

    @property
    def interrupted(self) -> bool:
        return self.verification.probed.interrupted


def _decide(kv: Keyvault, doc: VaultDoc, project: str | None, options: RotateOptions) -> _Plan:
    """Rank and verify (network, outside the lock); raise only what must save nothing."""
    policy = rotation_policy(kv.config, project)
    mode = options.verify or policy.verify
    now = kv.clock()
    if options.to is not None:
        todo, reasons = [named(doc, project, options.to)], []
    else:
        ranked = rank(doc, project, policy, now, verify=mode, utc=options.utc)
        todo, reasons = ranked.tryable, ranked.reasons
    checks = options.check_options
    if policy.model is not None:
        checks = replace(checks, model=policy.model)
    verification = verify_in_turn(todo, mode, checks, clock=kv.clock)
    if verification.probed.interrupted or verification.chosen is not None:
        return _Plan(verification)
    if verification.unreachable:
        raise verification.unreachable_error(where(project))
    failure = _failure(
        kv, doc, project, options, reasons=reasons, verification=verification, model=checks.model
    )
    return _Plan(verification, failure)


def _failure(
    kv: Keyvault,
    doc: VaultDoc,
    project: str | None,
    options: RotateOptions,
    *,
    reasons: list[tuple[str, str]],
    verification: Verification,
    model: str,
) -> NoHealthyCandidate:
    """Why no key was chosen: the named key's verdict, or one reason per key in rank order."""
    if options.to is not None:
        result = next(iter(verification.probed.results.values()))
        hint = "add --no-check to switch to it anyway"
        if result.status is HealthStatus.MODEL_UNAVAILABLE:
            hint = f"{model_tip(model)}; or {hint}"
        return NoHealthyCandidate(
            f"{options.to!r} failed its check: {failure_reason(result)}", hint=hint
        )
    entries = {e.name: e for e in doc.entries}
    every = sorted([*reasons, *verification.skipped], key=lambda r: rank_key(entries[r[0]]))
    return nothing_qualifies(doc, project, every, kv.config.phone_slots, model=model)


def rotate_project(kv: Keyvault, project: str | None, options: RotateOptions) -> Rotation:
    """Rank, verify, then store the results and switch in one save; then update the project's
    `.env` files."""
    doc = kv.read()
    doc.require_project(project)
    plan = _decide(kv, doc, project, options)
    if plan.interrupted:
        _keep_results(kv, plan.verification.probed, dry_run=options.dry_run)
        raise KeyboardInterrupt
    if plan.failure is not None and not plan.verification.probed.results:
        raise plan.failure  # nothing was checked: nothing to save
    if options.dry_run:  # the same change on the copy just read, never saved
        preview = _apply(doc, kv, project, options, plan)
        preview.dotenv = sync(doc, [project], dry_run=True)
        return preview
    failure: list[KeyvaultError] = []

    def change(fresh: VaultDoc) -> Rotation | None:
        try:
            return _apply(fresh, kv, project, options, plan)
        except NoHealthyCandidate as exc:  # keep the check results, report after the save
            failure.append(exc)
            return None

    with interrupts_deferred():
        rotation = kv.transact(change)
    if rotation is None:
        raise failure[0]
    rotation.dotenv = list(kv.synced)
    return rotation


def _keep_results(kv: Keyvault, probed: Probed, *, dry_run: bool) -> None:
    """A Ctrl-C during verification switches nothing, but keeps the verdicts that came in:
    they were paid for (a chat completion each), and the next rotation should not pay again
    to learn that a key has no credit."""
    if dry_run or not probed.results:
        return
    policy, now = health_policy(kv.config), kv.now_iso()
    with interrupts_deferred():
        kv.transact(lambda doc: merge_results(doc, probed, policy, now))


def _apply(
    doc: VaultDoc, kv: Keyvault, project: str | None, options: RotateOptions, plan: _Plan
) -> Rotation:
    """Inside the one transaction: store the results, then switch to the verified key (if it
    is still the key that was verified: same secret, still a standby key of the project)."""
    verification = plan.verification
    checked = merge_results(doc, verification.probed, health_policy(kv.config), kv.now_iso())
    if plan.failure is not None:
        raise plan.failure
    chosen = verification.chosen
    new = doc.by_id(chosen.id) if chosen is not None else None
    if chosen is None or new is None or new.secret != chosen.secret:
        raise NoHealthyCandidate("the chosen key changed while it was checked; nothing switched")
    if new.status is not Status.STANDBY or new.project != project:
        raise NoHealthyCandidate(f"{new.name!r} changed while it was checked; nothing switched")
    old = doc.rotate_to(new, at=kv.now_iso(), reason=options.reason, retire_old=options.retire)
    return Rotation(
        project,
        new.name,
        old.name if old else None,
        options.reason,
        options.dry_run,
        checked,
        verify=verification.mode,
        skipped=verification.skipped,
        requests=verification.requests,
        chats=verification.chats,
    )


def rotate_in(
    doc: VaultDoc, kv: Keyvault, project: str | None, options: RotateOptions, probed: Probed
) -> Rotation:
    """For a minted key, checked by the caller: store its result and switch to it if it
    passed (`options.to` names it)."""
    checked = merge_results(doc, probed, health_policy(kv.config), kv.now_iso())
    if options.to is None:
        raise UsageError("rotate_in switches to a named key")
    new = named(doc, project, options.to)
    status = health_status(new)
    if status in NOT_THE_KEY and options.verify is not Verify.NONE:
        raise NetworkUnavailable(
            f"could not check {options.to!r} ({status}): the network or the API failed, not"
            " the key; nothing switched",
            hint="`keyvault rotate --finish` checks it again and switches",
        )
    if status != "ok" and options.verify is not Verify.NONE:
        raise NoHealthyCandidate(
            f"{options.to!r} failed its check ({status})", hint="add --no-check to switch anyway"
        )
    old = doc.rotate_to(new, at=kv.now_iso(), reason=options.reason, retire_old=options.retire)
    results = probed.results.values()
    return Rotation(
        project,
        new.name,
        old.name if old else None,
        options.reason,
        options.dry_run,
        checked,
        verify=options.verify or Verify.CHAT,
        requests=sum(r.attempts for r in results),
        chats=sum(1 for r in results if r.probe == "chat"),
    )


# --- policy-driven (cron) -------------------------------------------------------------------


@dataclass
class DueReport:
    rotations: list[Rotation] = field(default_factory=list)
    failures: list[tuple[str | None, KeyvaultError]] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # pending mint steps completed
    advice: str | None = None  # where a new key can come from: once, for every failed project

    @property
    def ok(self) -> bool:
        return not self.failures and all(r.ok for r in self.rotations)

    def hints(self) -> list[str]:
        """Each distinct hint once: a failure's own, except that the where-to-get-a-key advice
        (the same for every project) stands once for all the projects left without a key."""
        out: list[str] = []
        for _, exc in self.failures:
            hint = self.advice if isinstance(exc, NoHealthyCandidate) and self.advice else exc.hint
            if hint and hint not in out:
                out.append(hint)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "rotations": [r.to_dict() for r in self.rotations],
            "failures": [
                {"project": p, "error": e.message, "details": list(e.details), "hint": e.hint}
                for p, e in self.failures
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
    if any(isinstance(exc, NoHealthyCandidate) for _, exc in report.failures):
        project = ANY_PROJECT if len(report.failures) > 1 else report.failures[0][0]
        tips = advice(kv.read(), project, kv.config.phone_slots)
        report.advice = "; ".join(tips)
    return report

"""Which keys of a project may become its active key, in which order, and why the others may
not: one short reason per key, so "nothing qualifies" always says why.

    ranked = rank(doc, "work", policy, now, verify=Verify.CHAT)
    ranked.tryable        # entries to verify, best first
    ranked.reasons        # [("work-2", "too old: 97 d ≥ 90"), ("work-3", "retired"), …]

Best first: highest priority, then most recorded credit (unknown last), then oldest. Pure: no
I/O; the time (and whether to show it in UTC) is an argument.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from vault.errors import NoHealthyCandidate
from vault.model.clock import ago, short_time
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.model.health import HARD_FAILURES, HealthStatus
from vault.rotation.policy import RotationPolicy, Verify, advice, age_days, cooldown_until


@dataclass
class Ranked:
    """A project's possible next keys: those worth trying, best first, and the rest with why."""

    tryable: list[Entry] = field(default_factory=list)
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (name, why not)


def rank_key(entry: Entry) -> tuple[int, int, float, str, str]:
    credit = entry.credit_usd
    return (-entry.priority, credit is None, -(credit or 0.0), entry.created or "9999", entry.name)


def rank(
    doc: VaultDoc,
    project: str | None,
    policy: RotationPolicy,
    now: dt.datetime,
    *,
    verify: Verify,
    utc: bool = False,
) -> Ranked:
    """Every API key of `project` except its active one, sorted, with a reason for each that
    may not become active now. With `verify` other than NONE, a key whose last check was a
    soft failure (network, server, rate limit over) or that was never checked is tried: the
    verification will tell. A stored hard failure (no credit, revoked, …) is not re-tried:
    `rotate --to NAME` checks one such key again after a recharge."""
    ranked = Ranked()
    keys = [
        e
        for e in doc.entries
        if e.project == project and e.kind is Kind.API and e.status is not Status.ACTIVE
    ]
    for entry in sorted(keys, key=rank_key):
        why = why_not(entry, policy, now, verify=verify, utc=utc)
        if why is None:
            ranked.tryable.append(entry)
        else:
            ranked.reasons.append((entry.name, why))
    return ranked


def why_not(
    entry: Entry, policy: RotationPolicy, now: dt.datetime, *, verify: Verify, utc: bool = False
) -> str | None:
    """One short reason why `entry` may not become active now, or None if it may (subject to
    verification)."""
    if entry.status is not Status.STANDBY:
        return _status_reason(entry)
    until = cooldown_until(entry, policy)
    if until is not None and until > now:
        return f"cooling down until {short_time(until, now, utc=utc)}"
    return _stored_reason(entry, policy, now, verify) or _policy_reason(entry, policy, now)


def _stored_reason(
    entry: Entry, policy: RotationPolicy, now: dt.datetime, verify: Verify
) -> str | None:
    """A stored verdict that rules the key out without asking the API again: any failure when
    trusting stored results, else only what waiting cannot fix."""
    health = entry.health
    if health is None or health.ok:
        return None
    if verify is Verify.NONE or health.status in HARD_FAILURES | policy.on_status:
        return f"{health.status} {ago(health.checked_at, now)}"
    return None


def _status_reason(entry: Entry) -> str:
    health = entry.health
    if entry.status is Status.DISABLED and health is not None and health.disabled_by_policy:
        return f"disabled by the health policy ({health.status})"
    return str(entry.status)


def _policy_reason(entry: Entry, policy: RotationPolicy, now: dt.datetime) -> str | None:
    """Why the rotation policy would replace this key at once if it became active."""
    age = age_days(entry, now)
    if policy.max_age_days is not None and age is not None and age >= policy.max_age_days:
        return f"too old: {age} d ≥ {policy.max_age_days}"
    floor, credit = policy.min_credit_usd, entry.credit_usd
    if floor is not None and credit is not None and credit < floor:
        return f"credit ${credit:.2f} < ${floor:.2f}"
    return None


# --- when nothing qualifies ----------------------------------------------------------------


def model_tip(model: str) -> str:
    """What to do when keys may not use the model the chat check asked for: often a relay
    that serves other models, not a bad key."""
    return (
        f"the check asked for {model}: set `model` under [rotation] in config.toml to one these"
        ' keys may use, or verify = "models"'
    )


def where(project: str | None) -> str:
    """A project as messages name it."""
    return f"project {project!r}" if project else "the default project"


def nothing_qualifies(
    doc: VaultDoc,
    project: str | None,
    reasons: list[tuple[str, str]],
    phone_slots: int,
    *,
    model: str | None = None,
) -> NoHealthyCandidate:
    """The error when no key may become active: one reason per key, and one hint (`model`:
    the one the chat check asked for, named when a key may not use it)."""
    details = tuple(f"{name}: {why}" for name, why in reasons)
    tips = advice(doc, project, phone_slots)
    # a reason decided by a verdict starts with its status ("quota_exhausted 2 h ago")
    verdicts = {why.split(" ")[0] for _, why in reasons}
    if verdicts & HARD_FAILURES:
        tips.insert(0, "recharged or fixed a key? `keyvault rotate --to NAME` checks it again")
    if model is not None and HealthStatus.MODEL_UNAVAILABLE in verdicts:
        tips.insert(0, model_tip(model))
    return NoHealthyCandidate(
        f"no healthy standby key in {where(project)}",
        details=details or ("no other API key in this project",),
        hint="; ".join(tips),
    )

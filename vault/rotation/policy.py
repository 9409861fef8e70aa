"""Health and rotation policies from `config.toml`, and the questions they answer.

    [health]
    disable_after = 3                # disable a standby key after 3 hard failures in a row
    max_wait = 20                    # seconds one key may wait for retries (rate limits)

    [rotation]                       # every project
    verify = "chat"                  # check a candidate before switching: "chat" or "models"
    model = "gpt-4o-mini"            # the model the chat check asks for (a relay's own model)
    on_status = ["invalid", "quota_exhausted", "region_blocked", "forbidden"]
    max_age_days = 90
    min_credit_usd = 2.0
    cooldown_minutes = 60            # a rate-limited key sits out this long
    grace_hours = 24                 # minted rotations delete the old service account after this

    [rotation.projects.work]         # overrides for one project
    max_age_days = 30
    project_id = "proj_abc"          # where `rotate --mint` creates service accounts

Pure: no I/O, the clock is an argument. Docs: docs/rotation.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

from vault.errors import ConfigError, NoActiveKey
from vault.health.policy import health_policy
from vault.health.policy import number as _number
from vault.health.policy import statuses as _statuses
from vault.model.clock import parse_time
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.model.health import HARD_FAILURES, HealthStatus
from vault.store.config import Config

DEFAULT_COOLDOWN_MINUTES: Final = 60.0


class Verify(StrEnum):
    """How rotation checks a candidate before switching to it (docs/rotation.md)."""

    CHAT = "chat"  # GET /models, then a 1-token chat completion: proves credit and model access
    MODELS = "models"  # GET /models only: free, but blind to exhausted credit
    NONE = "none"  # trust the stored results (`rotate --no-check`)


@dataclass(frozen=True)
class RotationPolicy:
    """`[rotation]` merged with `[rotation.projects.NAME]` for one project."""

    verify: Verify = Verify.CHAT
    on_status: frozenset[HealthStatus] = HARD_FAILURES
    max_age_days: int | None = None
    min_credit_usd: float | None = None
    cooldown_minutes: float = DEFAULT_COOLDOWN_MINUTES
    grace_hours: float | None = None
    project_id: str | None = None
    model: str | None = None  # the chat check's model; None: the checker's (gpt-4o-mini)


def _verify(value: object, where: str) -> Verify:
    allowed = (Verify.CHAT, Verify.MODELS)  # "none" is --no-check: a choice per run, not a policy
    if value not in allowed:
        raise ConfigError(f"config.toml: {where} must be one of: " + ", ".join(allowed))
    return Verify(str(value))


def _whole_days(value: object, where: str) -> int:
    return int(_number(value, where, minimum=1))


def _model(value: object, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or not value.isprintable():
        raise ConfigError(f'config.toml: {where} must be a model name, e.g. "gpt-4o-mini"')
    if value != value.strip() or " " in value:
        raise ConfigError(f"config.toml: {where} must be a model name without spaces")
    return value


def _project_id(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("proj_"):
        raise ConfigError(f"config.toml: {where} must be an OpenAI project id (proj_…)")
    return value


# setting → the function that checks it, for [rotation] and [rotation.projects.NAME]
_ROTATION_KEYS: Final[Mapping[str, Callable[[object, str], Any]]] = {
    "verify": _verify,
    "on_status": _statuses,
    "max_age_days": _whole_days,
    "min_credit_usd": _number,
    "cooldown_minutes": _number,
    "grace_hours": _number,
    "project_id": _project_id,
    "model": _model,
}


def _apply(policy: RotationPolicy, raw: Mapping[str, Any], where: str) -> RotationPolicy:
    changes: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "projects" and where == "rotation":
            continue
        if key not in _ROTATION_KEYS:
            raise ConfigError(f"config.toml: unknown setting {where}.{key}")
        changes[key] = _ROTATION_KEYS[key](value, f"{where}.{key}")
    return replace(policy, **changes)


def rotation_policy(config: Config, project: str | None) -> RotationPolicy:
    """The policy for `project`: global settings, then the project's own table."""
    raw = config.rotation
    policy = _apply(RotationPolicy(), raw, "rotation")
    projects = raw.get("projects", {})
    if not isinstance(projects, Mapping):
        raise ConfigError("config.toml: rotation.projects must be a table")
    own = projects.get(project or "", {})
    if not isinstance(own, Mapping):
        raise ConfigError(f"config.toml: rotation.projects.{project} must be a table")
    return _apply(policy, own, f"rotation.projects.{project}")


def validate(config: Config) -> None:
    """Fail early (before any network) on a policy typo."""
    health_policy(config)
    for project in config.rotation.get("projects", {}) or {}:
        rotation_policy(config, project)
    rotation_policy(config, None)


# --- questions ----------------------------------------------------------------------------


def health_status(entry: Entry) -> HealthStatus | None:
    return entry.health.status if entry.health else None


def cooldown_until(entry: Entry, policy: RotationPolicy) -> dt.datetime | None:
    """When a rate-limited key may be used again: the longer of the server's Retry-After and
    the policy's cooldown, counted from the check that saw the limit."""
    health = entry.health
    if health is None or health.status is not HealthStatus.RATE_LIMITED:
        return None
    checked = parse_time(health.checked_at)
    if checked is None:
        return None
    cooled = checked + dt.timedelta(minutes=policy.cooldown_minutes)
    server = parse_time(health.retry_at)  # the server's own time, from its last answer
    if server is None:
        server = checked + dt.timedelta(seconds=float(health.retry_after_s or 0))
    return max(cooled, server)


def age_days(entry: Entry, now: dt.datetime) -> int | None:
    created = parse_time(entry.created)
    return None if created is None else (now - created).days


def due_reason(entry: Entry, policy: RotationPolicy, now: dt.datetime) -> str | None:
    """Why the policy wants this (active) key replaced, or None."""
    status = health_status(entry)
    if status in policy.on_status:
        return f"status {status}"
    age = age_days(entry, now)
    if policy.max_age_days is not None and age is not None and age >= policy.max_age_days:
        return f"age {age} days >= {policy.max_age_days}"
    if (
        policy.min_credit_usd is not None
        and entry.credit_usd is not None
        and entry.credit_usd < policy.min_credit_usd
    ):
        return f"credit ${entry.credit_usd:.2f} < ${policy.min_credit_usd:.2f}"
    return None


def project_due(
    doc: VaultDoc, project: str | None, policy: RotationPolicy, now: dt.datetime
) -> str | None:
    """Why `project` needs a rotation now, or None. A project whose keys are all standby or
    disabled (no active one) is due too: nothing is exported for it."""
    try:
        active = doc.active(project)
    except NoActiveKey:  # due only if it has some API key that could serve
        spare = any(
            e.project == project and e.kind is Kind.API and e.status is not Status.RETIRED
            for e in doc.entries
        )
        return "no active key" if spare else None
    return due_reason(active, policy, now)


# --- when nothing is healthy ----------------------------------------------------------------

ANY_PROJECT: Final = "PROJECT"  # stands for the project in advice given once for several


def advice(doc: VaultDoc, project: str | None, phone_slots: int) -> list[str]:
    """Where a new key can come from, from the vault's own data (phones with a free slot, the
    cards on file, an admin key to mint with). The same for every project but for the flags:
    a run that fails in several projects gives it once, with `project=ANY_PROJECT`."""
    cards = sorted({e.card for e in doc.entries if e.card})
    tips = [
        _phone_tip(doc, phone_slots),
        ("cards on file: " + ", ".join(cards)) if cards else "no card on file",
    ]
    if any(e.kind is Kind.ADMIN for e in doc.entries):
        tips.append(f"mint one: keyvault rotate --mint{_flag(project)}")
    tips.append(f"add a key: keyvault add NAME{_flag(project)}")
    return tips


def _phone_tip(doc: VaultDoc, slots: int) -> str:
    phones = doc.phone_usage(slots)
    free = [f"{u.phone} ({u.free} free)" for u in phones if u.free]
    if free:
        return "phones with a free verification slot: " + ", ".join(free)
    if phones:
        return f"every phone on file verified {slots} keys: a new key needs a new number"
    return "no phone on file: verify a new key with any number"


def _flag(project: str | None) -> str:
    return f" --project {project}" if project else ""

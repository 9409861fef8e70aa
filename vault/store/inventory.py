"""Adding, editing and removing keys: validation, then one atomic transaction each.

These are the library calls behind `keyvault add/edit/rm`; each validates every input before
the vault is touched, so a bad value never reaches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault.errors import DuplicateKey, InvalidValue, PolicyViolation
from vault.model import validate as v
from vault.model.document import Entry, Kind, PhoneUsage, Status, VaultDoc, entry_event, phone_usage
from vault.model.secret import Secret
from vault.model.shapes import refuse_pasted_secret, refuse_secrets_in_fields
from vault.store.keyvault import Keyvault

# metadata field → the function that checks and normalises a user's text for it
Checker = Callable[[str], Any]


def _checkers(kv: Keyvault) -> dict[str, Checker]:
    today = kv.clock().date()
    return {
        "name": v.check_name,
        "project": lambda s: v.check_name(s, "project"),
        "provider": lambda s: v.check_name(s.lower(), "provider"),
        "created": lambda s: v.parse_date(s, today=today),
        "phone": v.normalize_phone,
        "card": v.check_card_label,
        "credit_usd": v.check_credit,
        "org_id": lambda s: v.check_id(s, "org id"),
        "project_id": lambda s: v.check_id(s, "project id"),
        "base_url": v.check_base_url,
        "note": lambda s: v.clean_text(s, "note"),
        "priority": _check_priority,
        "status": _check_status,
        "tags": _check_tags,
    }


def _check_priority(raw: str | int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidValue(f"priority {str(raw)[:20]!r} is not a whole number") from None
    if not -1000 <= value <= 1000:
        raise InvalidValue("priority must be between -1000 and 1000")
    return value


def _check_status(raw: str) -> Status:
    try:
        return Status(raw)
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise InvalidValue(f"status {raw[:20]!r} is not one of {choices}") from None


def _check_tags(raw: str | list[str]) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    tags: list[str] = []
    for item in items:
        for tag in str(item).split(","):
            if tag.strip():
                tags.append(v.check_name(tag.strip(), "tag"))
    return sorted(set(tags))


# what '' sets a field to, when that is not None
_CLEARED_TO = {"provider": "openai"}


def clean_fields(kv: Keyvault, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check every given field; empty strings mean "clear this field"."""
    checkers = _checkers(kv)
    refuse_secrets_in_fields(raw)  # before a checker's message can quote a pasted key
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in checkers:
            raise InvalidValue(f"unknown field {name!r}")
        if value == "" and name not in ("name", "status", "priority"):
            out[name] = [] if name == "tags" else _CLEARED_TO.get(name)
        else:
            out[name] = checkers[name](value)
    return out


@dataclass
class Added:
    entry: Entry
    warnings: list[str] = field(default_factory=list)


def add_key(
    kv: Keyvault,
    name: str,
    secret: Secret,
    fields: Mapping[str, Any],
    *,
    activate: bool = False,
    rand: Callable[[int], bytes] = os.urandom,
) -> Added:
    """Validate and store a new key. The first API key of a project becomes its active key."""
    meta = clean_fields(kv, {"name": name, **fields})
    checked = v.check_key(secret.reveal(), provider=meta.get("provider") or "openai")
    refuse_pasted_secret(meta, checked.value)  # a relay key need not look like one
    kind = Kind.ADMIN if checked.kind is v.KeyKind.ADMIN else Kind.API
    if activate and kind is Kind.ADMIN:
        raise PolicyViolation("an admin key cannot be a project's active key")
    now = kv.now_iso()
    meta.setdefault("created", now[:10])
    entry = Entry(
        id=rand(8).hex(),
        secret=Secret(checked.value),
        kind=kind,
        added_at=now,
        updated_at=now,
        **meta,
    )
    warnings = list(checked.warnings)

    def change(doc: VaultDoc) -> None:
        _refuse_duplicate_secret(doc, entry)
        has_active = any(
            e.project == entry.project and e.status is Status.ACTIVE for e in doc.entries
        )
        if kind is Kind.API and (activate or not has_active) and "status" not in meta:
            entry.status = Status.ACTIVE
        before = _active_ids(doc)
        doc.add(entry, phone_slots=kv.config.phone_slots)
        doc.record(entry_event(now, "add", entry, status=entry.status.value))
        _record_displaced(doc, before, entry, now)

    kv.transact(change)
    return Added(entry, warnings)


def _refuse_duplicate_secret(doc: VaultDoc, new: Entry) -> None:
    # hash first (Secret hashes its value): one constant-time comparison per candidate, not
    # one per stored key, which on a 10,000-key vault was a tenth of `add`
    target = hash(new.secret)
    for other in doc.entries:
        if other is not new and hash(other.secret) == target and other.secret == new.secret:
            raise DuplicateKey(f"this key is already stored as {other.name!r}")


def edit_key(
    kv: Keyvault,
    name: str,
    fields: Mapping[str, Any],
    *,
    secret: Secret | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Entry:
    """Change metadata (and optionally the secret) of one entry; the key checks' warnings
    (as `add` gives them: no OpenAI marker, say) go to `on_warning`."""
    changes = clean_fields(kv, fields)
    if secret is not None:
        refuse_pasted_secret(changes, secret.reveal().strip())
    if not changes and secret is None:
        raise InvalidValue("nothing to change", hint="see `keyvault edit --help` for the fields")
    now = kv.now_iso()

    def change(doc: VaultDoc) -> Entry:
        key_changes, warnings = _key_changes(doc.find(name), changes, secret)
        all_changes = {**changes, **key_changes}
        if "secret" in all_changes:
            probe = Entry(id="", name=name, secret=all_changes["secret"])
            _refuse_duplicate_secret(
                VaultDoc(entries=[e for e in doc.entries if e.name != name]), probe
            )
        before = _active_ids(doc)
        updated = doc.update(
            name, {**all_changes, "updated_at": now}, phone_slots=kv.config.phone_slots
        )
        shown = sorted(k for k in all_changes if k != "kind")
        doc.record(entry_event(now, "edit", updated, fields=shown))
        _record_displaced(doc, before, updated, now)
        pending_warnings.extend(warnings)
        return updated

    pending_warnings: list[str] = []
    updated = kv.transact(change)
    if on_warning is not None:
        for message in pending_warnings:
            on_warning(message)
    return updated


def _key_changes(
    entry: Entry, changes: Mapping[str, Any], secret: Secret | None
) -> tuple[dict[str, Any], list[str]]:
    """The new secret and kind, checked against the provider the entry will have, and the
    check's warnings.

    A provider change rechecks the stored key too: `relay` → `openai` must not keep a key that
    OpenAI could never accept.
    """
    if secret is None and "provider" not in changes:
        return {}, []
    provider = changes.get("provider") or entry.provider or "openai"
    checked = v.check_key((secret or entry.secret).reveal(), provider=provider)
    out: dict[str, Any] = {"kind": Kind.ADMIN if checked.kind is v.KeyKind.ADMIN else Kind.API}
    if secret is not None:
        out["secret"] = Secret(checked.value)
    return out, list(checked.warnings) if secret is not None else []


def _active_ids(doc: VaultDoc) -> set[str]:
    return {e.id for e in doc.entries if e.status is Status.ACTIVE}


def _record_displaced(doc: VaultDoc, before: set[str], cause: Entry, now: str) -> None:
    """History for keys that lost their active status because `cause` became active."""
    for entry in doc.entries:
        if entry.id in before and entry.id != cause.id and entry.status is not Status.ACTIVE:
            why = f"{cause.name} became the active key"
            entry.updated_at = now
            doc.record(entry_event(now, "status", entry, status=entry.status.value, reason=why))


def remove_key(kv: Keyvault, name: str) -> Entry:
    now = kv.now_iso()

    def change(doc: VaultDoc) -> Entry:
        entry = doc.remove(name)
        doc.record(entry_event(now, "rm", entry))
        return entry

    return kv.transact(change)


def phones(doc: VaultDoc, slots: int) -> list[PhoneUsage]:
    return phone_usage(doc.entries, slots)

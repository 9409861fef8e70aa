"""Adding, editing and removing keys: validation, then one atomic transaction each.

These are the library calls behind `keyvault add/edit/rm`; each validates every input before
the vault is touched, so a bad value never reaches the disk.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from vault.errors import (
    DuplicateKey,
    DuplicateName,
    EntryNotFound,
    InvalidValue,
    PolicyViolation,
)
from vault.export.targets import SyncOutcome
from vault.model import typed
from vault.model import validate as v
from vault.model.clock import iso, local_date
from vault.model.document import Entry, Kind, PhoneUsage, Status, VaultDoc, refuse_case_twin
from vault.model.records import ExportTarget
from vault.model.secret import Secret
from vault.model.shapes import refuse_pasted_secret, refuse_secrets_in_fields
from vault.model.views import ListQuery, select_entries
from vault.store.keyvault import Keyvault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.model.batch import EntryIndex

# metadata field → the function that checks and normalises a user's text for it; a checker
# may add a line to `notes` when it changed what was typed (a base URL given /v1, say)
Checker = Callable[[str], Any]
Notes = list[str]


def _checkers(kv: Keyvault, notes: Notes) -> dict[str, Checker]:
    today = local_date(kv.clock())  # a date typed is a day where the user is
    return {
        "name": typed.check_label,
        "project": lambda s: typed.check_label(s, "project"),
        "provider": lambda s: v.check_name(s.lower(), "provider"),
        "created": lambda s: v.parse_date(v.date_as_typed(s), today=today),
        "phone": v.normalize_phone,
        "card": v.check_card_label,
        "credit_usd": lambda s: v.check_credit(v.credit_as_typed(s) if isinstance(s, str) else s),
        "org_id": lambda s: v.check_id(s, "org id"),
        "project_id": lambda s: v.check_id(s, "project id"),
        "base_url": lambda s: _noted(typed.tidy_base_url(s), notes),
        "note": lambda s: v.clean_text(s, "note"),
        "priority": _check_priority,
        "status": _check_status,
        "tags": _check_tags,
    }


def _noted(checked: tuple[str, str | None], notes: Notes) -> str:
    value, note = checked
    if note:
        notes.append(note)
    return value


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
        return Status(raw.strip().lower())  # a spreadsheet's `Active` is `active`
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise InvalidValue(f"status {raw[:20]!r} is not one of {choices}") from None


def _check_tags(raw: str | Sequence[str]) -> list[str]:
    items = [raw] if isinstance(raw, str) else list(raw)
    tags: list[str] = []
    for item in items:
        for tag in str(item).split(","):
            if tag.strip():
                tags.append(typed.check_label(tag.strip(), "tag"))
    return sorted(set(tags))


# what '' sets a field to, when that is not None
_CLEARED_TO = {"provider": "openai"}


def clean_fields(
    kv: Keyvault, raw: Mapping[str, Any], notes: Notes | None = None
) -> dict[str, Any]:
    """Check every given field; empty strings mean "clear this field". Lines saying what was
    changed from the typed text go to `notes`."""
    checkers = _checkers(kv, notes if notes is not None else [])
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
    synced: list[SyncOutcome] = field(default_factory=list)  # .env files that followed
    displaced: Entry | None = None  # the project's active key until this one took its place


@dataclass
class NewKey:
    """A key checked and ready to store (`prepare_key`), and what the checks had to say."""

    entry: Entry
    activate: bool = False
    warnings: list[str] = field(default_factory=list)
    status_given: bool = False  # the caller chose the status: no first-key rule


def prepare_key(
    kv: Keyvault,
    name: str,
    secret: Secret,
    fields: Mapping[str, Any],
    *,
    activate: bool = False,
    rand: Callable[[int], bytes] = os.urandom,
) -> NewKey:
    """Check a new key and its metadata as `add` does, without touching the vault: every
    field, the key's shape (a pasted `OPENAI_API_KEY=sk-…` line gives its value, and says so),
    and that an admin key is not to be active. Raises InvalidValue or PolicyViolation."""
    warnings: Notes = []
    meta = clean_fields(kv, {"name": name, **fields}, warnings)
    value, variable = typed.key_from_assignment(secret.reveal())
    if variable is not None:
        warnings.append(f"took the value of {variable} from the pasted line")
    checked = v.check_key(value, provider=meta.get("provider") or "openai")
    refuse_pasted_secret(meta, checked.value)  # a relay key need not look like one
    kind = Kind.ADMIN if checked.kind is v.KeyKind.ADMIN else Kind.API
    if activate and kind is Kind.ADMIN:
        raise PolicyViolation("an admin key cannot be a project's active key")
    moment = kv.clock()
    now = iso(moment)
    meta.setdefault("created", local_date(moment).isoformat())
    entry = Entry(
        id=rand(8).hex(),
        secret=Secret(checked.value),
        kind=kind,
        added_at=now,
        updated_at=now,
        **meta,
    )
    return NewKey(entry, activate, [*warnings, *checked.warnings], "status" in meta)


def store_key(
    doc: VaultDoc, new: NewKey, *, at: str, phone_slots: int, index: EntryIndex | None = None
) -> None:
    """Add a prepared key to the document by the rules of `add`: never a key stored twice,
    the first API key of a project becomes its active key, then the document's own
    invariants (unique name, phone slots, no active admin key). `doc` is unchanged when it
    raises. `index` (vault/model/batch.py): a batch of adds asks it instead of every entry,
    and `add_entry` keeps it current."""
    entry = new.entry
    if index is not None:
        index.refresh(doc)
    _refuse_duplicate_secret(doc, entry, index)
    if index is not None:
        has_active = bool(index.active.get(entry.project))
    else:
        has_active = any(
            e.project == entry.project and e.status is Status.ACTIVE for e in doc.entries
        )
    first = not has_active and not new.status_given
    if entry.kind is Kind.API and (new.activate or first):
        entry.status = Status.ACTIVE
    doc.add_entry(entry, at=at, phone_slots=phone_slots, index=index)


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
    new = prepare_key(kv, name, secret, fields, activate=activate, rand=rand)
    at = new.entry.added_at or kv.now_iso()

    def store(doc: VaultDoc) -> Entry | None:
        before = active_key(doc, new.entry.project)
        store_key(doc, new, at=at, phone_slots=kv.config.phone_slots)
        return before if before is not None and before.status is not Status.ACTIVE else None

    displaced = kv.transact(store)
    return Added(new.entry, new.warnings, list(kv.synced), displaced)


def active_key(doc: VaultDoc, project: str | None) -> Entry | None:
    """The project's active key, or None (no error: a project may have none)."""
    return next((e for e in doc.in_project(project) if e.status is Status.ACTIVE), None)


def precheck_add(kv: Keyvault, doc: VaultDoc, name: str, fields: Mapping[str, Any]) -> None:
    """What `add` would refuse before the key is asked for: a bad field or a taken name, so
    nobody pastes a key only to hear about a typo."""
    meta = clean_fields(kv, {"name": name, **fields})
    if meta["name"] in doc.names():
        raise DuplicateName(f"an entry named {meta['name']!r} already exists")
    refuse_case_twin(meta.get("project"), set(doc.projects()))


def _refuse_duplicate_secret(doc: VaultDoc, new: Entry, index: EntryIndex | None = None) -> None:
    # hash first (Secret hashes its value): one constant-time comparison per candidate, not
    # one per stored key, which on a 10,000-key vault was a tenth of `add`; a batch's index
    # holds the entries by key, so it hands over only the ones with this key
    target = hash(new.secret)
    candidates = doc.entries if index is None else index.by_secret.get(new.secret, [])
    for other in candidates:
        if other.id != new.id and hash(other.secret) == target and other.secret == new.secret:
            raise DuplicateKey(f"this key is already stored as {other.name!r}")


def edit_key(
    kv: Keyvault,
    name: str,
    fields: Mapping[str, Any],
    *,
    secret: Secret | None = None,
    add_tags: Sequence[str] = (),
    remove_tags: Sequence[str] = (),
    on_warning: Callable[[str], None] | None = None,
) -> Edited:
    """Change metadata (and optionally the secret) of one entry; `add_tags`/`remove_tags`
    change its tags (a tag it does not have is an error: a typo never succeeds silently).
    The checks' warnings (no OpenAI marker, a base URL given /v1) go to `on_warning`."""
    notes: Notes = []
    changes = clean_fields(kv, fields, notes)
    if secret is not None:
        refuse_pasted_secret(changes, secret.reveal().strip())
    adding, removing = _check_tags(list(add_tags)), _check_tags(list(remove_tags))
    if not changes and secret is None and not adding and not removing:
        raise InvalidValue("nothing to change", hint="see `keyvault edit --help` for the fields")
    now = kv.now_iso()

    def change(doc: VaultDoc) -> Edited:
        entry = doc.find(name)
        if "project" in changes:
            refuse_case_twin(changes["project"], set(doc.projects()))
        key_changes, warnings = _key_changes(entry, changes, secret)
        all_changes = {**changes, **key_changes}
        if adding or removing:
            current = changes.get("tags", entry.tags)
            all_changes["tags"] = _retagged(entry, current, adding, removing)
        if "secret" in all_changes:
            _refuse_duplicate_secret(doc, entry.evolve(secret=all_changes["secret"]))
        notes.extend(warnings)
        project = all_changes.get("project", entry.project)
        before = active_key(doc, project)
        updated = doc.update_entry(name, all_changes, at=now, phone_slots=kv.config.phone_slots)
        if updated is entry:
            raise _Unchanged(entry)  # nothing to save: the vault file stays as it is
        gone = before is not None and before is not entry and before.status is not Status.ACTIVE
        return Edited(updated, True, before if gone else None)

    try:
        edited = kv.transact(change)
    except _Unchanged as same:
        edited = Edited(same.entry, False)
    if on_warning is not None:
        for message in notes:
            on_warning(message)
    return edited


class Edited(NamedTuple):
    """The entry after `edit_key`, whether any value changed (else nothing was saved), and
    the project's active key it displaced, if it became active."""

    entry: Entry
    changed: bool
    displaced: Entry | None = None


class _Unchanged(Exception):
    def __init__(self, entry: Entry) -> None:
        super().__init__("nothing changed")
        self.entry = entry


def _retagged(
    entry: Entry, current: Sequence[str], adding: list[str], removing: list[str]
) -> list[str]:
    missing = [t for t in removing if t not in current]
    if missing:
        have = ", ".join(current) or "none"
        raise InvalidValue(f"{entry.name!r} has no tag {missing[0]!r} (its tags: {have})")
    return sorted((set(current) | set(adding)) - set(removing))


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


def remove_key(kv: Keyvault, name: str) -> Entry:
    now = kv.now_iso()
    return kv.transact(lambda doc: doc.remove_entry(name, at=now))


def add_phone(kv: Keyvault, number: str, *, note: str | None = None) -> str:
    """Record a spare phone number before it verifies a key, so slot hints offer it; returns
    the number in E.164."""
    phone = v.normalize_phone(number)
    cleaned = v.clean_text(note, "note") if note else None
    now = kv.now_iso()
    kv.transact(lambda doc: doc.add_phone(phone, at=now, note=cleaned))
    return phone


def list_entries(doc: VaultDoc, query: ListQuery) -> list[Entry]:
    """The entries `list` shows; a phone filter is read as typed (`0044…` is `+44…`)."""
    if query.phone:
        query = query._replace(phone=v.normalize_phone(query.phone))
    return select_entries(doc, query)


def phones(doc: VaultDoc, slots: int) -> list[PhoneUsage]:
    return doc.phone_usage(slots)


def forget_dotenv(kv: Keyvault, path: Path) -> ExportTarget:
    """Stop rewriting the .env file at `path` when its project's key changes; the file keeps
    what it holds. `path` as it was registered (absolute), or any path to the same file
    (through a symlinked folder); EntryNotFound, listing what is registered, otherwise."""
    registered = kv.read().exports
    wanted = str(path.absolute())
    same = [t.path for t in registered if t.path == wanted or _same_file(Path(t.path), path)]
    if not same:
        known = ", ".join(t.path for t in registered) or "none"
        raise EntryNotFound(
            f"{wanted} is not a .env file keyvault keeps up to date",
            hint=f"registered: {known} (`keyvault dotenv --list`)",
        )
    now = kv.now_iso()

    def forget_all(doc: VaultDoc) -> ExportTarget:
        # every spelling of the file (an older keyvault registered `Proj/.env` and
        # `proj/.env` on a case-insensitive disk apart): one left would keep rewriting it
        forgotten = [doc.forget_export(spelling, at=now) for spelling in same]
        return forgotten[0]

    return kv.transact(forget_all)


def _same_file(registered: Path, given: Path) -> bool:
    """Whether two paths name one file; by their resolved form when one of them is gone."""
    try:
        return registered.samefile(given)
    except OSError:
        return registered.resolve() == given.resolve()


def remember_dotenv(kv: Keyvault, project: str | None, path: Path) -> bool:
    """Register the .env file at `path` to `project` (moving it from another project), so
    every later change of the project's key rewrites it. True when something changed."""
    registered, now = kv.read().exports, kv.now_iso()
    target = str(path.absolute())
    if all(t.path != target for t in registered):
        # the file under another spelling (`Proj/.env` on a case-insensitive disk, a
        # symlinked folder) is the same registration, not a second project's claim on it
        target = next((t.path for t in registered if _same_file(Path(t.path), path)), target)
    if any(t.path == target and t.project == project for t in registered):
        return False
    return kv.transact(lambda doc: doc.remember_export(project, target, at=now))

"""`keyvault import`: keys found elsewhere, stored by the rules of `add`, in one save.

    readings = [read_dotenv(Path("shop/.env")), read_llm_keys(Path("keys.json"))]
    plan = import_keys(kv, readings, ImportOptions(fallback_project=ctx.project))

Each key goes through the two halves of `add` (vault/store/inventory.py): `prepare_key` (the
field checks, the key's shape, a full card number refused) and `store_key` (no key stored
twice, by the key itself, across the vault and this import; phone slots; the first key of a
project active). A key they refuse is skipped with their reason; the rest are saved in ONE
`kv.transact`, so an import is all or nothing on disk. With `dry_run` the same steps run on a
copy that is never saved. Names come from the source (folder, alias, row, channel), made
valid and unique (`shop-2`); the plan says when a name was changed.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vault.errors import DuplicateKey, InvalidValue, KeyvaultError
from vault.export.targets import SyncOutcome
from vault.model import typed
from vault.model.batch import EntryIndex
from vault.model.document import Entry, Status, VaultDoc, refuse_case_twin
from vault.model.secret import Secret
from vault.model.shapes import hide_secrets
from vault.model.validate import key_as_pasted
from vault.store.inventory import prepare_key, store_key
from vault.store.keyvault import Keyvault
from vault.store.sources import Found, NotAKey, Reading

# keys of other providers that the OpenAI shape check alone would let through
OTHER_PROVIDERS = {"sk-ant-": "an Anthropic key, not an OpenAI one"}


class ImportOptions(NamedTuple):
    """`project` (--project) wins over a folder's name but not over a source's own project
    column; `fallback_project` (.keyvault.toml, config.toml) is used when nothing says."""

    project: str | None = None
    fallback_project: str | None = None
    dry_run: bool = False

    def validate(self) -> None:
        """InvalidValue for a bad `--project`: a typo there fails the command (before the
        sources are read: pass may ask for a gpg passphrase), not every row."""
        if self.project:
            typed.check_label(self.project, "project")


class Imported(NamedTuple):
    where: str
    entry: Entry  # as it is at the end of the import
    warnings: tuple[str, ...]
    added_as: Status = Status.STANDBY  # its status when its row was stored


class Displaced(NamedTuple):
    """A key that was active (in the vault, or as a row of this import) and is standby at
    the end, because a row of the import became its project's active key."""

    name: str
    project: str | None
    where: str | None  # the row it came from; None for a key already in the vault
    by: str | None  # the project's active key at the end


class Skipped(NamedTuple):
    where: str
    name: str
    reason: str


@dataclass
class ImportPlan:
    """What an import added (or would add), skipped and found not to be keys."""

    dry_run: bool = False
    added: list[Imported] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    not_keys: list[NotAKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    synced: list[SyncOutcome] = field(default_factory=list)
    displaced: list[Displaced] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """For --json: keys masked, as everywhere."""
        return {
            "dry_run": self.dry_run,
            "added": [
                {
                    "from": a.where,
                    "name": a.entry.name,
                    "project": a.entry.project,
                    "status": a.entry.status.value,
                    "added_as": a.added_as.value,
                    "secret": a.entry.secret.masked,
                    "warnings": list(a.warnings),
                }
                for a in self.added
            ],
            "skipped": [
                {"from": s.where, "name": s.name, "reason": s.reason} for s in self.skipped
            ],
            "not_keys": [{"from": n.where, "reason": n.reason} for n in self.not_keys],
            "notes": list(self.notes),
            "displaced": [d._asdict() for d in self.displaced],
        }


class _NothingToSave(Exception):
    def __init__(self, plan: ImportPlan) -> None:
        super().__init__("nothing to save")
        self.plan = plan


def import_keys(
    kv: Keyvault,
    readings: Sequence[Reading],
    options: ImportOptions,
    *,
    rand: Callable[[int], bytes] = os.urandom,
) -> ImportPlan:
    """Plan the import of everything `readings` found and, unless `dry_run`, save it."""
    options.validate()
    found = [f for r in readings for f in r.found]
    empty = ImportPlan(
        options.dry_run,
        not_keys=[n._replace(where=_shown(n.where)) for r in readings for n in r.not_keys],
        notes=[_shown(n) for r in readings for n in r.notes],
    )
    if options.dry_run or not found:
        return _plan(kv, kv.read(), found, options, empty, rand=rand) if found else empty

    def change(doc: VaultDoc) -> ImportPlan:
        plan = _plan(kv, doc, found, options, empty, rand=rand)
        if not plan.added:
            raise _NothingToSave(plan)  # every key skipped: leave the vault file as it is
        return plan

    try:
        plan = kv.transact(change)
    except _NothingToSave as stop:
        return stop.plan
    plan.synced = list(kv.synced)
    return plan


def _plan(
    kv: Keyvault,
    doc: VaultDoc,
    found: Iterable[Found],
    options: ImportOptions,
    base: ImportPlan,
    *,
    rand: Callable[[int], bytes],
) -> ImportPlan:
    plan = ImportPlan(base.dry_run, not_keys=list(base.not_keys), notes=list(base.notes))
    at, slots = kv.now_iso(), kv.config.phone_slots
    index = EntryIndex(doc)  # one pass over the vault for the whole import, not one a row
    was_active = [e for keys in index.active.values() for e in keys]
    projects = set(doc.projects())  # with each row's project as the import adds it
    first_added: dict[Secret, Imported] = {}
    for item in map(_as_pasted, found):
        name, notes = _name_for(item, index.names)
        where = _shown(item.where, item.secret)
        try:
            _refuse_other_provider(item)
            new = prepare_key(kv, name, item.secret, _fields_for(item, options), rand=rand)
            refuse_case_twin(new.entry.project, projects)
            store_key(doc, new, at=at, phone_slots=slots, index=index)
            projects.add(new.entry.project)
        except DuplicateKey as exc:
            reason = _duplicate_reason(exc, first_added.get(item.secret))
            plan.skipped.append(Skipped(where, _shown(name, item.secret), reason))
        except KeyvaultError as exc:
            plan.skipped.append(Skipped(where, _shown(name, item.secret), exc.message))
        else:
            shown_notes = (_shown(note, item.secret) for note in notes)
            warnings = (*shown_notes, *new.warnings)
            plan.added.append(Imported(where, new.entry, warnings, new.entry.status))
            first_added.setdefault(new.entry.secret, plan.added[-1])
    plan.displaced = _displaced(plan.added, was_active, index)
    return plan


def _displaced(
    added: Sequence[Imported], was_active: Sequence[Entry], index: EntryIndex
) -> list[Displaced]:
    """The keys active before the import, or added active by a row, that a later row made
    standby: each row's status is its status at the end, so the plan says why it changed."""
    rows = {id(a.entry): a.where for a in added}
    candidates = [*was_active, *(a.entry for a in added if a.added_as is Status.ACTIVE)]
    displaced = []
    for entry in candidates:
        if entry.status is not Status.ACTIVE:
            now = index.active.get(entry.project)
            by = now[0].name if now else None
            displaced.append(Displaced(entry.name, entry.project, rows.get(id(entry)), by))
    return displaced


def _as_pasted(item: Found) -> Found:
    """The key as `add` reads one: without a byte-order mark or whitespace around it (a
    cell, an llm alias or a pass entry saved on Windows), before it is checked or compared."""
    return item._replace(secret=Secret(key_as_pasted(item.secret.reveal())))


def _shown(text: str, secret: Secret | None = None) -> str:
    """`text` from a source with keys masked: `secret` (the row's own key, whatever its
    shape) and anything key-shaped. A source can name a row by a key (an llm alias, a name
    cell, a pass path), and the report prints `where` and `name` as they are, --json too."""
    if secret is not None and len(secret.reveal()) >= 8:
        text = text.replace(secret.reveal(), secret.masked)
    return hide_secrets(text)


def _fields_for(item: Found, options: ImportOptions) -> dict[str, Any]:
    fields = dict(item.fields)
    if not fields.get("project"):
        folder = typed.make_label(item.folder_project, "") if item.folder_project else None
        project = options.project or folder or options.fallback_project
        fields.pop("project", None)
        if project:
            fields["project"] = project
    return fields


def _name_for(item: Found, taken: Set[str]) -> tuple[str, list[str]]:
    """A valid name no entry has (`taken`: the vault's names), from the source's; a line
    saying so when it had to change."""
    suggested = item.name or "imported"
    valid = typed.make_label(suggested, "imported")
    name = valid
    for number in itertools.count(2):
        if name not in taken:
            break
        name = f"{valid[:60]}-{number}"
    if name == suggested:
        return name, []
    why = f"{valid!r} is taken" if name != valid else "names hold no spaces or symbols"
    return name, [f"named {name!r}, not {suggested!r}: {why}"]


def _refuse_other_provider(item: Found) -> None:
    for prefix, what in OTHER_PROVIDERS.items():
        if item.secret.reveal().startswith(prefix):
            raise InvalidValue(what)


def _duplicate_reason(exc: DuplicateKey, earlier: Imported | None) -> str:
    """A key met twice in this import names where it was first met, not just its new name."""
    if earlier is None:
        return exc.message
    return f"the same key as {earlier.where} (imported as {earlier.entry.name!r})"


# --- reading the sources ------------------------------------------------------------------


def read_sources(sources: Sequence[str], kind: str | None) -> list[Reading]:
    """Read every source: files of `kind` (each guessed from its name and first bytes when
    None), or pass store subfolders with `kind == "pass"` (none: the whole store)."""
    from pathlib import Path  # noqa: PLC0415

    from vault.errors import UsageError  # noqa: PLC0415
    from vault.store.sources import detect  # noqa: PLC0415
    from vault.store.sources.passstore import read_pass  # noqa: PLC0415

    if kind == "pass":
        return [read_pass(s) for s in (sources or [""])]
    if not sources:
        raise UsageError(
            "name what to import", hint="keyvault import ~/code/*/.env, or --from pass openai"
        )
    readers = _readers()
    return [readers[kind or detect(Path(s))](Path(s)) for s in sources]


def _readers() -> dict[str, Callable[[Any], Reading]]:
    from vault.store.sources.dotenv import read_dotenv  # noqa: PLC0415
    from vault.store.sources.llm import read_llm_keys  # noqa: PLC0415
    from vault.store.sources.oneapi import read_oneapi  # noqa: PLC0415
    from vault.store.sources.table import read_csv, read_json  # noqa: PLC0415

    return {
        "env": read_dotenv,
        "llm": read_llm_keys,
        "csv": read_csv,
        "json": read_json,
        "oneapi": read_oneapi,
    }

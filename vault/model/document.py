"""The decrypted vault document and its invariants; pure (no I/O; times are passed in).

Every change to the document is a method here, and each records its own history event, so
no caller can change state without the history saying so. Invariants kept here:
- entry names and ids are unique; ids are 16 hex digits;
- a project has at most one `active` entry, and it is never an admin key;
- a phone verifies at most `phone_slots` keys on `add`/`edit`; removed and retired keys still
  count (OpenAI counts verifications, not live keys), and a merged vault may exceed the
  limit, which `phones` and `doctor` then flag;
- a file is an export target of one project at a time;
- a key whose secret changes loses the old key's health;
- `history` is only ever appended to; mint records move only along `MINT_TRANSITIONS`;
- the team secret chain only grows, and removing a recipient adds a secret it never saw.
The JSON form and the load-time checks live in vault/model/codec.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator, Mapping

from vault.errors import (
    DamagedVault,
    DuplicateName,
    EntryNotFound,
    InvalidValue,
    NoActiveKey,
    PolicyViolation,
)
from vault.model.entry import CREDIT_TYPED, DEFAULT_BASE_URL, Entry, Kind, Status
from vault.model.health import HealthRecord
from vault.model.phones import PhoneUsage, check_phone_room, phone_usage
from vault.model.records import (
    EMPTY,
    Action,
    Event,
    ExportKind,
    ExportTarget,
    MintRecord,
    MintState,
    PastKey,
    Phone,
    Recipient,
    Team,
)
from vault.model.team import Rand, new_team, with_fresh_secret

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from vault.model.batch import EntryIndex

__all__ = [
    "DEFAULT_BASE_URL",
    "FORMAT",
    "Entry",
    "Kind",
    "PhoneUsage",
    "Status",
    "VaultDoc",
    "did_you_mean",
    "refuse_admin",
]

FORMAT = "keyvault/1"


class VaultDoc:
    """The decrypted document: recipients, entries, history, export targets, mints, phones,
    and the team record that proves a member wrote it."""

    def __init__(
        self,
        *,
        generation: int = 0,
        recipients: list[Recipient] | None = None,
        entries: list[Entry] | None = None,
        history: list[Event] | None = None,
        exports: list[ExportTarget] | None = None,
        mints: list[MintRecord] | None = None,
        phones: list[Phone] | None = None,
        team: Team | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.generation = generation
        self.recipients = recipients if recipients is not None else []
        self.entries = entries if entries is not None else []
        self.history = history if history is not None else []
        self.exports = exports if exports is not None else []
        self.mints = mints if mints is not None else []
        self.phones = phones if phones is not None else []
        self.team = team  # None only in vaults written before keyvault had one
        self.extra = extra if extra is not None else {}  # unknown top-level keys, kept as-is

    _FIELDS = (
        "generation", "recipients", "entries", "history", "exports", "mints", "phones", "team",
    )  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VaultDoc):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in (*self._FIELDS, "extra"))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"VaultDoc(generation={self.generation}, entries={len(self.entries)})"

    # --- lookup ---------------------------------------------------------------------------

    def find(self, name: str) -> Entry:
        name = stored_form(name)
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise EntryNotFound(f"no entry named {name!r}", hint=did_you_mean(name, self.names()))

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def by_id(self, entry_id: str | None) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    def in_project(self, project: str | None) -> list[Entry]:
        return [e for e in self.entries if e.project == project]

    def active(self, project: str | None) -> Entry:
        """The project's active key, never an admin key; NoActiveKey says what to do."""
        project = stored_form(project) if project is not None else None
        for entry in self.entries:
            active = entry.status is Status.ACTIVE and entry.kind is not Kind.ADMIN
            if active and entry.project == project:
                return entry
        where = f"project {project!r}" if project else "the default project"
        if project is None and any(e.project for e in self.entries):
            where = "no project was chosen, and the default project (keys added without one)"
        if any(e.project == project for e in self.entries):
            raise NoActiveKey(
                f"{where} has no active key",
                hint="activate one with `keyvault edit NAME --status active`",
            )
        others = sorted(e.project for e in self.entries if e.status is Status.ACTIVE and e.project)
        hint = "add one with `keyvault add NAME`"
        if close := self._typo_of(project, others):  # first a project that exports, then any
            hint = close
        elif others:
            hint = (
                f"projects with an active key: {', '.join(others)}; choose one with --project,"
                " a .keyvault.toml, or default_project in config.toml"
            )
        raise NoActiveKey(f"{where} has no keys", hint=hint)

    def _typo_of(self, project: str | None, exporting: list[str]) -> str | None:
        """`did you mean …?` for a mistyped project: one that exports first, else any (a
        typo of `demo` while demo has no active key is still a typo, not a new project)."""
        if not project:
            return None
        named = sorted({e.project for e in self.entries if e.project})
        for known in (exporting, named):
            close = did_you_mean(project, known)
            if close and close.startswith("did you mean"):
                return close
        return None

    def projects(self) -> list[str | None]:
        return sorted({e.project for e in self.entries}, key=lambda p: (p is not None, p or ""))

    def require_project(self, project: str | None) -> None:
        """EntryNotFound (with "did you mean") for a project no key belongs to."""
        project = stored_form(project) if project is not None else None
        if project is None or any(e.project == project for e in self.entries):
            return
        known = [p for p in self.projects() if p]
        raise EntryNotFound(f"no project named {project!r}", hint=did_you_mean(project, known))

    # --- entries --------------------------------------------------------------------------

    def add_entry(
        self, entry: Entry, *, at: str, phone_slots: int, index: EntryIndex | None = None
    ) -> None:
        """Store a new entry (refused whole if any invariant would break). `index`: a batch's
        index of this document (vault/model/batch.py), asked instead of scanning every entry
        and told of the entry stored."""
        if index is not None:
            index.refresh(self)
        if entry.name in index.names if index else any(e.name == entry.name for e in self.entries):
            raise DuplicateName(f"an entry named {entry.name!r} already exists")
        if entry.id in index.ids if index else any(e.id == entry.id for e in self.entries):
            raise DuplicateName(f"an entry with id {entry.id} already exists")
        if entry.phone:
            check_phone_room(self, entry.phone, phone_slots, tally=index.phones if index else None)
        check_exportable(entry)  # before appending: a refused entry leaves no trace
        if entry.credit_usd is not None and entry.credit_source is None:
            entry.credit_source, entry.credit_at = CREDIT_TYPED, at
        self.entries.append(entry)
        self._event(at, Action.ADD, entry, status=entry.status.value)
        if entry.status is Status.ACTIVE:
            self._displace(entry, at, index.active.get(entry.project, []) if index else None)
        if index is not None:
            index.added(entry)

    def update_entry(
        self, name: str, changes: Mapping[str, Any], *, at: str, phone_slots: int
    ) -> Entry:
        """Apply field changes to one entry, keeping every invariant; `secret` in `changes`
        drops the old key's health (nobody has checked the new one). The history names only
        the fields whose value changed; when none did, the entry is returned as it was (the
        same object) and nothing is recorded."""
        entry = self.find(name)
        new_name = changes.get("name")
        if new_name and new_name != name and any(e.name == new_name for e in self.entries):
            raise DuplicateName(f"an entry named {new_name!r} already exists")
        new_phone = changes.get("phone")
        if new_phone and new_phone != entry.phone:
            check_phone_room(self, new_phone, phone_slots, ignore=entry)
        fields = dict(changes)
        if "secret" in fields and fields["secret"] != entry.secret:
            fields["health"] = None
        if "credit_usd" in fields and "credit_source" not in fields:
            typed = fields["credit_usd"] is not None
            fields["credit_source"] = CREDIT_TYPED if typed else None
            fields["credit_at"] = at if typed else None
        updated = entry.evolve(**fields, updated_at=at)
        changed = [
            k for k in changes if k != "updated_at" and getattr(updated, k) != getattr(entry, k)
        ]
        if not changed:  # every value as it was: no event, and `updated_at` stays
            return entry
        shown = sorted(k for k in changed if k != "kind")
        check_exportable(updated)
        self.entries[self.entries.index(entry)] = updated
        self._event(at, Action.EDIT, updated, fields=shown)
        if updated.credit_usd != entry.credit_usd:  # one credit history, whatever its source
            self._event(
                at,
                Action.CREDIT,
                updated,
                credit_usd=updated.credit_usd,
                previous=entry.credit_usd,
                source=updated.credit_source,
            )
        if updated.status is Status.ACTIVE:
            self._displace(updated, at)
        return updated

    def remove_entry(self, name: str, *, at: str) -> Entry:
        """Remove an entry; its phone keeps counting the verification."""
        entry = self.find(name)
        self.entries.remove(entry)
        if entry.phone:
            phone = self.phone(entry.phone) or Phone(entry.phone, added_at=at)
            past = (*phone.past, PastKey(entry.id, entry.name, at))
            self._put_phone(phone._replace(past=past))
        self._event(at, Action.RM, entry)
        return entry

    def rotate_to(
        self, new: Entry, *, at: str, reason: str, retire_old: bool = False
    ) -> Entry | None:
        """Make `new` its project's active key in one step; the old one becomes standby (or
        retired). Returns the key it replaced."""
        refuse_admin(new)
        old = next(
            (e for e in self.in_project(new.project) if e.status is Status.ACTIVE and e is not new),
            None,
        )
        if old is not None:
            old.status = Status.RETIRED if retire_old else Status.STANDBY
            old.updated_at = at
        new.status, new.updated_at = Status.ACTIVE, at
        self._event(
            at,
            Action.ROTATE,
            new,
            **{"from": old.name if old else None, "from_entry": old.id if old else None},
            old_status=old.status.value if old else None,
            reason=reason,
        )
        return old

    def set_status(
        self, entry: Entry, status: Status, *, at: str, action: Action, why: str
    ) -> None:
        """A status change that is a side effect (policy disable/enable, a deleted account's
        key retired); never to or from `active` (use `update_entry` or `rotate_to`)."""
        if Status.ACTIVE in (status, entry.status):
            raise PolicyViolation(f"{entry.name!r}: an active key changes only by rotation")
        entry.status, entry.updated_at = status, at
        self._event(at, action, entry, status=status.value, reason=why)

    def store_health(self, entry: Entry, record: HealthRecord, *, at: str) -> None:
        """Keep a check's result; history gets an event only when the verdict changed."""
        previous = entry.health.status.value if entry.health else None
        entry.health = record
        if previous != record.status.value:
            self._event(at, Action.CHECK, entry, status=record.status.value, previous=previous)

    def set_credit(self, entry: Entry, credit: float, *, at: str, source: str) -> None:
        """Credit from `source` (CREDIT_RELAY: a relay's balance endpoint): the entry keeps
        where and when its figure came from, and history records the change with the figure
        it replaced and that figure's own source, so a typed-in credit is never lost silently.
        """
        previous, previous_source = entry.credit_usd, entry.credit_source
        entry.credit_source, entry.credit_at = source, at
        if previous == credit:
            return
        entry.credit_usd, entry.updated_at = credit, at
        detail = {"credit_usd": credit, "previous": previous, "source": source}
        if previous_source is not None:
            detail["previous_source"] = previous_source
        self._event(at, Action.CREDIT, entry, **detail)

    def _displace(self, entry: Entry, at: str, active: list[Entry] | None = None) -> None:
        """`entry` became active: its project's other active key becomes standby. `active`:
        the project's active keys when a batch's index knows them."""
        for other in self.in_project(entry.project) if active is None else active:
            if other is not entry and other.status is Status.ACTIVE:
                other.status, other.updated_at = Status.STANDBY, at
                why = f"{entry.name} became the active key"
                self._event(at, Action.STATUS, other, status=other.status.value, reason=why)

    # --- phones ---------------------------------------------------------------------------

    def phone(self, number: str) -> Phone | None:
        return next((p for p in self.phones if p.number == number), None)

    def add_phone(self, number: str, *, at: str, note: str | None = None) -> Phone:
        """Record a spare phone before it verifies anything, so slot hints know it."""
        if self.phone(number) is not None or any(e.phone == number for e in self.entries):
            raise DuplicateName(f"phone {number} is already on file")
        phone = Phone(number, added_at=at, note=note)
        self.phones.append(phone)
        self.record(Event(at, Action.PHONE_ADD, detail={"phone": number}))
        return phone

    def _put_phone(self, phone: Phone) -> None:
        for index, known in enumerate(self.phones):
            if known.number == phone.number:
                self.phones[index] = phone
                return
        self.phones.append(phone)

    def phone_usage(self, slots: int) -> list[PhoneUsage]:
        return phone_usage(self, slots)

    # --- export targets -------------------------------------------------------------------

    def export_targets(self, project: str | None) -> list[ExportTarget]:
        return [t for t in self.exports if t.kind is ExportKind.DOTENV and t.project == project]

    def remember_export(self, project: str | None, path: str, *, at: str) -> bool:
        """Register `path` (absolute) to `project`, moving it from any other project.
        True when something changed."""
        current = next((t for t in self.exports if t.path == path), None)
        if current is not None and current.project == project:
            return False
        target = ExportTarget(ExportKind.DOTENV, project, path, added_at=at)
        if current is None:
            self.exports.append(target)
            self.record(Event(at, Action.EXPORT, project=project, detail={"path": path}))
            return True
        self.exports[self.exports.index(current)] = target
        detail = {"path": path, "from_project": current.project}
        self.record(Event(at, Action.EXPORT_MOVE, project=project, detail=detail))
        return True

    def forget_export(self, path: str, *, at: str) -> ExportTarget:
        """Stop keeping `path` (absolute) up to date; the file itself is left as it is.
        EntryNotFound when no file is registered at `path`."""
        target = next((t for t in self.exports if t.path == path), None)
        if target is None:
            raise EntryNotFound(f"{path} is not a .env file keyvault keeps up to date")
        self.exports.remove(target)
        self.record(Event(at, Action.EXPORT_FORGET, project=target.project, detail={"path": path}))
        return target

    # --- recipients -----------------------------------------------------------------------

    def add_recipient(self, recipient: Recipient, *, at: str) -> None:
        for existing in self.recipients:
            if existing.name == recipient.name:
                raise DuplicateName(f"a recipient named {recipient.name!r} already exists")
            if existing.recipient == recipient.recipient:
                raise DuplicateName(f"that public key is already recipient {existing.name!r}")
        self.recipients.append(recipient)
        detail = {"recipient": recipient.recipient}
        self.record(Event(at, Action.RECIPIENT_ADD, name=recipient.name, detail=detail))

    def remove_recipient(
        self, name: str, *, at: str, rand: Rand, keep: str | None = None
    ) -> Recipient:
        """Remove one recipient and rotate the team secret (the removed one knows the old
        secrets, never the new one); `keep` is the public key that must stay (the caller's)."""
        match = next((r for r in self.recipients if r.name == name), None)
        if match is None:
            known = [r.name for r in self.recipients]
            hint = did_you_mean(name, known, listing="keyvault recipients list")
            raise EntryNotFound(f"no recipient named {name!r}", hint=hint)
        if match.recipient == keep:
            raise PolicyViolation(
                f"{name!r} is the identity you unlocked with; removing it would lock you out"
            )
        if len(self.recipients) == 1:
            raise PolicyViolation("the vault must keep at least one recipient")
        self.recipients.remove(match)
        detail = {"recipient": match.recipient}
        self.record(Event(at, Action.RECIPIENT_RM, name=name, detail=detail))
        self.rotate_team_secret(at=at, rand=rand, reason=f"recipient {name} removed")
        return match

    # --- the team secret (vault/model/team.py) ----------------------------------------------

    def ensure_team(self, *, at: str, rand: Rand) -> bool:
        """Give a vault written before team records its first one; True when it was added."""
        if self.team is not None:
            return False
        self.team = new_team(at=at, rand=rand)
        self._team_event(at, "first save with a team record")
        return True

    def rotate_team_secret(self, *, at: str, rand: Rand, reason: str) -> None:
        """Append a fresh team secret: from now on only readers of this version know it."""
        if self.team is None:
            self.ensure_team(at=at, rand=rand)
            return
        self.team = with_fresh_secret(self.team, at=at, rand=rand)
        self._team_event(at, reason)

    def _team_event(self, at: str, reason: str) -> None:
        if self.team is not None:
            detail = {"secret": self.team.current.id, "reason": reason}
            self.record(Event(at, Action.TEAM_ROTATED, detail=detail))

    # --- mint records ---------------------------------------------------------------------

    def mint(self, rid: str) -> MintRecord:
        found = next((r for r in self.mints if r.rid == rid), None)
        if found is None:
            raise EntryNotFound(f"no mint record {rid}")
        return found

    def add_mint(self, record: MintRecord, *, at: str) -> None:
        if record.state is not MintState.INTENT or any(r.rid == record.rid for r in self.mints):
            raise PolicyViolation(f"mint {record.name}: a new mint starts as a unique intent")
        self.mints.append(record)
        self._mint_event(at, Action.MINT_INTENT, record)

    def advance_mint(
        self, rid: str, state: MintState, *, at: str, action: Action | None = None, **changes: Any
    ) -> MintRecord:
        """Move a mint to its next state (MINT_TRANSITIONS), recording `action` if given."""
        current = self.mint(rid)
        updated = current.advance(state, **changes)
        self.mints[self.mints.index(current)] = updated
        if action is not None:
            self._mint_event(at, action, updated)
        return updated

    def _mint_event(self, at: str, action: Action, record: MintRecord, **detail: Any) -> None:
        entry = self.by_id(record.entry)
        self.record(
            Event(
                at,
                action,
                entry=entry.id if entry else None,
                name=entry.name if entry else None,
                project=record.project,
                detail={"service_account": record.id, "account_name": record.name, **detail},
            )
        )

    # --- history --------------------------------------------------------------------------

    def record(self, event: Event) -> None:
        self.history.append(event)

    def _event(self, at: str, action: Action, entry: Entry, **detail: Any) -> None:
        self.record(Event(at, action, entry.id, entry.name, entry.project, detail or EMPTY))

    # --- load-time checks -----------------------------------------------------------------

    def check_invariants(self) -> None:
        """DamagedVault naming the first invariant a loaded document breaks."""
        for what, values in (("name", self.names()), ("id", [e.id for e in self.entries])):
            dupes = [v for v, c in Counter(values).items() if c > 1]
            if dupes:
                raise DamagedVault(f"entries: two entries share the {what} {dupes[0][:64]!r}")
        active = Counter(e.project for e in self.entries if e.status is Status.ACTIVE)
        doubled = [p for p, c in active.items() if c > 1]
        if doubled:
            raise DamagedVault(f"entries: two active keys in project {doubled[0]!r}")
        admin = next(
            (
                i
                for i, e in enumerate(self.entries)
                if e.kind is Kind.ADMIN and e.status is Status.ACTIVE
            ),
            None,
        )
        if admin is not None:
            raise DamagedVault(f"entries[{admin}]: an admin key cannot be active")
        paths = Counter(t.path for t in self.exports)
        if any(c > 1 for c in paths.values()):
            raise DamagedVault("exports: one file is registered twice")
        rids = Counter(r.rid for r in self.mints)
        if any(c > 1 for c in rids.values()):
            raise DamagedVault("service_accounts: two mint records share an id")
        if not self.recipients:
            raise DamagedVault("recipients: the vault lists no recipients")


def iter_entries(
    doc: VaultDoc, *, project: str | None = None, status: str | None = None
) -> Iterator[Entry]:

    for entry in doc.entries:
        if project is not None and entry.project != project:
            continue
        if status is not None and entry.status != status:
            continue
        yield entry


def check_exportable(entry: Entry) -> None:
    """Refuse an entry that is active but could never be exported (an admin key)."""
    if entry.status is Status.ACTIVE:
        refuse_admin(entry)


def refuse_admin(entry: Entry) -> None:
    """Refuse making `entry` a project's active key if it is an admin key."""
    if entry.kind is Kind.ADMIN:
        raise PolicyViolation(
            f"{entry.name!r} is an admin key: it cannot call the model API and is never a"
            " project's active key"
        )


def stored_form(text: str) -> str:
    """A name as the vault stores it: NFC (vault/model/typed.py normalises what `add` stores),
    so `show café` typed decomposed, as macOS and some input methods give it, finds `café`."""
    if text.isascii():  # most names: no normalisation, no unicodedata import on the fast path
        return text
    import unicodedata  # noqa: PLC0415

    return unicodedata.normalize("NFC", text)


def refuse_case_twin(project: str | None, projects: Collection[str | None]) -> None:
    """InvalidValue for a new project whose name differs from one of `projects` only in case
    (`Work` beside `work`): projects are told apart by their exact name, so a key added with
    that typo would silently start a second project, which `env` in the first never sees."""
    if project is None or project in projects:
        return
    folded = project.casefold()
    twin = min((p for p in projects if p and p.casefold() == folded), default=None)
    if twin is not None:
        raise InvalidValue(
            f"project {project!r} differs from the existing project {twin!r} only in case",
            hint=f"use --project {twin}",
        )


def did_you_mean(name: str, known: list[str], listing: str = "keyvault list") -> str | None:
    """A hint naming the known names closest to a mistyped one, else the command that lists
    them (None when nothing is known)."""
    import difflib  # noqa: PLC0415 - only on the error path

    # compared case-folded: `K1` is a typo of `k1` (difflib alone rates them half alike)
    folded: dict[str, list[str]] = {}
    for known_name in known:
        folded.setdefault(known_name.casefold(), []).append(known_name)
    matches = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
    close = [original for m in matches for original in folded[m]][:3]
    if close:
        return "did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"see `{listing}`" if known else None

"""The JSON inside `vault.age`: the one reader and writer of the document (spec: docs/format.md).

`loads` is strict: any field with a type, range or shape it may not have, a number JSON
cannot hold (NaN, Infinity, 1e999, a 5,000-digit integer), a lone surrogate, or a broken
invariant makes the vault "damaged" (exit 4) with one line naming the field's path, such as
`vault.age: entries[3].credit_usd is not a finite amount` — never the value, which could
be a secret. Unknown fields, at every level that has records, are kept and written back, so
a newer minor version's data survives an older keyvault. An unknown major version is its own
error (`UnsupportedFormat`), never "wrong passphrase".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from operator import attrgetter

from vault.errors import DamagedVault, UnreadableChange, UnsupportedFormat
from vault.model.document import FORMAT, VaultDoc
from vault.model.entry import Entry, Kind, Status
from vault.model.fields import (
    ENTRY_REQUIRED,
    ENTRY_RULES,
    OPTIONAL_TEXT,
    TEXT,
    WRITTEN_WHEN_SET,
    EntryPlan,
    age_recipient_value,
    e164_value,
    entry_plan,
    hex_id_value,
    label_value,
    member_value,
    text_value,
    time_value,
    whole_check,
)
from vault.model.health import HEALTH_FIELDS, HealthRecord, HealthStatus
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
    TeamSecret,
)
from vault.model.secret import Secret
from vault.model.team import team_key_value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from vault.model.fields import Check

_MAJOR: Final = 1
_MAX_GENERATION: Final = 2**53  # integers every JSON reader holds exactly
_MAX_DIGITS: Final = 30  # no field needs more; int() of 5,000 digits is slow or refused
# a lone surrogate can only come from a \uD8xx-\uDFxx escape or from CESU-style bytes
_MAYBE_SURROGATE: Final = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _may_hold_a_surrogate(data: bytes) -> bool:
    # The pattern can only match where `\u` or the byte ED is; a vault rarely holds either,
    # and `in` finds them at memchr speed where the pattern costs ~40 instructions a byte
    # (a fifth of reading a 10,000-key vault).
    if b"\\u" not in data and b"\xed" not in data:
        return False
    return _MAYBE_SURROGATE.search(data) is not None


class _Bad(Exception):
    """A field that fails its check: where, and what is wrong (never the value)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path} {problem}")


# --- writing ----------------------------------------------------------------------------


def dumps(doc: VaultDoc) -> bytes:
    """The document as stored; refuses (`UnreadableChange`) an entry `loads` would refuse,
    so no change, whatever path it took past the input checks, can lock the user out."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "generation": doc.generation,
        "recipients": [_with_extra(r._asdict()) for r in doc.recipients],
        "entries": [_readable(entry_json(e, reveal=True), i) for i, e in enumerate(doc.entries)],
        "history": [event_json(e) for e in doc.history],
        "exports": [_with_extra(t._asdict()) for t in doc.exports],
        # kept data from newer minors; it must never overwrite the fields this version owns
        **{k: v for k, v in doc.extra.items() if k not in _KNOWN},
    }
    if doc.mints:
        body["service_accounts"] = [_with_extra(r._asdict()) for r in doc.mints]
    if doc.phones:
        body["phones"] = [_phone_json(p) for p in doc.phones]
    if doc.team is not None:
        body["team"] = team_json(doc.team)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _readable(item: dict[str, Any], index: int) -> dict[str, Any]:
    # the reader's own checks (fields.py), by shape: ~1 µs an entry
    plan = entry_plan(item)
    if plan is None or not plan.values_pass(item):
        try:
            _checked_entry(item, f"entries[{index}]")
        except _Bad as bad:
            raise UnreadableChange(
                f"nothing was saved: {bad} (keyvault could not read it back)",
                hint="the vault is unchanged; please report this input as a keyvault bug",
            ) from None
    return item


def entry_json(entry: Entry, *, reveal: bool = False) -> dict[str, Any]:
    """An entry's JSON form; the secret masked unless `reveal` (the vault file reveals)."""
    out: dict[str, Any] = dict(zip(_ENTRY_FIELDS, _read_entry(entry), strict=True))
    if entry.extra:  # a newer keyvault's fields first, as they came; ours win a clash
        out = {**entry.extra, **out}
    out["secret"] = entry.secret.reveal() if reveal else entry.secret.masked
    out["kind"] = entry.kind.value
    out["status"] = entry.status.value
    out["tags"] = list(entry.tags)
    out["health"] = health_json(entry.health) if entry.health is not None else None
    for name in WRITTEN_WHEN_SET:
        if out[name] is None:
            del out[name]
    return out


def health_json(record: HealthRecord) -> dict[str, Any]:
    out = _with_extra(record._asdict())
    out["ratelimit"] = dict(record.ratelimit) if record.ratelimit is not None else None
    return out


def event_json(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {"at": event.at, "action": str(event.action)}
    if event.entry is not None:
        out.update(entry=event.entry, name=event.name, project=event.project)
    else:
        out.update({k: v for k, v in (("name", event.name), ("project", event.project)) if v})
    return {**out, **{k: v for k, v in event.detail.items() if k not in out}}


def team_json(team: Team) -> dict[str, Any]:
    """The team record as stored (it holds the secrets: only ever inside vault.age)."""
    out = _with_extra(team._asdict())
    out["secrets"] = [_with_extra(s._asdict()) for s in team.secrets]
    return out


def _phone_json(phone: Phone) -> dict[str, Any]:
    out = _with_extra(phone._asdict())
    out["past"] = [k._asdict() for k in phone.past]
    return out


def _with_extra(fields: dict[str, Any]) -> dict[str, Any]:
    extra = fields.pop("extra", EMPTY)
    return {**extra, **{k: (v.value if hasattr(v, "value") else v) for k, v in fields.items()}}


# --- reading ----------------------------------------------------------------------------


def loads(data: bytes, *, source: str = "vault.age") -> VaultDoc:
    raw = _parse_json(data, source)
    if not isinstance(raw, dict):
        raise DamagedVault(f"{source}: the decrypted document is not a keyvault document")
    check_format(raw.get("format"), source)
    try:
        if _may_hold_a_surrogate(data):
            _refuse(raw, "", _lone_surrogate, "is not valid unicode text")
        doc = _document(raw)
        doc.check_invariants()
    except _Bad as bad:
        raise DamagedVault(f"{source}: {bad}") from None
    except DamagedVault as exc:
        raise DamagedVault(f"{source}: {exc.message}") from None
    return doc


class _Odd:
    """Stands in for a number JSON cannot carry until the reader finds its path."""


_ODD: Final = _Odd()


def _parse_json(data: bytes, source: str) -> Any:
    odd: list[bool] = []

    def whole(text: str) -> Any:
        if len(text) > _MAX_DIGITS:
            odd.append(True)
            return _ODD
        return int(text)

    def finite(text: str) -> Any:
        value = float(text)
        if not math.isfinite(value):  # 1e999
            odd.append(True)
            return _ODD
        return value

    def constant(_text: str) -> Any:  # NaN, Infinity, -Infinity
        odd.append(True)
        return _ODD

    try:
        raw = json.loads(data, parse_int=whole, parse_float=finite, parse_constant=constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DamagedVault(f"{source}: the decrypted document is not JSON") from None
    if odd:
        try:
            _refuse(raw, "", lambda value: value is _ODD, "is a number JSON cannot carry")
        except _Bad as bad:
            raise DamagedVault(f"{source}: {bad}") from None
    return raw


def check_format(value: object, source: str) -> None:
    if not isinstance(value, str) or not value.startswith("keyvault/"):
        raise DamagedVault(f"{source}: not a keyvault document")
    # `MAJOR[.anything]`, MAJOR 1-9 ASCII digits: int() would choke on "²" or 5000 digits
    major = value.removeprefix("keyvault/").partition(".")[0]
    if not 0 < len(major) <= 9 or major.strip("0123456789"):
        raise DamagedVault(f"{source}: malformed format version {value[:40]!r}")
    if int(major) != _MAJOR:
        raise UnsupportedFormat(
            f"{source}: unsupported format {value[:40]}",
            hint="this vault was written by a newer keyvault: upgrade to read it",
        )


_KNOWN: Final = frozenset(
    {
        "format",
        "generation",
        "recipients",
        "entries",
        "history",
        "exports",
        "service_accounts",
        "phones",
        "team",
    }
)


def _document(raw: dict[str, Any]) -> VaultDoc:
    generation = raw.get("generation", 0)
    if type(generation) is not int or not 0 <= generation <= _MAX_GENERATION:
        raise _Bad("generation", "is not a whole number from 0 to 2^53")
    return VaultDoc(
        generation=generation,
        recipients=_list(raw, "recipients", _recipient),
        entries=_list(raw, "entries", _entry, release=True),
        history=_list(raw, "history", _event),
        exports=_dedupe_exports(_list(raw, "exports", _export)),
        mints=_list(raw, "service_accounts", _mint),
        phones=_list(raw, "phones", _phone),
        team=_team(raw["team"], "team") if "team" in raw else None,
        extra={k: v for k, v in raw.items() if k not in _KNOWN},
    )


def _list(
    raw: Mapping[str, Any], key: str, read: Callable[[Any, str], Any], *, release: bool = False
) -> list[Any]:
    items = raw.get(key, [])
    if type(items) is not list:
        raise _Bad(key, "is not a list")
    out = []
    for index, item in enumerate(items):
        path = f"{key}[{index}]"
        if type(item) is not dict:
            raise _Bad(path, "is not an object")
        out.append(read(item, path))
        if release:
            items[index] = None  # a large vault's raw dicts go as soon as they are read
    return out


def _dedupe_exports(targets: list[ExportTarget]) -> list[ExportTarget]:
    """Older keyvaults registered one file to several projects (the later won nothing: the
    file got whichever project rotated last). The most recent registration is the owner."""
    latest: dict[str, ExportTarget] = {}
    for target in targets:
        latest.pop(target.path, None)
        latest[target.path] = target
    return list(latest.values())


# --- field checks (vault/model/fields.py holds what each field may be) --------------------

_label = whole_check(TEXT, label_value)
_time = whole_check(TEXT, time_value)
_hex_id = whole_check(TEXT, hex_id_value)
_e164 = whole_check(TEXT, e164_value)
_optional_label = whole_check(OPTIONAL_TEXT, label_value)
_optional_time = whole_check(OPTIONAL_TEXT, time_value)
_optional_hex_id = whole_check(OPTIONAL_TEXT, hex_id_value)
_optional_name = whole_check(OPTIONAL_TEXT, text_value(128))  # names and ids in records
_action = whole_check(TEXT, lambda v: label_value(v) and len(v) <= 64)
_mint_state = whole_check(TEXT, member_value(MintState))
_age_recipient = whole_check(TEXT, age_recipient_value)


def _text(limit: int, *, lines: bool = False) -> Check:
    return whole_check(TEXT, text_value(limit, lines=lines))


def _optional(check: Check) -> Check:
    return lambda value: value is None or check(value)


def _field(item: Mapping[str, Any], path: str, key: str, check: Check, problem: str) -> Any:
    value = item.get(key)
    if not check(value):
        raise _Bad(f"{path}.{key}", problem)
    return value


_ENTRY_FIELDS: Final = tuple(ENTRY_RULES)
_read_entry = attrgetter(*_ENTRY_FIELDS)  # one C call for every stored field
_KINDS: Final[Mapping[str, Kind]] = {kind.value: kind for kind in Kind}
_STATUSES: Final[Mapping[str, Status]] = {status.value: status for status in Status}


def _entry(item: dict[str, Any], path: str) -> Entry:
    """An entry: its shape's plan, then the value checks the shape left (fields.py)."""
    plan = entry_plan(item)
    if plan is not None and plan.values_pass(item):
        return _make_entry(item, plan, path)
    return _checked_entry(item, path)


def _checked_entry(item: dict[str, Any], path: str) -> Entry:
    """Every rule in the writer's order: the first bad field is the one named."""
    for key, rule in ENTRY_RULES.items():
        if key not in item:
            if key in ENTRY_REQUIRED:
                raise _Bad(f"{path}.{key}", "is missing")
            continue
        if not rule.check(item[key]):
            raise _Bad(f"{path}.{key}", rule.problem)
    known = tuple(k for k in item if k in ENTRY_RULES)
    extra = tuple(k for k in item if k not in ENTRY_RULES)
    return _make_entry(item, EntryPlan((), known, extra), path)


def _make_entry(item: dict[str, Any], plan: EntryPlan, path: str) -> Entry:
    # the plan's keys, interned: Entry(**values) then matches each by identity
    values = dict(zip(plan.known, map(item.__getitem__, plan.known), strict=True))
    health = values.pop("health", None)
    return Entry(
        secret=Secret(values.pop("secret")),
        kind=_KINDS[values.pop("kind", "api")],
        status=_STATUSES[values.pop("status", "standby")],
        health=_health(health, f"{path}.health") if health is not None else None,
        extra={key: item[key] for key in plan.extra},
        **values,
    )


_HEALTH_LEGACY: Final = frozenset({"name"})  # the entry id, written by keyvault 0.1; dropped


def _health(item: dict[str, Any], path: str) -> HealthRecord:
    values: dict[str, Any] = {}
    for key, kinds in HEALTH_FIELDS.items():
        if key not in item:
            continue
        value = item[key]
        if type(value) not in kinds:
            raise _Bad(f"{path}.{key}", "has the wrong type")
        values[key] = value
    if "status" not in values or "checked_at" not in values:
        raise _Bad(path, "lacks its status or time")
    status = values.pop("status")
    known = frozenset(s.value for s in HealthStatus)
    if status not in known:
        # a newer keyvault's verdict: treat as unexpected, keep the word in `extra`
        values.setdefault("evidence", f"stored status {status[:40]!r} is not known here")
        status = HealthStatus.UNEXPECTED.value
    for key in ("latency_ms", "http_status", "models", "attempts", "consecutive_failures"):
        if key in values and values[key] is not None and not 0 <= values[key] <= 10**9:
            raise _Bad(f"{path}.{key}", "is out of range")
    for key in ("retry_after_s", "balance_usd"):
        if values.get(key) is not None and not math.isfinite(values[key]):
            raise _Bad(f"{path}.{key}", "is not finite")
    for key in ("checked_at", "last_ok_at", "retry_at"):
        if values.get(key) is not None and not _time(values[key]):
            raise _Bad(f"{path}.{key}", "is not a time")
    limits = values.get("ratelimit")
    if limits is not None and not all(type(v) in (int, float) for v in limits.values()):
        raise _Bad(f"{path}.ratelimit", "is not a table of numbers")
    extra = {k: v for k, v in item.items() if k not in HEALTH_FIELDS and k not in _HEALTH_LEGACY}
    return HealthRecord(status=HealthStatus(status), extra=extra, **values)


_EVENT_KEYS: Final = frozenset({"at", "action", "entry", "name", "project"})
_ACTIONS: Final[Mapping[str, Action]] = {a.value: a for a in Action}


def _event(item: dict[str, Any], path: str) -> Event:
    at = _field(item, path, "at", _time, "is not a time")
    action = _field(item, path, "action", _action, "is not an action")
    return Event(
        at,
        _ACTIONS.get(action, action),
        _field(item, path, "entry", _optional_hex_id, "is not an entry id"),
        _field(item, path, "name", _optional_name, "is not a name"),
        _field(item, path, "project", _optional_label, "is not a project name"),
        {k: v for k, v in item.items() if k not in _EVENT_KEYS} or EMPTY,
    )


def _recipient(item: dict[str, Any], path: str) -> Recipient:
    return Recipient(
        _field(item, path, "name", _label, "is not a name"),
        _field(item, path, "recipient", _age_recipient, "is not an age1… public key"),
        _field(item, path, "added_at", _optional_time, "is not a time"),
        _rest(item, Recipient._fields),
    )


def _path(value: Any) -> bool:
    if type(value) is not str or not 0 < len(value) <= 4096 or "\0" in value:
        return False
    return value.startswith("/") or re.match(r"[A-Za-z]:[\\/]", value) is not None


def _export(item: dict[str, Any], path: str) -> ExportTarget:
    kind = _field(item, path, "kind", _label, "is not an export kind")
    return ExportTarget(
        ExportKind(kind) if kind in {k.value for k in ExportKind} else kind,
        _field(item, path, "project", _optional_label, "is not a project name"),
        _field(item, path, "path", _path, "is not an absolute path"),
        _field(item, path, "added_at", _optional_time, "is not a time"),
        _rest(item, ExportTarget._fields),
    )


_MINT_TIMES: Final = (
    "delete_after",
    "created_at",
    "activated_at",
    "settled_at",
    "abandoned_at",
    "orphaned_at",
    "deleted_at",
)


def _mint(item: dict[str, Any], path: str) -> MintRecord:
    state = _field(item, path, "state", _mint_state, "is not a mint state")
    times = {k: _field(item, path, k, _optional_time, "is not a time") for k in _MINT_TIMES}
    return MintRecord(
        rid=_field(item, path, "rid", _hex_id, "is not 16 hex digits"),
        state=MintState(state),
        project=_field(item, path, "project", _optional_label, "is not a project name"),
        project_id=_field(item, path, "project_id", _text(128), "is not a project id"),
        admin=_field(item, path, "admin", _hex_id, "is not an entry id"),
        name=_field(item, path, "name", _label, "is not a name"),
        planned_at=_field(item, path, "planned_at", _time, "is not a time"),
        id=_field(item, path, "id", _optional_name, "is not an id"),
        key_id=_field(item, path, "key_id", _optional_name, "is not an id"),
        entry=_field(item, path, "entry", _optional_hex_id, "is not an entry id"),
        extra=_rest(item, MintRecord._fields),
        **times,
    )


def _phone(item: dict[str, Any], path: str) -> Phone:
    past = item.get("past", [])
    if type(past) is not list:
        raise _Bad(f"{path}.past", "is not a list")
    keys = []
    for index, key in enumerate(past):
        where = f"{path}.past[{index}]"
        if type(key) is not dict:
            raise _Bad(where, "is not an object")
        keys.append(
            PastKey(
                _field(key, where, "entry", _hex_id, "is not an entry id"),
                _field(key, where, "name", _text(128), "is not a name"),
                _field(key, where, "removed_at", _time, "is not a time"),
            )
        )
    return Phone(
        _field(item, path, "number", _e164, "is not an E.164 phone number"),
        _field(item, path, "added_at", _optional_time, "is not a time"),
        _field(item, path, "note", _optional(_text(2000, lines=True)), "is not text"),
        tuple(keys),
        _rest(item, Phone._fields),
    )


_team_key = whole_check(TEXT, team_key_value)
_MAX_TEAM_SECRETS: Final = 10_000  # one per member removal or merge that removed one


def _team(item: Any, path: str) -> Team:
    if type(item) is not dict:
        raise _Bad(path, "is not an object")
    raw = item.get("secrets")
    if type(raw) is not list or not 0 < len(raw) <= _MAX_TEAM_SECRETS:
        raise _Bad(f"{path}.secrets", "is not a list of 1 to 10,000 secrets")
    secrets = []
    for index, secret in enumerate(raw):
        where = f"{path}.secrets[{index}]"
        if type(secret) is not dict:
            raise _Bad(where, "is not an object")
        secrets.append(_team_secret(secret, where))
    ids = [s.id for s in secrets]
    if len(set(ids)) != len(ids):
        raise _Bad(f"{path}.secrets", "holds two secrets with one id")
    return Team(
        _field(item, path, "vault_id", _hex_id, "is not 16 hex digits"),
        tuple(secrets),
        _rest(item, Team._fields),
    )


def _team_secret(item: dict[str, Any], path: str) -> TeamSecret:
    return TeamSecret(
        _field(item, path, "id", _hex_id, "is not 16 hex digits"),
        _field(item, path, "key", _team_key, "is not a base64 team secret of 32 bytes"),
        _field(item, path, "added_at", _optional_time, "is not a time"),
        _rest(item, TeamSecret._fields),
    )


def _rest(item: Mapping[str, Any], fields: tuple[str, ...]) -> Mapping[str, Any]:
    return {k: v for k, v in item.items() if k not in fields} or EMPTY


# --- finding what the fast checks only detected ---------------------------------------------


def _refuse(raw: Any, path: str, bad: Callable[[Any], bool], problem: str) -> None:
    for where, value in _walk(raw, path):
        if bad(value):
            raise _Bad(where or "the document", problem)


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                yield f"{where}.<key>" if where else "<key>", key
                stack.append((f"{where}.{_safe_key(key)}" if where else _safe_key(key), child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
        else:
            yield where, item


def _safe_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_]{1,40}", key) else "<key>"


def _lone_surrogate(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

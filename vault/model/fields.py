"""What a stored field may hold: the checks vault/model/codec.py runs on every value it reads.

A check is split in two: the JSON types a field may have, and a check of the value once its
type is right (`label_value` assumes a str). Entries, the bulk of a vault, are read by shape:
the entries of one vault share a handful of shapes (which keys, in which order, with which
JSON types), so `entry_plan` checks a shape's types once and remembers which values still
need a look; then each entry costs only its value checks. Every check still runs on every
value that needs one: the plan only skips re-asking what the shape already answered.
Pure: no I/O.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
from operator import call

from vault.model.clock import is_time
from vault.model.entry import Kind, Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    Check = Callable[[Any], bool]
NONE: Final = type(None)

MAX_CREDIT: Final = 1e9
# Shapes checked with str methods rather than regexes: each compiled pattern costs 0.1-0.3 ms
# at import, on every `keyvault env`. Each function says the pattern it is equal to.
_HEX: Final = "0123456789abcdef"
_DIGITS: Final = "0123456789"
_BECH32: Final = "023456789acdefghjklmnpqrstuvwxyz"  # [02-9ac-hj-np-z]
# compiled on first use (re caches it): most text is printable ASCII, which needs no search,
# and the class costs ~0.35 ms to compile on every `keyvault env`
# The one list of characters metadata may not hold: vault/model/validate.py refuses them in
# what people type, with the same class, so nothing typed can make the vault unreadable.
CONTROL_CHARACTERS: Final = r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"


# --- value checks: the value already has one of the field's JSON types ------------------------


def label_value(value: str) -> bool:
    """Names, projects, providers, tags: printable one-liners (any script), no outer spaces."""
    return 0 < len(value) <= 128 and value.isprintable() and value == value.strip()


def time_value(value: str) -> bool:
    return len(value) <= 40 and is_time(value)


def date_value(value: str) -> bool:
    return len(value) == 10 and is_time(value)


def hex_id_value(value: str) -> bool:
    """`[0-9a-f]{16}`"""
    return len(value) == 16 and not value.strip(_HEX)


def e164_value(value: str) -> bool:
    """`\\+[1-9][0-9]{5,15}`"""
    return 7 <= len(value) <= 17 and value[0] == "+" and value[1] != "0" and _digits(value[1:])


def age_recipient_value(value: str) -> bool:
    """`age1[02-9ac-hj-np-z]{58}`: an age X25519 recipient (bech32)."""
    return len(value) == 62 and value.startswith("age1") and not value[4:].strip(_BECH32)


def _digits(text: str) -> bool:
    return bool(text) and not text.strip(_DIGITS)


def secret_value(value: str) -> bool:
    return 0 < len(value) <= 16384 and "\0" not in value


def amount_value(value: float) -> bool:
    return math.isfinite(value) and 0 <= value <= MAX_CREDIT


def tags_value(value: list[Any]) -> bool:
    return len(value) <= 64 and all(type(tag) is str and label_value(tag) for tag in value)


def text_value(limit: int, *, lines: bool = False) -> Check:
    """At most `limit` characters, no NUL, and (unless `lines`) no control or bidi character
    other than tab and newline."""

    def ok(value: str) -> bool:
        if len(value) > limit or "\0" in value:
            return False
        # printable ASCII holds none of the refused characters: no search needed
        return lines or (value.isascii() and value.isprintable()) or not _has_control(value)

    return ok


def _has_control(value: str) -> bool:
    return re.search(CONTROL_CHARACTERS, value) is not None


def whole_value(low: int, high: int) -> Check:
    return lambda value: low <= value <= high


def base_url_value(value: str) -> bool:
    """An http(s) URL that never sends a key across the network in clear."""
    if len(value) > 2048:
        return False
    from vault.errors import InvalidValue  # noqa: PLC0415
    from vault.model.urls import check_base_url  # noqa: PLC0415 - only for relay entries

    try:
        return check_base_url(value) == value.strip().rstrip("/")
    except InvalidValue:
        return False


def member_value(enum: Any) -> Check:
    return frozenset(m.value for m in enum).__contains__


# --- rules: types + value check, and the whole check built from them ----------------------------


class Rule:
    """A field's JSON types and the check of a value of those types (None: any value of
    them). None among the types makes the field optional: null needs no value check."""

    __slots__ = ("problem", "types", "value")

    def __init__(self, types: tuple[type, ...], value: Check | None, problem: str) -> None:
        self.types = frozenset(types)
        self.value = value
        self.problem = problem

    def check(self, value: Any) -> bool:
        if type(value) not in self.types:
            return False
        return value is None or self.value is None or self.value(value)


def whole_check(types: tuple[type, ...], value: Check | None) -> Check:
    """A full check (types and value) for the records that are not read by shape."""
    return Rule(types, value, "").check


TEXT: Final = (str,)
OPTIONAL_TEXT: Final = (str, NONE)

# entry field → rule; every stored field, in the order the writer uses (a bad entry reports
# its first bad field in this order)
ENTRY_RULES: Final[Mapping[str, Rule]] = {
    "id": Rule(TEXT, hex_id_value, "is not 16 hex digits"),
    "name": Rule(TEXT, label_value, "is not a name"),
    "secret": Rule(TEXT, secret_value, "is not a key"),
    "provider": Rule(TEXT, label_value, "is not a provider name"),
    "kind": Rule(TEXT, member_value(Kind), "is not api or admin"),
    "project": Rule(OPTIONAL_TEXT, label_value, "is not a project name"),
    "created": Rule(OPTIONAL_TEXT, date_value, "is not a date"),
    "phone": Rule(OPTIONAL_TEXT, e164_value, "is not an E.164 phone number"),
    "card": Rule(OPTIONAL_TEXT, text_value(200), "is not a card label"),
    "credit_usd": Rule((int, float, NONE), amount_value, "is not a finite amount from 0 to 1e9"),
    "credit_source": Rule(OPTIONAL_TEXT, label_value, "is not a credit source"),
    "credit_at": Rule(OPTIONAL_TEXT, time_value, "is not a time"),
    "org_id": Rule(OPTIONAL_TEXT, text_value(128), "is not an organization id"),
    "project_id": Rule(OPTIONAL_TEXT, text_value(128), "is not a project id"),
    "base_url": Rule(OPTIONAL_TEXT, base_url_value, "is not an https URL (or http on loopback)"),
    "tags": Rule((list,), tags_value, "is not a list of tags"),
    "note": Rule(OPTIONAL_TEXT, text_value(10000, lines=True), "is not text"),
    "status": Rule(TEXT, member_value(Status), "is not a status"),
    "priority": Rule((int,), whole_value(-1000, 1000), "is not a whole number from -1000 to 1000"),
    "health": Rule((dict, NONE), None, "is not an object"),
    "added_at": Rule(OPTIONAL_TEXT, time_value, "is not a time"),
    "updated_at": Rule(OPTIONAL_TEXT, time_value, "is not a time"),
}
ENTRY_REQUIRED: Final = frozenset({"id", "name", "secret"})
# fields added after keyvault/1 shipped: written only when set, so an entry that never had
# them reads back (and prints with --json) exactly as before
WRITTEN_WHEN_SET: Final = ("credit_source", "credit_at")


# --- entries by shape ---------------------------------------------------------------------------


class EntryPlan:
    """What reading an entry of one shape takes: the value checks left once its types are
    known good (`checked` keys, `checks` in the same order), its known fields and the
    unknown ones (kept in `extra`)."""

    __slots__ = ("checked", "checks", "extra", "known")

    def __init__(
        self,
        checks: tuple[tuple[str, Check], ...],
        known: tuple[str, ...],
        extra: tuple[str, ...],
    ) -> None:
        self.checked = tuple(key for key, _ in checks)
        self.checks = tuple(check for _, check in checks)
        self.known = known
        self.extra = extra

    def values_pass(self, item: Mapping[str, Any]) -> bool:
        """Whether every value this shape leaves to check passes (the loop runs in C)."""
        return all(map(call, self.checks, map(item.__getitem__, self.checked)))


Shape = tuple[tuple[str, ...], tuple[type, ...]]
_PLANS: dict[Shape, EntryPlan] = {}
_MAX_PLANS: Final = 1024  # a crafted vault could give every entry its own shape: stop there


def entry_plan(item: Mapping[str, Any]) -> EntryPlan | None:
    """The plan for `item`'s shape; None when a field has a type it may not have or a
    required one is missing (the caller then runs every check in order to name it)."""
    shape = (tuple(item), tuple(map(type, item.values())))
    plan = _PLANS.get(shape)
    if plan is None:
        plan = _plan(*shape)
        if plan is not None and len(_PLANS) < _MAX_PLANS:
            _PLANS[shape] = plan
    return plan


def _plan(keys: tuple[str, ...], types: tuple[type, ...]) -> EntryPlan | None:
    if not ENTRY_REQUIRED.issubset(keys):
        return None
    checks: list[tuple[str, Check]] = []
    known: list[str] = []
    extra: list[str] = []
    for key, kind in zip(keys, types, strict=True):
        rule = ENTRY_RULES.get(key)
        if rule is None:
            extra.append(key)
            continue
        if kind not in rule.types:
            return None
        # interned: JSON's keys are fresh strings, and Entry(**values) matches each keyword
        # against its parameters by identity first (~7 µs an entry by comparing strings)
        name = sys.intern(key)
        known.append(name)
        if kind is not NONE and rule.value is not None:
            checks.append((name, rule.value))
    return EntryPlan(tuple(checks), tuple(known), tuple(extra))

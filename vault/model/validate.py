"""Checks and normalisation for everything a user types: keys, phones, dates, cards, names.

Each function returns the normalised value or raises `InvalidValue` with a one-line message
that never contains the secret being checked. Every metadata field also refuses a secret
pasted into it (a key, an age identity, a card number): metadata is printed unmasked.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from vault.errors import InvalidValue
from vault.model.fields import CONTROL_CHARACTERS
from vault.model.shapes import hide_secrets, holds_card_number, refuse_secret_shapes
from vault.model.shapes import luhn_ok as _luhn_ok  # noqa: F401 - tests reach it here
from vault.model.urls import check_base_url, is_loopback

__all__ = ["check_base_url", "is_loopback"]  # with the checks below: where they used to live


class KeyKind(StrEnum):
    """What an OpenAI-style key is, from its prefix (see docs/openai-api.md)."""

    USER = "user"
    PROJECT = "project"
    SERVICE_ACCOUNT = "service_account"
    ADMIN = "admin"
    OTHER = "other"  # relay keys and anything else shaped `sk-…`


_KEY_PREFIXES = (  # longest first: `sk-proj-` must win over `sk-`
    ("sk-svcacct-", KeyKind.SERVICE_ACCOUNT),
    ("sk-admin-", KeyKind.ADMIN),
    ("sk-proj-", KeyKind.PROJECT),
    ("sk-", KeyKind.USER),
)
_OPENAI_KEY = re.compile(r"sk-[A-Za-z0-9_-]{20,}")
_OPENAI_MARKER = "T3BlbkFJ"  # base64 of "OpenAI", inside every key OpenAI issues
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
MARKER_WARNING = (
    f"the key lacks OpenAI's marker {_OPENAI_MARKER} (base64 of 'OpenAI', inside every key"
    " OpenAI issues): fine for a relay key, check it otherwise"
)


@dataclass(frozen=True)
class KeyCheck:
    """The result of an offline key check: the cleaned key, its kind, and warnings."""

    value: str
    kind: KeyKind
    warnings: tuple[str, ...]


def check_key(raw: str, *, provider: str = "openai") -> KeyCheck:
    """Validate a key leniently: refuse what can never work, warn on unknown shapes."""
    value = raw.strip()
    if not value:
        raise InvalidValue("the key is empty")
    if re.match(r"(?i)bearer\s", value):
        raise InvalidValue("the key starts with 'Bearer': give the key alone")
    if any(ch in value for ch in "\r\n"):
        raise InvalidValue("the key contains a line break: give exactly one key")
    if not value.isascii():
        raise InvalidValue("the key contains non-ASCII characters")
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise InvalidValue("the key contains spaces or control characters")
    if provider != "openai":
        # an admin key stays an admin key whatever provider label it was stored under
        kind = KeyKind.ADMIN if value.startswith("sk-admin-") else KeyKind.OTHER
        return KeyCheck(value, kind, ())
    if not _OPENAI_KEY.fullmatch(value):
        raise InvalidValue(
            "this is not an OpenAI key: expected 'sk-' and at least 20 letters, digits, '-' or '_'"
        )
    kind = next(kind for prefix, kind in _KEY_PREFIXES if value.startswith(prefix))
    warnings: tuple[str, ...] = ()
    if _OPENAI_MARKER not in value:
        warnings = (MARKER_WARNING,)
    return KeyCheck(value, kind, warnings)


def normalize_phone(raw: str) -> str:
    """A phone number in E.164 (`+447911123456`); it must carry its country code."""
    text = phone_as_typed(raw)
    if not text.startswith("+"):
        raise InvalidValue(
            f"phone {_show(text)} has no country code: write it as +<country><number>"
            " or 00<country><number>"
        )
    if any(ch.isalpha() for ch in text):
        # libphonenumber would turn keypad letters into digits and drop "ext. 5" silently
        raise InvalidValue(f"phone {_show(text)} contains letters: write digits only")
    import phonenumbers  # noqa: PLC0415 - large metadata; only loaded when a phone is parsed

    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise InvalidValue(f"phone {_show(text)} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue(f"phone {_show(text)} is not a valid number for its country")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def parse_date(raw: str, *, today: dt.date) -> str:
    """An ISO date (`YYYY-MM-DD`) not in the future."""
    try:
        day = dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidValue(f"date {_show(raw)} is not YYYY-MM-DD") from None
    if day > today:
        raise InvalidValue(f"date {day.isoformat()} is in the future")
    if day.year < 2015:  # OpenAI was founded in December 2015; earlier is a typo
        raise InvalidValue(f"date {day.isoformat()} is before any OpenAI key existed")
    return day.isoformat()


def check_card_label(raw: str) -> str:
    """A card label such as `WildCard ****1234`; a full card number is refused."""
    refuse_secret_shapes(raw, "card label", cards=False)  # a card number: its own message
    label = clean_text(raw, "card label", max_len=80, secrets=False)
    if holds_card_number(label):
        raise InvalidValue(
            "the card label holds a full card number: keep only a label like 'WildCard ****1234'"
        )
    return label


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def check_name(raw: str, what: str = "name") -> str:
    """Entry and project names: 1-64 of letters, digits and `._@+-`, not starting with `-`."""
    refuse_secret_shapes(raw, what)
    if not _NAME.fullmatch(raw):
        raise InvalidValue(
            f"{what} {_show(raw)} must be 1-64 letters, digits or ._@+- and start with a letter"
            " or digit"
        )
    return raw


_ID_SHAPES = {
    "org id": re.compile(r"org-[A-Za-z0-9]{6,64}"),
    "project id": re.compile(r"proj_[A-Za-z0-9]{6,64}"),
}


def check_id(raw: str, what: str) -> str:
    # not searched for card numbers: a random id can hold a Luhn-valid run of 13+ digits
    refuse_secret_shapes(raw, what, cards=False)
    value = raw.strip()
    if not _ID_SHAPES[what].fullmatch(value):
        prefix = _ID_SHAPES[what].pattern.split("[", 1)[0]
        raise InvalidValue(f"{what} {_show(value)} must look like {prefix}…")
    return value


def check_credit(raw: float | str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValue(f"credit {_show(str(raw))} is not a number") from None
    if not math.isfinite(value) or value < 0 or value > 1_000_000:
        raise InvalidValue(f"credit {_show(str(raw))} must be between 0 and 1000000 dollars")
    return round(value, 4)


# the reader's own class (bidi overrides included): a value accepted here always reads back
_CONTROL = re.compile(CONTROL_CHARACTERS)


def clean_text(raw: str, what: str, *, max_len: int = 2000, secrets: bool = True) -> str:
    """Free text (notes, labels, tags): no control characters except newline and tab, and
    (unless `secrets` is False, for a caller with its own rules) nothing secret-shaped."""
    if secrets:
        refuse_secret_shapes(raw, what)
    if _CONTROL.search(raw):
        raise InvalidValue(f"{what} contains control characters")
    if len(raw) > max_len:
        raise InvalidValue(f"{what} is longer than {max_len} characters")
    return raw.strip()


def _show(text: str, limit: int = 40) -> str:
    """Quote user input for an error message: printable, bounded, one line."""
    shown = _CONTROL.sub("?", hide_secrets(text, cards=True).replace("\n", "?"))
    return repr(shown if len(shown) <= limit else shown[:limit] + "…")


# --- input as people type it -------------------------------------------------------------
# Kept apart from the strict checks above: each takes what a person pastes or types and turns
# it into what those checks accept, or says what it changed.


def phone_as_typed(raw: str) -> str:
    """Fullwidth characters from a Chinese or Japanese input method (U+FF0B for `+`, say)
    become ASCII, and the international call prefix `00` becomes `+` (`0044 7911…` is
    `+44 7911…`)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:].lstrip()
    return text


# `$20`, `US$ 1,234.50`, `20 USD`: a number of dollars as a spreadsheet's currency format
# writes it; thousands separators only in exact groups of three (`12,50` is not guessed at)
_DOLLARS = re.compile(
    r"(?i)\s*(?:US\$|\$|USD)?\s*(?P<number>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?:USD|\$)?\s*"
)
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def credit_as_typed(raw: str) -> str:
    """A dollar amount as a spreadsheet exports it (`$1,234.50`, `20 USD`) becomes the number
    `check_credit` reads (`1234.50`); anything else is returned as it was, for it to word."""
    match = _DOLLARS.fullmatch(raw)
    if match is None:
        return raw
    number = match["number"]
    if "," in number:
        if not _GROUPED.fullmatch(number):
            return raw
        number = number.replace(",", "")
    return number


_SLASHED_DATE = re.compile(r"\s*(?P<y>[0-9]{4})([/.])(?P<m>[0-9]{1,2})\2(?P<d>[0-9]{1,2})\s*")


def date_as_typed(raw: str) -> str:
    """`2026/11/1` or `2026.11.01` (year first, as spreadsheets in China, Japan and Korea
    write a date) becomes `2026-11-01`; a day-first or month-first date is never guessed."""
    match = _SLASHED_DATE.fullmatch(raw)
    if match is None:
        return raw
    try:
        return dt.date(int(match["y"]), int(match["m"]), int(match["d"])).isoformat()
    except ValueError:  # `2026/13/01`: the error quotes what was typed
        return raw


# UTF-16 byte-order marks: a key saved by PowerShell 5's `>` (UTF-16LE) and piped in as bytes
_UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def key_as_pasted(text: str) -> str:
    """A key without what carried it here: whitespace around it (a Windows CR LF, a final
    newline, a clipboard's space or no-break space) and invisible format characters at its
    ends (the byte-order mark Notepad and PowerShell write, a zero-width space copied from a
    web page). Called where a key is read (stdin, the prompt, import sources), never by
    `check_key`: inside a key such a character is still refused."""
    start, end = 0, len(text)
    while start < end and _carrier(text[start]):
        start += 1
    while end > start and _carrier(text[end - 1]):
        end -= 1
    return text[start:end]


def _carrier(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def key_from_bytes(data: bytes) -> str:
    """A key piped in as bytes: UTF-16 when it starts with a UTF-16 byte-order mark, else
    UTF-8 (a byte that is not UTF-8 stays visible as U+FFFD, which `check_key` refuses as
    non-ASCII, never quoting it); then `key_as_pasted`."""
    if data.startswith(_UTF16_MARKS):
        text = data.decode("utf-16", "replace")
    else:
        text = data.decode("utf-8", "replace")
    return key_as_pasted(text)

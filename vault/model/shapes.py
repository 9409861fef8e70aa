"""What a secret looks like inside text, for refusing it where it does not belong.

Metadata (notes, names, tags, base URLs, card labels) is printed unmasked by `show`, `list`
and --json, and error messages quote what the user typed: a key, an age identity or a card
number pasted there must be refused (validate.py calls these for every field) or masked
(`hide_secrets`, for messages). Nothing here ever returns or quotes the secret itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from vault.errors import InvalidValue
from vault.model.secret import mask


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


_DIGIT_RUN = re.compile(r"\d+(?:[ -]+\d+)*")


def holds_card_number(label: str) -> bool:
    """True if consecutive digit groups form a 13-19 digit Luhn-valid number.

    Groups are tried as windows, so a number followed by an expiry or a year
    (`4111 1111 1111 1111 12/27`) is still found.
    """
    for run in _DIGIT_RUN.findall(label):
        groups = re.split(r"[ -]+", run)
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_ok(digits):
                    return True
    return False


# What a secret looks like in free text: an OpenAI-style key (`sk-` and 20+ key characters, so
# prose such as "sk-learn" is not one), the marker inside every key OpenAI issues, an age
# identity. Card numbers are found by holds_card_number (Luhn).
_KEY_SHAPED: Final = re.compile(
    r"sk-[A-Za-z0-9_-]{20,}|T3BlbkFJ|(?i:AGE-SECRET-KEY-1[0-9A-Z]{20,})"
)
_MIN_PASTED = 16  # shorter fragments of a key are not worth refusing a note over
PASTED_HINT: Final = (
    "a value typed on the command line is now in your shell history and was visible to ps:"
    " delete that history line, and rotate the key if it is a real one"
)


def secret_shape(text: str, *, cards: bool = True) -> str | None:
    """What secret `text` seems to hold ("an api key", "an age identity", "a card number")."""
    found = _KEY_SHAPED.search(text)
    if found:
        return "an age identity" if found.group(0).upper().startswith("AGE-") else "an api key"
    return "a card number" if cards and holds_card_number(text) else None


def refuse_secret_shapes(text: str, what: str, *, cards: bool = True) -> None:
    """Refuse a metadata value that holds a secret: metadata is shown unmasked by `show`,
    `list` and --json. The message never repeats the value."""
    kind = secret_shape(text, cards=cards)
    if kind is not None:
        raise InvalidValue(
            f"the {what} looks like it holds {kind}; nothing was saved", hint=PASTED_HINT
        )


def refuse_pasted_secret(fields: Mapping[str, object], secret: str) -> None:
    """Refuse metadata that holds `secret` itself (a relay key need not look like `sk-…`)."""
    if len(secret) < _MIN_PASTED:
        return
    for name, value in fields.items():
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(t, str) and secret in t for t in texts):
            what = name.replace("_", " ")
            raise InvalidValue(
                f"the {what} holds the key itself; nothing was saved", hint=PASTED_HINT
            )


def hide_secrets(text: str, *, cards: bool = False) -> str:
    """`text` with anything key-shaped masked (and, with `cards`, any card number), for
    messages that quote user input."""
    text = _KEY_SHAPED.sub(lambda m: mask(m.group(0)) if len(m.group(0)) > 8 else "…", text)
    if cards:
        text = _DIGIT_RUN.sub(
            lambda m: "****" if holds_card_number(m.group(0)) else m.group(0), text
        )
    return text


_NO_CARD_SEARCH = frozenset({"phone", "card", "org_id", "project_id"})


def refuse_secrets_in_fields(fields: Mapping[str, object]) -> None:
    """`refuse_secret_shapes` on every text of a field mapping (a list: each item), before
    any field's own check can quote it. Not searched for card numbers: a phone (an E.164
    number of 13-15 digits passes Luhn one time in ten), the card label (its own check
    says what a label should look like), and the org and project ids (a random
    `proj_…` id can hold a Luhn-valid run of digits; their own format check already
    refuses anything that is not an id)."""
    for name, value in fields.items():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                cards = name not in _NO_CARD_SEARCH
                refuse_secret_shapes(text, name.replace("_", " "), cards=cards)

"""Masking of secrets inside text that came back from a server.

Servers and relays echo keys in error messages: OpenAI itself shows a key half-masked, some relays
echo it whole, one-api strips the `sk-` prefix first, others cut a few characters off either end.
Every message a result keeps passes through `mask_text`, with the probe's own key named
explicitly (relay keys need not look like `sk-…`): the key whole keeps its recognisable masked
form, and any run of FRAGMENT or more of its characters anywhere in the text is masked too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from vault.model.secret import mask

# 16+ key characters after `sk-`: long enough to skip prose such as "sk-learn", short enough
# to catch every real key shape (the shortest real key has 48 after the prefix).
_SK_SHAPED: Final = re.compile(r"sk-[A-Za-z0-9_\-]{16,}")
_BEARER: Final = re.compile(r"(?i)(bearer\s+)([^\s\"',;]{8,})")
_WHITESPACE: Final = re.compile(r"\s+")
_LAST_WORD: Final = re.compile(r"\S+$")
_MIN_EXACT: Final = 8
# 12 characters of a random key are 70 bits: never prose, and too many to leave in a log
FRAGMENT: Final = 12
FRAGMENT_MASK: Final = "[masked]"
MESSAGE_LIMIT: Final = 300


def _variants(secret: str) -> list[str]:
    """The forms in which a server may echo a key: whole, and without its `sk-` prefix."""
    forms = [secret]
    if secret.startswith("sk-") and len(secret) - 3 >= _MIN_EXACT:
        forms.append(secret[3:])
    return [f for f in forms if len(f) >= _MIN_EXACT]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace the given secrets, anything key-shaped and bearer tokens by their masked form,
    then any remaining fragment of a given secret (FRAGMENT or more of its characters)."""
    given = [s for s in secrets if s]
    forms = sorted({f for s in given for f in _variants(s)}, key=len, reverse=True)
    for form in forms:
        text = text.replace(form, mask(form))
    text = _SK_SHAPED.sub(lambda m: mask(m.group(0)), text)
    text = _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    return _mask_fragments(text, given)


def _mask_fragments(text: str, secrets: list[str]) -> str:
    """Every run of `text` made of overlapping FRAGMENT-long pieces of a secret, masked."""
    spans = sorted(span for s in secrets if len(s) >= FRAGMENT for span in _runs_of(text, s))
    out, done = [], 0
    for start, end in spans:
        if end <= done:
            continue
        out += [text[done : max(start, done)], FRAGMENT_MASK]
        done = end
    return "".join([*out, text[done:]]) if spans else text


def _runs_of(text: str, secret: str) -> list[tuple[int, int]]:
    """(start, end) of each run of `text` whose every FRAGMENT-long window is in `secret`.

    One C substring search per window: this runs on every message of every key of a check,
    most of them short (a request id), so no set of the secret's pieces is built."""
    # a run of FRAGMENT or more holds a whole half-length window at a multiple of the half
    # length: a few searches rule out the usual message, which holds no piece of the key
    half = FRAGMENT // 2
    if not any(text[at : at + half] in secret for at in range(0, len(text) - half + 1, half)):
        return []
    runs, start, last = [], 0, len(text) - FRAGMENT
    while start <= last:
        if text[start : start + FRAGMENT] not in secret:
            start += 1
            continue
        end = start + FRAGMENT
        while end < len(text) and text[end - FRAGMENT + 1 : end + 1] in secret:
            end += 1
        runs.append((start, end))
        start = end
    return runs


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line, at most `limit` characters: results are shown in tables and stored in the vault."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_message(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """Mask, then clip; masking first so that clipping cannot cut a key into an unmatchable tail.
    Only what could be shown is masked (a relay's 2 MiB error page need not be): the text is
    flattened, cut at twice the limit, masked, then clipped to the limit."""
    if text is None:
        return None
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) > 2 * MESSAGE_LIMIT:
        # cut between words: a key cut short here could slip under FRAGMENT and every mask
        flat = _LAST_WORD.sub("", flat[: 2 * MESSAGE_LIMIT]) + " …"
    return clip(mask_text(flat, secrets)) or None

"""Masking of secrets inside text that came back from a server.

Servers and relays echo keys in error messages: OpenAI itself shows a key half-masked, some relays
echo it whole, one-api strips the `sk-` prefix first. Every message a result keeps passes through
`mask_text`, with the probe's own key named explicitly (relay keys need not look like `sk-…`).
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
_MIN_EXACT: Final = 8
MESSAGE_LIMIT: Final = 300


def _variants(secret: str) -> list[str]:
    """The forms in which a server may echo a key: whole, and without its `sk-` prefix."""
    forms = [secret]
    if secret.startswith("sk-") and len(secret) - 3 >= _MIN_EXACT:
        forms.append(secret[3:])
    return [f for f in forms if len(f) >= _MIN_EXACT]


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace the given secrets, anything key-shaped and bearer tokens by their masked form."""
    forms = sorted({f for s in secrets for f in _variants(s)}, key=len, reverse=True)
    for form in forms:
        text = text.replace(form, mask(form))
    text = _SK_SHAPED.sub(lambda m: mask(m.group(0)), text)
    return _BEARER.sub(lambda m: m.group(1) + mask(m.group(2)), text)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line, at most `limit` characters: results are shown in tables and stored in the vault."""
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def safe_message(text: str | None, secrets: Iterable[str] = ()) -> str | None:
    """Mask, then clip; masking first so that clipping cannot cut a key into an unmatchable tail."""
    if text is None:
        return None
    return clip(mask_text(text, secrets)) or None

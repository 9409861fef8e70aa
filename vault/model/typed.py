"""Input as people type it: names in any script, a pasted `OPENAI_API_KEY=…` line, a base URL
copied from a curl command. Each function takes what a person typed or pasted and returns what
the strict checks of vault/model/validate.py accept, or says what it changed.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from vault.errors import InvalidValue
from vault.model.validate import _show, check_base_url

_LABEL_MAX = 64
_LABEL_PUNCTUATION = frozenset("._@+-")


def _label_char(char: str) -> bool:
    # letters and digits of any script, and the combining marks some scripts need (Devanagari,
    # Thai); never spaces, control, format (bidi, zero-width) or private-use characters
    category = unicodedata.category(char)
    return category[0] in "LN" or category in ("Mn", "Mc") or char in _LABEL_PUNCTUATION


def check_label(raw: str, what: str = "name") -> str:
    """Entry, project and tag names in any script (`工作`, `café`, `work-1`), NFC-normalised so
    one name typed two ways is one name.

    Safe to type in a shell and to print: 1-64 letters, digits, marks or `._@+-`, starting with
    a letter or digit (never `-`, which would read as an option); no spaces, control, bidi or
    zero-width characters.
    """
    text = unicodedata.normalize("NFC", raw.strip())
    ok = (
        0 < len(text) <= _LABEL_MAX
        and unicodedata.category(text[0])[0] in "LN"
        and all(_label_char(char) for char in text)
    )
    if not ok:
        raise InvalidValue(
            f"{what} {_show(raw)} must be 1-64 letters (any script), digits or ._@+- and"
            " start with a letter or digit"
        )
    return text


def make_label(raw: str, fallback: str) -> str:
    """`raw` (a folder or channel name) made into a name `check_label` accepts: characters a
    name cannot hold become `-`, the start is a letter or digit; `fallback` if nothing is
    left. For names a source suggests; a name the user typed is checked, never rewritten."""
    text = "".join(c if _label_char(c) else "-" for c in unicodedata.normalize("NFC", raw))
    text = re.sub(r"-{2,}", "-", text)
    while text and unicodedata.category(text[0])[0] not in "LN":
        text = text[1:]
    return text[:_LABEL_MAX].rstrip("-") or fallback


_PASTED_ASSIGNMENT = re.compile(
    r"\s*(?:export\s+|set\s+|\$env:)?(?P<name>[A-Z_][A-Z0-9_]*)\s*[=:]\s*(?P<value>\S.*?)\s*;?\s*",
    re.DOTALL,
)


def key_from_assignment(raw: str) -> tuple[str, str | None]:
    """The key inside a pasted `OPENAI_API_KEY=sk-…` line (also `export …`, quoted, `NAME: …`
    from YAML), and the variable's name; anything else comes back unchanged with None.

    Only a variable whose name says it holds a key (`…KEY`, `…TOKEN`) counts, so a relay key
    that merely contains `=` (base64 padding) is never cut.
    """
    match = _PASTED_ASSIGNMENT.fullmatch(raw)
    if match is None or not ("KEY" in match["name"] or "TOKEN" in match["name"]):
        return raw, None
    value = match["value"]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if len(value) < 8:
        return raw, None
    return value, match["name"]


# paths an SDK appends to the base URL: a base URL ending in one was copied from a curl line
_ENDPOINTS = (
    "/chat/completions",
    "/completions",
    "/responses",
    "/embeddings",
    "/models",
    "/images/generations",
    "/audio/transcriptions",
    "/audio/speech",
)
_VERSIONED = re.compile(r"/v[0-9]+[a-z0-9]*$")


def tidy_base_url(raw: str) -> tuple[str, str | None]:
    """A base URL as people paste it: checked by `check_base_url`, then a full endpoint
    (`…/v1/chat/completions`) loses the endpoint and a bare host gets `/v1`, which the SDKs
    expect. Returns the URL and a line saying what changed, or warning about a path that does
    not end in a version (the SDKs append `/chat/completions` to it as it is)."""
    url = check_base_url(raw)
    parts = urlsplit(url)
    path, dropped = parts.path, None
    for endpoint in _ENDPOINTS:
        if path.lower().endswith(endpoint):
            path, dropped = path[: -len(endpoint)].rstrip("/"), endpoint
            break
    note = f"base url: dropped {dropped} (the SDKs add it themselves)" if dropped else None
    if path in ("", "/"):
        path = "/v1"
        what = f"dropped {dropped} and added /v1" if dropped else "added /v1"
        note = f"base url: {what}, which the SDKs expect at the end of a base URL"
    elif not _VERSIONED.search(path) and dropped is None:
        note = (
            f"base url path {_show(path)} does not end in a version such as /v1: the SDKs"
            " append /chat/completions to it as it is"
        )
    return parts._replace(path=path).geturl(), note

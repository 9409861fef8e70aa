"""`.env` files: the OPENAI_API_KEY a project uses, with the variables that go with it.

One file gives at most one key: the last OPENAI_API_KEY assignment, as every dotenv loader
reads it. OPENAI_BASE_URL (or the older OPENAI_API_BASE), OPENAI_ORG_ID (OPENAI_ORGANIZATION)
and OPENAI_PROJECT_ID beside it become its metadata. The folder names the key and is its
project unless `--project` says otherwise (`.env.production` in `shop/` is `shop-production`).
Reported as not keys: lines that are not `NAME=value`, an earlier OPENAI_API_KEY the last one
overrides, a commented-out key, and an `sk-…` value under another variable name.
"""

from __future__ import annotations

import re
from pathlib import Path

from vault.model.secret import Secret
from vault.store.sources import Found, NotAKey, Reading, read_text

KEY_VARIABLE = "OPENAI_API_KEY"
# variable → the metadata field it gives; older SDKs' names after the current ones
SIBLINGS = {
    "OPENAI_BASE_URL": "base_url",
    "OPENAI_API_BASE": "base_url",
    "OPENAI_ORG_ID": "org_id",
    "OPENAI_ORGANIZATION": "org_id",
    "OPENAI_PROJECT_ID": "project_id",
}
_ASSIGNMENT = re.compile(r"\s*(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(?P<raw>.*)")
_COMMENTED_KEY = re.compile(r"\s*#+\s*(?:export\s+)?OPENAI_API_KEY\s*=\s*\S")


def _value(raw: str) -> str | None:
    """The value of `NAME=<raw>`: quoted ('…' literal, "…" with \\n), or bare up to ` #`.
    None for an unterminated quote."""
    text = raw.strip()
    if text[:1] in ("'", '"'):
        quote = text[0]
        end = text.find(quote, 1)
        if end < 0:
            return None
        inner = text[1:end]
        return inner.replace("\\n", "\n") if quote == '"' else inner
    return re.split(r"\s+#", text, maxsplit=1)[0].strip()


def _assignments(path: Path, where: str) -> tuple[dict[str, tuple[int, str]], list[NotAKey]]:
    """Each variable's last value and its line; the lines that are not assignments."""
    values: dict[str, tuple[int, str]] = {}
    not_keys: list[NotAKey] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            if _COMMENTED_KEY.match(line):
                not_keys.append(NotAKey(f"{where}:{number}", "a commented-out OPENAI_API_KEY"))
            continue
        match = _ASSIGNMENT.fullmatch(line)
        value = _value(match["raw"]) if match else None
        if match is None or value is None:
            reason = "not NAME=value" if match is None else "a quote that is never closed"
            not_keys.append(NotAKey(f"{where}:{number}", reason))
            continue
        name = match["name"]
        if name == KEY_VARIABLE and name in values:
            overridden = values[name][0]
            not_keys.append(NotAKey(f"{where}:{overridden}", f"overridden by line {number}"))
        values[name] = (number, value)
    return values, not_keys


def _stray_keys(values: dict[str, tuple[int, str]], where: str) -> list[NotAKey]:
    return [
        NotAKey(f"{where}:{line}", f"{name} holds an sk-… value; only OPENAI_API_KEY is imported")
        for name, (line, value) in values.items()
        if name != KEY_VARIABLE and value.startswith("sk-")
    ]


def read_dotenv(path: Path) -> Reading:
    where = str(path)
    values, not_keys = _assignments(path, where)
    not_keys += _stray_keys(values, where)
    if KEY_VARIABLE not in values or not values[KEY_VARIABLE][1]:
        return Reading([], not_keys)
    line, key = values[KEY_VARIABLE]
    fields: dict[str, str] = {}
    for variable, field in SIBLINGS.items():
        if variable in values and values[variable][1] and field not in fields:
            fields[field] = values[variable][1]
    folder = path.absolute().parent.name or None
    variant = path.name.removeprefix(".env").removesuffix(".env").strip(".-_")
    name = "-".join(part for part in (folder, variant) if part) or "dotenv"
    found = Found(f"{where}:{line}", Secret(key), name, fields, folder)
    return Reading([found], not_keys)

"""Readers for `keyvault import`: each turns one kind of source into keys found and lines
that were not keys. They only read; vault/store/importing.py decides what is stored.

- `dotenv`   .env files: OPENAI_API_KEY with OPENAI_BASE_URL/ORG_ID/PROJECT_ID beside it
- `llm`      the `keys.json` of Simon Willison's `llm` (alias → key)
- `passstore` a `pass` store subtree, through the real `pass` and `gpg`
- `table`    a CSV or JSON inventory with the columns keyvault has (a spreadsheet export)
- `oneapi`   the `channels` table of a one-api / new-api SQLite database

A reader never puts a secret in a message: `where` names the file and line (or alias, pass
path, channel), `reason` says what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from vault.errors import SourceError
from vault.model.records import EMPTY
from vault.model.savedtext import decode_saved
from vault.model.secret import Secret


class Found(NamedTuple):
    """A key a reader found, with the metadata the source had for it (as typed there)."""

    where: str  # `path:line`, `keys.json [alias]`, `pass:openai/work`, `db channel 3`
    secret: Secret
    name: str | None = None  # the source's name for it; the importer makes it a valid name
    fields: Mapping[str, Any] = EMPTY
    folder_project: str | None = None  # a weak project (the .env's folder), if nothing says


class NotAKey(NamedTuple):
    """A source line (row, alias, pass entry) that holds no key to import, and why."""

    where: str
    reason: str


class Reading(NamedTuple):
    """What one reader found in one source."""

    found: list[Found]
    not_keys: list[NotAKey]
    notes: tuple[str, ...] = ()  # about the source itself (an ignored column)


KINDS = ("env", "llm", "pass", "csv", "json", "oneapi")
SQLITE_MAGIC = b"SQLite format 3\x00"


def detect(path: Path) -> str:
    """The kind of file at `path`, from its name and first bytes."""
    if path.is_dir():
        raise SourceError(
            f"{path} is a folder",
            hint="give the files (e.g. ~/code/*/.env), or a pass subfolder with --from pass",
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise SourceError(f"cannot read {path} ({(exc.strerror or '').lower()})") from None
    name = path.name.lower()
    if head.startswith(SQLITE_MAGIC):
        return "oneapi"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name == "keys.json" or (name.endswith(".json") and head.lstrip()[:1] == b"{"):
        return "llm"
    if name.endswith(".json"):
        return "json"
    return "env"


def read_text(path: Path) -> str:
    """A text file as people save it: UTF-8 (with or without a BOM), else GB18030, which
    Excel and Notepad on Chinese Windows write."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path} ({(exc.strerror or '').lower()})") from None
    try:
        return decode_saved(data)  # UTF-16 with its mark: Windows PowerShell 5's `>`
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise SourceError(f"{path} is neither UTF-8 nor GB18030 text") from None

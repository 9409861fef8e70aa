"""The channel table of a one-api / new-api relay's SQLite database (`one-api.db`).

One row per channel in `channels` (one-api's `model/channel.go`): `key`, `name`, `status`
(1 enabled, 2 disabled by hand, 3 disabled automatically), `base_url` (empty for OpenAI
itself; a relay's URL usually without `/v1`, which the importer adds and says so), `balance`
in US dollars with `balance_updated_time` (0: never read). A channel may hold several keys,
one per line (new-api's multi-key channels, one-api's batch add): each is its own entry,
named after the channel. The database is opened read-only; the relay may keep running.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vault.errors import SourceError
from vault.model.secret import Secret
from vault.store.sources import Found, NotAKey, Reading

ENABLED = 1
NEEDED = frozenset({"key"})
WANTED = ("id", "key", "name", "status", "base_url", "balance", "balance_updated_time")


def _open(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise SourceError(f"no database at {path}")
    uri = f"file:{quote(str(path.absolute()))}?mode=ro"
    try:
        return sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise SourceError(f"{path}: cannot open the database ({exc})") from None


def _rows(path: Path) -> list[dict[str, Any]]:
    connection = _open(path)
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(channels)")}
        if not columns >= NEEDED:
            raise SourceError(
                f"{path}: no one-api channels table (with a key column)",
                hint="give the one-api.db of a one-api or new-api relay",
            )
        chosen = [c for c in WANTED if c in columns]
        quoted = ", ".join(f'"{c}"' for c in chosen)  # names from our own list, not the file
        query = f"SELECT {quoted} FROM channels ORDER BY rowid"  # noqa: S608
        return [dict(zip(chosen, row, strict=True)) for row in connection.execute(query)]
    except sqlite3.Error as exc:
        raise SourceError(f"{path}: cannot read the channels table ({exc})") from None
    finally:
        connection.close()


def _fields(row: dict[str, Any]) -> dict[str, str]:
    fields = {"note": f"one-api channel {row.get('id')}"}
    if row.get("base_url"):
        fields["base_url"] = str(row["base_url"])
    if row.get("status") not in (None, ENABLED):
        fields["status"] = "disabled"
    balance, read_at = row.get("balance"), row.get("balance_updated_time")
    if isinstance(balance, int | float) and balance >= 0 and read_at:
        fields["credit_usd"] = str(balance)
    return fields


def read_oneapi(path: Path) -> Reading:
    found: list[Found] = []
    not_keys: list[NotAKey] = []
    for row in _rows(path):
        label = f"{path} channel {row.get('id')}"
        channel = str(row.get("name") or f"channel-{row.get('id')}")
        text = str(row.get("key") or "").strip()
        if text.startswith("{"):  # a cloud credential (Vertex, AWS) as JSON, not an API key
            not_keys.append(NotAKey(label, "a JSON credential, not an API key"))
            continue
        keys = [k.strip() for k in text.splitlines() if k.strip()]
        if not keys:
            not_keys.append(NotAKey(label, "a channel without a key"))
        for number, key in enumerate(keys, start=1):
            where = f"{label} key {number}" if len(keys) > 1 else label
            name = f"{channel}-{number}" if len(keys) > 1 else channel
            found.append(Found(where, Secret(key), name, _fields(row)))
    return Reading(found, not_keys)

"""A CSV or JSON inventory: the spreadsheet people keep of keys, phones and cards.

Columns are the fields keyvault has, matched case-insensitively, with `-`, spaces and `_`
alike, and a few common other names, Chinese ones included (`密钥`, `手机号`, `余额`): name,
key, project, phone, card, created, credit, base URL, note, tags, status, org id, project id,
priority, provider. The JSON form is a list of objects with the same names (`keyvault list
--json` writes one, but with masked keys: those rows are reported, not imported). CSV comes
as Excel saves it: UTF-8 with or without a BOM, or GB18030, with `,`, `;` or tabs.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vault.errors import SourceError
from vault.model.secret import Secret
from vault.store.sources import Found, NotAKey, Reading, read_text

# column name as people write it → the field it fills ("secret": the key itself)
COLUMNS = {
    "name": "name", "名称": "name", "名字": "name",
    "key": "secret", "secret": "secret", "api_key": "secret", "apikey": "secret",
    "openai_api_key": "secret", "密钥": "secret", "秘钥": "secret",
    "project": "project", "项目": "project",
    "phone": "phone", "手机": "phone", "手机号": "phone", "电话": "phone",
    "card": "card", "卡": "card", "银行卡": "card", "信用卡": "card",
    "created": "created", "created_at": "created", "创建日期": "created", "创建时间": "created",
    "credit": "credit_usd", "credit_usd": "credit_usd", "balance": "credit_usd",
    "余额": "credit_usd",
    "base_url": "base_url", "baseurl": "base_url", "openai_base_url": "base_url",
    "接口地址": "base_url",
    "note": "note", "notes": "note", "备注": "note",
    "tags": "tags", "tag": "tags", "标签": "tags",
    "status": "status", "状态": "status",
    "org_id": "org_id", "organization": "org_id",
    "project_id": "project_id",
    "priority": "priority",
    "provider": "provider",
}  # fmt: skip
# what `keyvault list --json` adds that an import has no use for: ignored without a word
OURS_ONLY = frozenset({"id", "kind", "health", "added_at", "updated_at"})


def _column(header: str) -> str:
    return header.strip().lower().replace("-", "_").replace(" ", "_")


def _rows(records: Iterable[tuple[str, Mapping[str, Any]]]) -> Reading:
    found: list[Found] = []
    not_keys: list[NotAKey] = []
    ignored: set[str] = set()
    for where, record in records:
        fields: dict[str, Any] = {}
        for header, value in record.items():
            field = COLUMNS.get(_column(str(header)))
            if field is None:
                if _column(str(header)) not in OURS_ONLY:
                    ignored.add(str(header))
            elif value not in (None, "") and field not in fields:
                fields[field] = value if isinstance(value, list) else str(value).strip()
        item = _row(where, fields)
        if isinstance(item, Found):
            found.append(item)
        else:
            not_keys.append(item)
    notes = tuple(f"ignored the column {c!r}: keyvault has no such field" for c in sorted(ignored))
    return Reading(found, not_keys, notes)


def _row(where: str, fields: dict[str, Any]) -> Found | NotAKey:
    secret = str(fields.pop("secret", "") or "")
    if not secret:
        return NotAKey(where, "no key in this row")
    if "…" in secret or "..." in secret:
        return NotAKey(where, "a masked key (sk-…abcd): the file holds no key itself")
    name = fields.pop("name", None)
    return Found(where, Secret(secret), str(name) if name else None, fields)


def read_csv(path: Path) -> Reading:
    text = read_text(path)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header or not any(COLUMNS.get(_column(h)) == "secret" for h in header):
        raise SourceError(
            f"{path}: no key column in the first row",
            hint="name the columns: name, key, project, phone, card, created, credit, base_url,"
            " note",
        )
    records: list[tuple[str, Mapping[str, Any]]] = []
    not_keys: list[NotAKey] = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            not_keys.append(NotAKey(where, f"{len(row)} cells, the header has {len(header)}"))
            continue
        records.append((where, dict(zip(header, row, strict=False))))
    reading = _rows(records)
    return reading._replace(not_keys=not_keys + reading.not_keys)


def read_json(path: Path) -> Reading:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} is not valid JSON (line {exc.lineno})") from None
    if isinstance(data, dict):
        data = data.get("entries", data.get("keys"))
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a list of objects with name, key, project, …")
    records: list[tuple[str, Mapping[str, Any]]] = []
    not_keys: list[NotAKey] = []
    for index, item in enumerate(data):
        where = f"{path} [{index}]"
        if isinstance(item, dict):
            records.append((where, item))
        else:
            not_keys.append(NotAKey(where, "not an object"))
    reading = _rows(records)
    return reading._replace(not_keys=not_keys + reading.not_keys)

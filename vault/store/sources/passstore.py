"""A `pass` store (passwordstore.org), read through the real `pass show`.

Entries are the `*.gpg` files under `$PASSWORD_STORE_DIR` (default `~/.password-store`), in the
subfolder given. `pass` convention: the first line is the secret, later `field: value` lines
are metadata. An entry whose first line is not a key but that has an `api_key:` (or `key:`)
line gives that instead. `openai/work/main-1` under the subfolder `openai` is named `main-1`,
in project `work` (unless `--project` or a `project:` line says otherwise).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from vault.errors import SourceError
from vault.model.secret import Secret
from vault.model.validate import key_as_pasted
from vault.store.sources import Found, NotAKey, Reading
from vault.store.sources.runner import ToolFailed, run_tool

# `field:` line → metadata field (lower case, `-` and spaces as `_`)
FIELDS = {
    "project": "project",
    "phone": "phone",
    "card": "card",
    "created": "created",
    "credit": "credit_usd",
    "credit_usd": "credit_usd",
    "base_url": "base_url",
    "openai_base_url": "base_url",
    "org_id": "org_id",
    "organization": "org_id",
    "project_id": "project_id",
    "tags": "tags",
    "note": "note",
}
KEY_FIELDS = ("api_key", "openai_api_key", "key")


def store_dir(environ: Mapping[str, str]) -> Path:
    given = environ.get("PASSWORD_STORE_DIR")
    return Path(given).expanduser() if given else Path.home() / ".password-store"


def entries_under(store: Path, root: str) -> list[str]:
    """The pass names (`openai/work/main-1`) at or below `root` (a folder or one entry)."""
    if not store.is_dir():
        raise SourceError(f"no pass store at {store}", hint="set PASSWORD_STORE_DIR")
    base = store.resolve()
    folder = (base / root).resolve()
    if root and (base / f"{root}.gpg").is_file():
        return [root]
    if not folder.is_dir() or not folder.is_relative_to(base):
        raise SourceError(f"no folder {root!r} in the pass store at {store}")
    names = [p.relative_to(base).with_suffix("").as_posix() for p in folder.rglob("*.gpg")]
    return sorted(names)


def _parse(text: str) -> tuple[str, dict[str, str]]:
    lines = text.splitlines()
    first = key_as_pasted(lines[0]) if lines else ""  # a file saved with a BOM is still sk-…
    fields: dict[str, str] = {}
    for line in lines[1:]:
        label, sep, value = line.partition(":")
        key = label.strip().lower().replace("-", "_").replace(" ", "_")
        if sep and value.strip() and key not in fields:
            fields[key] = value.strip()
    return first, fields


def _found(name: str, root: str, text: str) -> Found | NotAKey:
    where = f"pass:{name}"
    first, labelled = _parse(text)
    secret = first
    if not first.startswith("sk-"):
        secret = next((labelled[k] for k in KEY_FIELDS if k in labelled), "")
    if not secret:
        return NotAKey(where, "no key: the first line is not sk-… and there is no api_key: line")
    fields = {FIELDS[k]: v for k, v in labelled.items() if k in FIELDS}
    inner = Path(name).parts[len(Path(root).parts) if root else 0 :]
    folder = inner[-2] if len(inner) >= 2 else None
    return Found(where, Secret(secret), Path(name).name, fields, folder)


def read_pass(subfolder: str, *, environ: Mapping[str, str] | None = None) -> Reading:
    env = os.environ if environ is None else environ
    root = subfolder.strip("/")
    found: list[Found] = []
    not_keys: list[NotAKey] = []
    for name in entries_under(store_dir(env), root):
        try:
            text = run_tool(["pass", "show", "--", name], environ=env)
        except ToolFailed as failed:
            not_keys.append(NotAKey(f"pass:{name}", f"pass show failed: {failed.reason}"))
            continue
        item = _found(name, root if name != root else "", text)
        if isinstance(item, Found):
            found.append(item)
        else:
            not_keys.append(item)
    return Reading(found, not_keys)

"""The JSON document inside `vault.age` (spec: docs/format.md).

`{"format": "keyvault/1", "generation": N, "recipients": [...], "entries": [...],
"history": [...], "exports": [...]}`. Unknown top-level keys are kept on rewrite so an older
keyvault does not drop data a newer minor version added. An unknown major version is its own
error (`UnsupportedFormat`), never "wrong passphrase".
"""

from __future__ import annotations

import json
import re
from typing import Any

from vault.errors import DamagedVault, UnsupportedFormat
from vault.model.document import FORMAT, Entry, VaultDoc

_MAJOR = 1
_VERSION = re.compile(r"(?P<major>[0-9]{1,9})(?:\..*)?", re.DOTALL)  # minors are not ours to judge
_KNOWN = {"format", "generation", "recipients", "entries", "history", "exports"}


def dumps(doc: VaultDoc) -> bytes:
    body: dict[str, Any] = {
        "format": FORMAT,
        "generation": doc.generation,
        "recipients": doc.recipients,
        "entries": [e.to_dict(reveal=True) for e in doc.entries],
        "history": doc.history,
        "exports": doc.exports,
        # kept data from newer minors; it must never overwrite the fields this version owns
        **{k: v for k, v in doc.extra.items() if k not in _KNOWN},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(data: bytes, *, source: str = "vault.age") -> VaultDoc:
    try:
        raw = json.loads(data)  # bytes straight in: no decoded copy of a large document
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise DamagedVault(f"{source}: the decrypted document is not JSON") from None
    if not isinstance(raw, dict):
        raise DamagedVault(f"{source}: the decrypted document is not a keyvault document")
    check_format(raw.get("format"), source)
    try:
        doc = VaultDoc(
            generation=_typed(raw.get("generation", 0), int, "generation", source),
            recipients=_typed(raw.get("recipients", []), list, "recipients", source),
            entries=_entries(_typed(raw.get("entries", []), list, "entries", source)),
            history=_typed(raw.get("history", []), list, "history", source),
            exports=_typed(raw.get("exports", []), list, "exports", source),
            extra={k: v for k, v in raw.items() if k not in _KNOWN},
        )
    except DamagedVault:
        raise
    except (TypeError, ValueError, AttributeError):
        raise DamagedVault(f"{source}: the document has a malformed field") from None
    doc.check_invariants()
    return doc


def _entries(raw: list[Any]) -> list[Entry]:
    """Build entries, dropping each raw dict as soon as it is used (peak memory)."""
    entries = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise DamagedVault("vault entry is not an object")
        entries.append(Entry.from_dict(item))
        raw[index] = None
    return entries


def check_format(value: object, source: str) -> None:
    if not isinstance(value, str) or not value.startswith("keyvault/"):
        raise DamagedVault(f"{source}: not a keyvault document")
    match = _VERSION.fullmatch(value.removeprefix("keyvault/"))
    if match is None:  # ASCII digits only: int() would choke on "²" or 5000 digits
        raise DamagedVault(f"{source}: malformed format version {value[:40]!r}")
    if int(match["major"]) != _MAJOR:
        raise UnsupportedFormat(
            f"{source}: unsupported format {value[:40]}",
            hint="this vault was written by a newer keyvault: upgrade to read it",
        )


def _typed(value: Any, kind: type, name: str, source: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DamagedVault(f"{source}: field {name!r} has the wrong type")
    return value

"""The places a project's key was written to (`.env` files), kept in the vault document so
that a rotation can update every one of them."""

from __future__ import annotations

from pathlib import Path

from vault.model.document import VaultDoc
from vault.store.keyvault import Keyvault


def dotenv_targets(doc: VaultDoc, project: str | None) -> list[Path]:
    return [
        Path(e["path"])
        for e in doc.exports
        if e.get("kind") == "dotenv" and e.get("project") == project
    ]


def remember_dotenv(kv: Keyvault, project: str | None, path: Path) -> bool:
    """Record `path` for `project`; True if it was new. Saves only when something changed."""
    if str(path) in map(str, dotenv_targets(kv.read(), project)):
        return False
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        if str(path) not in map(str, dotenv_targets(doc, project)):
            doc.exports.append(
                {"kind": "dotenv", "project": project, "path": str(path), "added_at": now}
            )
            doc.record({"at": now, "action": "export", "project": project, "path": str(path)})

    kv.transact(change)
    return True

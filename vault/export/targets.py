"""Keeping every `.env` file a project was exported to in step with the project's key.

`keyvault dotenv PATH` writes a file and registers it to its project (`VaultDoc.
remember_export`); after every save that changes what a project exports (add, edit, rm,
rotate, check --rotate, mint), `vault.store.keyvault.Keyvault.transact` calls `sync` for
that project, inside the vault lock, so files are never written out of order. A save also
brings along the files that `drifted` from their project without a vault change (a new
`default_base_url` in config.toml).

A registered path comes from the vault document, which a forged or damaged vault could
fill with any path. So a file is rewritten only when it is plausibly one we wrote: a regular
file (never a symlink) owned by us, whose current `OPENAI_API_KEY` is a key of that project
(before or after the change). Anything else is skipped and reported, never overwritten.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import NamedTuple

from vault.errors import KeyvaultError
from vault.export import export_state
from vault.model.document import VaultDoc


class SyncOutcome(NamedTuple):
    """What happened to one registered file; `detail` is a short phrase, never a value."""

    path: str
    project: str | None
    ok: bool
    detail: str  # updated, unchanged, cleared, missing (skipped), would update, or why not

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


def project_keys(doc: VaultDoc, project: str | None) -> set[str]:
    """Every key of `project` in `doc`: what a file registered to it may hold today."""
    return {e.secret.reveal() for e in doc.entries if e.project == project}


def sync(
    doc: VaultDoc,
    projects: Iterable[str | None],
    known_keys: Collection[str] = (),
    *,
    dry_run: bool = False,
    default_base_url: str | None = None,
) -> list[SyncOutcome]:
    """Bring the registered files of `projects` to what each exports now; a project with no
    active key has its OPENAI_* lines removed. `known_keys` are keys the files may still
    hold from before the change (a removed or replaced key)."""
    outcomes = []
    for project in projects:
        values = export_state(doc, project, default_base_url=default_base_url)
        mine = project_keys(doc, project) | set(known_keys)
        for target in doc.export_targets(project):
            if dry_run:
                outcomes.append(SyncOutcome(target.path, project, True, "would update"))
                continue
            outcomes.append(_sync_file(Path(target.path), project, values, mine))
    return outcomes


def drifted(
    doc: VaultDoc, projects: Iterable[str | None], *, default_base_url: str | None = None
) -> list[str | None]:
    """The projects with a registered file that we may rewrite (see `_refusal`) but that
    holds other OPENAI_* values than the project exports: config.toml's default_base_url
    changed since the last sync, say, which no vault change records."""
    from vault.export import OPENAI_VARIABLES  # noqa: PLC0415
    from vault.export.dotenv import read_assignment  # noqa: PLC0415

    found = []
    for project in projects:
        values = export_state(doc, project, default_base_url=default_base_url) or {}
        keys = project_keys(doc, project)
        for target in doc.export_targets(project):
            path = Path(target.path)
            if _refusal(path, values or None, keys) is not None:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(read_assignment(data, n) != values.get(n) for n in OPENAI_VARIABLES):
                found.append(project)
                break
    return found


def _sync_file(
    path: Path, project: str | None, values: dict[str, str] | None, keys: Collection[str]
) -> SyncOutcome:
    from vault.export.dotenv import update_dotenv_file  # noqa: PLC0415

    refusal = _refusal(path, values, keys)
    if refusal is not None:
        ok = refusal == "missing (skipped)"
        return SyncOutcome(str(path), project, ok, refusal)
    try:
        result = update_dotenv_file(path, values or {}, cleared_mark=values is None)
    except (KeyvaultError, OSError) as exc:  # the outcome names the path: not twice
        return SyncOutcome(str(path), project, False, _reason(exc).removeprefix(f"{path}: "))
    if values is None:
        return SyncOutcome(str(path), project, True, "cleared (the project has no active key)")
    return SyncOutcome(str(path), project, True, "updated" if result.changed else "unchanged")


def _refusal(path: Path, values: dict[str, str] | None, keys: Collection[str]) -> str | None:
    """Why `path` must not be rewritten (or "missing (skipped)"); None when it may."""
    from vault.export.dotenv import CLEARED_MARK, read_assignment  # noqa: PLC0415

    try:
        why = _not_ours(path.lstat())
        data = b"" if why else path.read_bytes()
        current = read_assignment(data, "OPENAI_API_KEY")
    except FileNotFoundError:
        return "missing (skipped)"
    except OSError as exc:
        return _reason(exc)
    if why is None and current is not None and current not in keys:
        why = "holds a key that is not this project's; not rewritten"
    cleared_by_us = CLEARED_MARK.encode() in data
    if why is None and current is None and values is not None and not cleared_by_us:
        why = "holds no OPENAI_API_KEY keyvault wrote; not rewritten"
    return why


def _not_ours(info: os.stat_result) -> str | None:
    import stat  # noqa: PLC0415

    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link; not followed"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    uid = getattr(os, "geteuid", lambda: None)()
    if uid is not None and info.st_uid != uid:
        return f"is owned by uid {info.st_uid}, not by you"
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return str(exc)

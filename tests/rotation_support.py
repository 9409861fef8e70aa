"""Helpers shared by the check, rotation, mint and usage tests: a cheap in-process vault next
to the CLI's, so that setting up keys costs milliseconds and the command under test still runs
as a real process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conftest import CHEAP_LOG_N, PASSPHRASE

from vault.model.document import Entry, Status, VaultDoc
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store import inventory
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def open_vault(home: Path, *, clock: Any = None) -> Keyvault:
    """The vault at `home` (created on first use), unlocked with the tests' passphrase."""
    unlocker = Unlocker(settings=UnlockSettings(passphrase=Secret(PASSPHRASE)))
    kwargs = {"clock": clock} if clock is not None else {}
    kv = Keyvault(Paths(home), unlocker, **kwargs)
    if not kv.exists():
        kv.init(Secret(PASSPHRASE), log_n=CHEAP_LOG_N)
    return kv


def add(kv: Keyvault, name: str, secret: str, *, activate: bool = False, **fields: Any) -> Entry:
    """Store a key; `fields` are the metadata `keyvault add` takes (project, phone, …)."""
    clean = {k: str(v) if not isinstance(v, list) else v for k, v in fields.items()}
    return inventory.add_key(kv, name, Secret(secret), clean, activate=activate).entry


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def actives(doc: VaultDoc, project: str | None) -> list[str]:
    return [e.name for e in doc.entries if e.project == project and e.status is Status.ACTIVE]


def by_name(doc: VaultDoc) -> Mapping[str, Entry]:
    return {e.name: e for e in doc.entries}


def files(root: Path) -> dict[str, bytes]:
    """Every file below `root` except the lock, to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "vault.lock"
    }

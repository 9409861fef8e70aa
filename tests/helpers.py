"""Helpers the test modules share: test keys, a CLI runner in a real subprocess, an in-process
vault beside the CLI's, and file snapshots.

Import them as `from tests.helpers import …` (tests/ is a package; conftest.py holds only
fixtures). Test keys are built at run time so no real-looking key is ever committed.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import shutil
import string
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vault.model.document import Entry, Status, VaultDoc
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store import inventory
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery staple"
CHEAP_LOG_N = 10  # scrypt cost for tests where the KDF is not the point
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

_ALPHABET = string.ascii_letters + string.digits


def make_key(prefix: str = "sk-proj-", body: int = 74, *, marker: bool = True) -> str:
    """A random key of OpenAI's shape (prefix + body + T3BlbkFJ + body)."""
    half = "".join(secrets.choice(_ALPHABET) for _ in range(body))
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(body))
    middle = "T3Blbk" + "FJ" if marker else ""
    return f"{prefix}{half}{middle}{tail}"


def require_tool(name: str) -> str:
    """Path of a system tool the test drives (age, zsh, fish, …).

    Missing on a developer's machine: the test skips and says so. Missing in CI (the `CI`
    variable is set, as .ci/run and every hosted CI do): the test fails, so that a missing
    install step can never pass as a green run.
    """
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is required in CI but not installed (see .ci/run)")
    pytest.skip(f"{name} not installed (apt-get install {name}; CI fails instead)")


# --- the CLI as a real process --------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Cli:
    """Runs `python -m vault` as a real process, with no terminal, in an isolated home."""

    home: Path
    env: dict[str, str]

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> Result:
        merged = {**self.env, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "vault", *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=merged,
            cwd=cwd,
            timeout=timeout,
            start_new_session=True,  # no controlling terminal: prompts must fail, not hang
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, **kw: object) -> Result:
        result = self(*args, **kw)  # type: ignore[arg-type]
        assert result.code == 0, f"{args}: exit {result.code}\n{result.err}"
        return result

    def add(self, name: str, key: str | None = None, *args: str) -> str:
        key = key or make_key()
        self.ok("add", name, *args, input=key)
        return key


def base_env(home: Path, runtime: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "HOME", "XDG_STATE_HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        KEYVAULT_HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def make_cli(home: Path, runtime: Path) -> Cli:
    """A CLI runner for the vault at `home`; the passphrase comes from the environment."""
    return Cli(home, {**base_env(home, runtime), "KEYVAULT_PASSPHRASE": PASSPHRASE})


# --- an in-process vault beside the CLI's ---------------------------------------------------


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def open_vault(home: Path, **keyvault_args: Any) -> Keyvault:
    """The vault at `home` (created with cheap scrypt on first use), unlocked with the tests'
    passphrase; `keyvault_args` go to Keyvault (clock, ops, lock_timeout, …).

    Setting up keys this way costs milliseconds, so the command under test can still run as
    a real process.
    """
    unlocker = Unlocker(settings=UnlockSettings(passphrase=Secret(PASSPHRASE)))
    kv = Keyvault(Paths(home), unlocker, **keyvault_args)
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


# --- proving nothing changed ----------------------------------------------------------------


def files(root: Path) -> dict[str, bytes]:
    """Every file below `root` by relative path, except the lock, to prove nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "vault.lock"
    }

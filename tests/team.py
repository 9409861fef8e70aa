"""Helpers for the team-vault tests: members with their own vault home, identity and user
folder, one bare repository on disk, the real `keyvault` CLI and the real `git`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, PASSPHRASE, Cli, Result, make_cli, make_key
from vault.model import codec
from vault.model.document import VaultDoc
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git_env(user_home: Path, name: str) -> dict[str, str]:
    """What a person's own `git` sees: their home, an author, no system config."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(user_home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": f"{name}@example.com",
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": f"{name}@example.com",
        "PYTHONPATH": os.environ.get("PYTHONPATH", str(Path(__file__).parent.parent)),
        "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
    }


def bare_repository(root: Path) -> Path:
    bare = root / "team.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    return bare


class Member:
    """One person (or machine): a vault home, a user folder, the CLI and plain git."""

    def __init__(self, root: Path, name: str, runtime: Path) -> None:
        self.name = name
        self.home = root / name
        self.user_home = root / f"{name}-user"
        self.user_home.mkdir()
        self.cli: Cli = make_cli(self.home, runtime)
        self.cli.env["HOME"] = str(self.user_home)
        self.public_key = ""

    def __call__(self, *args: str, **kw: object) -> Result:
        return self.cli(*args, **kw)  # type: ignore[arg-type]

    def ok(self, *args: str, **kw: object) -> Result:
        return self.cli.ok(*args, **kw)

    def add(self, name: str, *args: str) -> str:
        return self.cli.add(name, make_key(), *args)

    def git(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Result:
        """The person's own git in their vault home (drivers see `env` too)."""
        done = subprocess.run(
            ["git", "-C", str(self.home), *args],
            env={
                **git_env(self.user_home, self.name),
                "XDG_RUNTIME_DIR": self.cli.env["XDG_RUNTIME_DIR"],  # where `unlock` listens
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=120,
            start_new_session=True,  # no terminal: a driver must not prompt
            check=False,
        )
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return Result(done.returncode, done.stdout, done.stderr)

    def keyvault(self) -> Keyvault:
        return Keyvault(Paths(self.home), Unlocker(UnlockSettings(passphrase=Secret(PASSPHRASE))))

    def doc(self) -> VaultDoc:
        return self.keyvault().read()

    def document(self) -> bytes:
        """The plaintext document as this member reads it (for comparing members)."""
        return codec.dumps(self.doc())

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").out.strip()


def found_team(root: Path, runtime: Path, bare: Path) -> tuple[Member, Member]:
    """alice makes the team vault and pushes it; bob clones it and alice lets him in."""
    alice, bob = Member(root, "alice", runtime), Member(root, "bob", runtime)
    alice.ok("init", "--work-factor", str(CHEAP_LOG_N), "--git", "--remote", str(bare))
    cloned = bob.ok("clone", str(bare), "--work-factor", str(CHEAP_LOG_N))
    bob.public_key = next(w for w in cloned.out.split() if w.startswith("age1"))
    alice.ok("recipients", "add", "bob", bob.public_key)
    alice.ok("sync")
    joined = bob.ok("sync")
    assert "+ member bob" in joined.out, joined.out
    return alice, bob

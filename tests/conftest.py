"""Shared fixtures: a private vault home, a CLI runner in a real subprocess, test keys.

Test keys are built at run time so no real-looking key is ever committed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# the fake OpenAI server's fixtures (fake_openai, fake_openai_tls, forward_proxy, …)
pytest_plugins = ["fake_openai"]

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "correct horse battery staple"
CHEAP_LOG_N = 10  # scrypt cost for tests where the KDF is not the point

_ALPHABET = string.ascii_letters + string.digits


def make_key(prefix: str = "sk-proj-", body: int = 74, *, marker: bool = True) -> str:
    """A random key of OpenAI's shape (prefix + body + T3BlbkFJ + body)."""
    half = "".join(secrets.choice(_ALPHABET) for _ in range(body))
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(body))
    middle = "T3Blbk" + "FJ" if marker else ""
    return f"{prefix}{half}{middle}{tail}"


def require_tool(name: str) -> str:
    """Path of a system tool; skip without it, unless CI demands every tool."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("KEYVAULT_REQUIRE_VECTORS") == "1":
        pytest.fail(f"{name} is required in CI but not installed")
    pytest.skip(f"{name} not installed")


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
    ) -> Result:
        merged = {**self.env, **(env or {})}
        proc = subprocess.run(
            [sys.executable, "-m", "vault", *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env=merged,
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
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        KEYVAULT_HOME=str(home),
        XDG_RUNTIME_DIR=str(runtime),
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "kv"


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    """A private XDG_RUNTIME_DIR with a short path (unix socket paths max out near 100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="kvrt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cli(home: Path, runtime_dir: Path) -> Cli:
    """A CLI runner whose vault is not created yet; the passphrase comes from the env."""
    env = base_env(home, runtime_dir)
    env["KEYVAULT_PASSPHRASE"] = PASSPHRASE
    return Cli(home, env)


@pytest.fixture
def vault_cli(cli: Cli) -> Cli:
    """A CLI runner with an initialised vault (cheap scrypt)."""
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    return cli


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """Every file below a folder, by relative path, to prove nothing changed."""

    def take(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "vault.lock"
        }

    return take

"""Shared fixtures: a private vault home, a CLI runner in a real subprocess, file snapshots.

The helpers these fixtures build on live in tests/helpers.py; import them from there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, Cli, files, make_cli

# the fake OpenAI server's fixtures (fake_openai, fake_openai_tls, forward_proxy, …)
pytest_plugins = ["tests.fake_openai"]

# Trust pins (vault/store/trust.py) go to $XDG_STATE_HOME: one folder per test process, never
# the user's own ~/.local/state. Subprocesses inherit it (tests/helpers.py: base_env).
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="kvstate-")


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
    return make_cli(home, runtime_dir)


@pytest.fixture
def vault_cli(cli: Cli) -> Cli:
    """A CLI runner with an initialised vault (cheap scrypt)."""
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    return cli


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, bytes]]:
    """Every file below a folder, by relative path, to prove nothing changed."""
    return files

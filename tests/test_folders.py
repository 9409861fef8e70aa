"""The vault home and state folder rules (vault/store/folders.py): written out in os.path
for the hot path, and the same answer platformdirs gives for the environments users have."""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

import pytest
from platformdirs import user_data_dir

from vault.errors import ConfigError, UsageError
from vault.store.config import resolve_home
from vault.store.folders import data_home, vault_home

POSIX_ONLY = pytest.mark.skipif(sys.platform == "win32", reason="the POSIX rules")


@POSIX_ONLY
@pytest.mark.parametrize("xdg", [None, "", "relative/data", "/srv/data", "/srv/data/", " /x"])
@pytest.mark.parametrize("home", [None, "", "relative-home", "/home/alice", "/home/alice/"])
def test_the_default_home_is_platformdirs_answer(
    monkeypatch: pytest.MonkeyPatch, xdg: str | None, home: str | None
) -> None:
    for name, value in (("XDG_DATA_HOME", xdg), ("HOME", home)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert data_home(os.environ) == user_data_dir("keyvault", appauthor=False)


@POSIX_ONLY
def test_without_a_usable_home_the_password_database_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", "not/absolute")
    account_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    expected = account_home / ".local" / "share" / "keyvault"
    if sys.platform == "darwin":
        expected = account_home / "Library" / "Application Support" / "keyvault"
    assert data_home(os.environ) == str(expected)


def test_the_option_and_the_variable_come_first(tmp_path: Path) -> None:
    env = {"KEYVAULT_HOME": str(tmp_path / "from-env"), "HOME": "/nowhere"}
    assert vault_home(str(tmp_path / "opt"), env) == str(tmp_path / "opt")
    assert vault_home(None, env) == str(tmp_path / "from-env")
    # an empty KEYVAULT_HOME counts as unset; `~` is the home folder
    assert vault_home("~/v", {"HOME": "/home/bob"}) == str(Path("~/v").expanduser())
    assert vault_home(None, {"KEYVAULT_HOME": "", "XDG_DATA_HOME": "/d"}) == "/d/keyvault"


def test_a_relative_home_keeps_dotdot_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `link/..` is the link's parent, as pathlib's absolute() kept it: never collapsed
    monkeypatch.chdir(tmp_path)
    assert vault_home("link/../v", {}) == str(tmp_path / "link" / ".." / "v")
    assert resolve_home("link/../v", {}) == tmp_path / "link" / ".." / "v"


def test_bad_homes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="empty path"):
        vault_home("  ", {})
    plain = tmp_path / "file"
    plain.write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        vault_home(str(plain), {})

"""Issue 13 item 12, the smaller classes: a .env file that others could read, passphrase and
identity files that others can read, CI values the runner would read differently, and the
socket name docs/sessions.md promises. Real files, real processes.
"""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import pytest

from tests.helpers import PASSPHRASE, REPO, Cli, make_key
from vault.errors import InvalidValue
from vault.export.ci import github_env

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX modes")


# --- dotenv: a key never stays in a file others can read -----------------------------------


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_dotenv_makes_a_readable_file_private(vault_cli: Cli, tmp_path: Path, mode: int) -> None:
    vault_cli.add("work-1", None, "--project", "work")
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\n")
    env_file.chmod(mode)
    first = vault_cli.ok("dotenv", str(env_file), "--project", "work")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"was readable by other users (mode {mode:04o}); it is now 0600" in first.err
    env_file.chmod(mode)  # already up to date: still made private, not left alone
    again = vault_cli.ok("dotenv", str(env_file), "--project", "work")
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "it is now 0600" in again.err
    quiet = vault_cli.ok("dotenv", str(env_file), "--project", "work")
    assert "readable" not in quiet.err and quiet.out.startswith("unchanged")


# --- passphrase and identity files others can read -----------------------------------------


@posix_only
@pytest.mark.slow
def test_readable_unlock_files_are_warned_about(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("main", None, "--project", "demo")
    identity = vault_cli.ok("identity", "export").out
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(PASSPHRASE + "\n")
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(identity)
    cases = {
        "KEYVAULT_PASSPHRASE_FILE": passphrase_file,
        "KEYVAULT_IDENTITY_FILE": identity_file,
    }
    for variable, path in cases.items():
        env = {"KEYVAULT_PASSPHRASE": "", variable: str(path)}
        for mode, warned in ((0o644, True), (0o640, True), (0o600, False), (0o400, False)):
            path.chmod(mode)
            result = vault_cli.ok("list", env=env)
            assert "main" in result.out
            line = f"keyvault: warning: {variable} {path} is readable by other users"
            assert (line in result.err) is warned, (variable, oct(mode), result.err)
            assert PASSPHRASE not in result.err and "AGE-SECRET-KEY" not in result.err


# --- ci github: values the runner would read differently -----------------------------------


@pytest.mark.parametrize("value_tail", ["\r\nX=1", "\rinjected", "\r\n", "a\rb"])
def test_ci_github_refuses_any_carriage_return(tmp_path: Path, value_tail: str) -> None:
    env_file = tmp_path / "github_env"
    env_file.write_text("EARLIER=kept\n")
    out = io.StringIO()
    values = {
        "OPENAI_API_KEY": make_key(),
        "OPENAI_BASE_URL": "https://relay.example/v1" + value_tail,
    }
    with pytest.raises(InvalidValue, match="carriage return; nothing was written"):
        github_env(values, ["OPENAI_API_KEY"], github_env_path=env_file, out=out)
    assert env_file.read_text() == "EARLIER=kept\n" and out.getvalue() == ""


@pytest.mark.parametrize("earlier", ["X=1", "X=1\r", "X<<EOF\nmulti\nEOF"])
def test_ci_github_never_joins_an_earlier_unfinished_line(tmp_path: Path, earlier: str) -> None:
    """An earlier step wrote a last line without its LF: our heredoc starts on a line of its
    own, so the key is not parsed as an invalid line (which the runner prints)."""
    from tests.test_export_ci import raw_text, runner_parse

    env_file = tmp_path / "github_env"
    env_file.write_bytes(earlier.encode())
    key = make_key()
    github_env(
        {"OPENAI_API_KEY": key}, ["OPENAI_API_KEY"], github_env_path=env_file, out=io.StringIO()
    )
    for windows in (False, True):
        parsed = runner_parse(raw_text(env_file), windows=windows)
        assert parsed["OPENAI_API_KEY"] == key
        assert key not in "".join(v for k, v in parsed.items() if k != "OPENAI_API_KEY")


# --- docs/sessions.md names the socket as the code does -------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="sessions are POSIX only")
def test_the_documented_socket_name_is_the_real_one(vault_cli: Cli, runtime_dir: Path) -> None:
    vault_cli.ok("unlock", "--ttl", "1m")
    try:
        sockets = [p.name for p in (runtime_dir / "keyvault").iterdir()]
    finally:
        vault_cli("lock")
    assert len(sockets) == 1
    digits = len(re.fullmatch(r"agent-([0-9a-f]+)\.sock", sockets[0]).group(1))  # type: ignore[union-attr]
    doc = (REPO / "docs" / "sessions.md").read_text(encoding="utf-8")
    assert f"agent-<{digits} hex digits" in doc

"""Output on consoles that are not UTF-8: Windows writes a redirected stdout in the ANSI code
page (cp1252, cp936), and PYTHONIOENCODING can name any codec. Tables of names the code page
lacks print `?` for them; what a shell evaluates is never silently changed."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.helpers import Cli

PROJECT, NAME = "项目", "主键"


def run_in(cli: Cli, encoding: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m vault ARGS` whose stdout and stderr are written in `encoding` (bytes back)."""
    return subprocess.run(
        [sys.executable, "-m", "vault", *args],
        input=b"",
        capture_output=True,
        env={**cli.env, "PYTHONIOENCODING": encoding},
        timeout=60,
        start_new_session=True,
        check=False,
    )


@pytest.fixture
def chinese(vault_cli: Cli) -> Cli:
    vault_cli.add(NAME, None, "--project", PROJECT, "--phone", "+447911123456")
    return vault_cli


@pytest.mark.parametrize("command", [("list",), ("log",), ("show", NAME), ("phones",)])
def test_names_a_code_page_lacks_print_as_question_marks(
    chinese: Cli, command: tuple[str, ...]
) -> None:
    done = run_in(chinese, "cp1252", *command)
    assert done.returncode == 0, done.stderr.decode("cp1252", "replace")
    assert b"Traceback" not in done.stderr
    out = done.stdout.decode("cp1252")
    assert "??" in out  # 主键 / 项目: two characters cp1252 has no place for


def test_a_code_page_that_has_them_shows_them(chinese: Cli) -> None:
    done = run_in(chinese, "cp936", "list")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("cp936")
    assert NAME in out
    assert PROJECT in out


def test_an_error_handler_the_user_chose_is_kept(chinese: Cli) -> None:
    done = run_in(chinese, "cp1252:backslashreplace", "list")
    assert done.returncode == 0, done.stderr
    assert "\\u4e3b\\u952e" in done.stdout.decode("cp1252")


def test_json_is_unchanged_in_any_code_page(chinese: Cli) -> None:
    utf8 = run_in(chinese, "utf-8", "list", "--json")
    cp1252 = run_in(chinese, "cp1252", "list", "--json")
    assert cp1252.returncode == 0, cp1252.stderr
    assert cp1252.stdout == utf8.stdout


@pytest.mark.parametrize("shell", ["powershell", "fish"])
def test_env_refuses_a_value_its_output_cannot_carry(chinese: Cli, shell: str) -> None:
    """`$env:OPENAI_BASE_URL = 'https://relay.??.com/v1'` would send the key elsewhere."""
    chinese.ok("edit", NAME, "--base-url", "https://relay.例子.com/v1")
    done = run_in(chinese, "cp1252", "env", "--project", PROJECT, "--shell", shell)
    err = done.stderr.decode("cp1252")
    assert done.returncode == 1
    assert done.stdout == b""
    assert err.startswith("keyvault: error: standard output (cp1252) cannot carry")
    assert "PYTHONUTF8=1" in err
    assert "Traceback" not in err
    assert run_in(chinese, "utf-8", "env", "--project", PROJECT, "--shell", shell).returncode == 0

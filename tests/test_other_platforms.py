"""The code paths Windows takes, run here in-process: sys.platform says win32, and the POSIX-only
names (os.geteuid, os.fchmod, os.killpg, O_NOFOLLOW, fcntl, pwd, resource, AF_UNIX…) are gone,
so a call that is not guarded shows as the AttributeError or ImportError a Windows user would
get. Windows stat() makes modes up (0666 for every writable file, 0777 for folders): the tests
give the files those modes, as a Windows user's files would report."""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
import socket
import sys
from pathlib import Path

import pytest

import vault
from tests.helpers import CHEAP_LOG_N, PASSPHRASE, base_env, make_key
from tests.inprocess import Ran, run_cli

POSIX_ONLY = (
    *("geteuid", "getuid", "getgid", "getegid", "fchmod", "fchown", "killpg", "setsid"),
    *("getpgid", "mkfifo", "sync", "fork", "getloadavg"),
    *("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY", "O_DIRECTORY"),
)
POSIX_MODULES = ("fcntl", "pwd", "grp", "resource", "termios", "tty")


def _import_everything() -> None:
    """Every module imported while the real platform is in place, as a Windows interpreter
    would have imported them (click and portalocker pick their Windows halves at import)."""
    import click.termui  # noqa: F401
    import portalocker  # noqa: F401

    for module in pkgutil.walk_packages(vault.__path__, "vault."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    _import_everything()
    for name in POSIX_ONLY:
        monkeypatch.delattr(os, name, raising=False)
    monkeypatch.delattr(socket, "AF_UNIX", raising=False)
    for module in POSIX_MODULES:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setattr(sys, "platform", "win32")


class Keyvault:
    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path
        self.env = {
            **base_env(tmp_path / "kv", tmp_path / "rt"),
            "KEYVAULT_PASSPHRASE": PASSPHRASE,
            "LOCALAPPDATA": str(tmp_path / "local"),
            "USERPROFILE": str(tmp_path),
        }

    def __call__(self, *args: str, stdin: str = "") -> Ran:
        ran = run_cli(args, env=self.env, cwd=self.folder, stdin=stdin)
        assert ran.raised is None, f"{args}: {ran.raised!r}"
        return ran

    def ok(self, *args: str, stdin: str = "") -> Ran:
        ran = self(*args, stdin=stdin)
        assert ran.code == 0, f"{args}: exit {ran.code}\n{ran.err}"
        return ran


@pytest.fixture
def kv(tmp_path: Path, windows: None) -> Keyvault:
    del windows
    keyvault = Keyvault(tmp_path)
    keyvault.ok("init", "--work-factor", str(CHEAP_LOG_N))
    keyvault.ok("add", "k1", "--project", "p", "--phone", "+447911123456", stdin=make_key())
    return keyvault


def _as_windows_reports(*paths: Path) -> None:
    for path in paths:
        path.chmod(0o777 if path.is_dir() else 0o666)


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("show", "k1"),
        ("log",),
        ("phones",),
        ("cards",),
        ("identity",),
        ("env", "--project", "p", "--shell", "powershell"),
        ("env", "--project", "p", "--shell", "cmd"),
        ("get", "k1"),
        ("edit", "k1", "--note", "laptop"),
        ("lock",),
        ("recipients", "list"),
        ("rm", "k1", "--yes"),
    ],
)
def test_everyday_commands_take_portable_paths(kv: Keyvault, args: tuple[str, ...]) -> None:
    ran = kv.ok(*args)
    assert "Traceback" not in ran.err


def test_unlock_says_sessions_are_not_there(kv: Keyvault) -> None:
    ran = kv("unlock")
    assert ran.code == 3
    assert ran.err.startswith("keyvault: error: cached sessions need unix domain sockets")


def test_doctor_does_not_fail_every_file_for_a_mode_windows_made_up(kv: Keyvault) -> None:
    home = kv.folder / "kv"
    _as_windows_reports(home, *home.iterdir())
    ran = kv("doctor")
    permissions = [line for line in ran.out.splitlines() if "permissions" in line]
    assert [line.split()[0] for line in permissions] == ["skip"], ran.out
    assert "FAIL" not in ran.out
    assert "chmod" not in ran.out
    assert "0666" not in ran.out
    assert "ACL; not checked" in ran.out


def test_dotenv_is_not_rewritten_and_warned_about_each_time(kv: Keyvault) -> None:
    target = kv.folder / ".env"
    kv.ok("dotenv", str(target), "--project", "p")
    _as_windows_reports(target)
    again = kv.ok("dotenv", str(target), "--project", "p")
    assert "unchanged" in again.out
    assert again.err == ""


def test_output_to_a_file_is_not_called_shared(
    kv: Keyvault,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vault.cli.report import warn_if_output_is_shared

    del kv
    output = tmp_path / "key.txt"
    with output.open("w") as handle:
        _as_windows_reports(output)
        monkeypatch.setattr(sys, "stdout", handle)
        warn_if_output_is_shared("the key")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("masked", [False, True])
def test_exec_finds_a_cmd_script_as_a_windows_prompt_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, windows: None, masked: bool
) -> None:
    """CreateProcess tries `.exe` alone: `keyvault exec -- npm test` said "command not found"
    for npm.cmd. Here `tool.CMD` is a shell script, PATHEXT names `.CMD`, and the runner is
    the one Windows uses (a child whose exit code becomes ours)."""
    from vault.export import masking, process

    del windows
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "tool.CMD"
    script.write_text('#!/bin/sh\nprintf %s "$OPENAI_API_KEY" > "$1"\nexit 7\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATHEXT", os.pathsep.join((".COM", ".EXE", ".BAT", ".CMD")))
    key, out = make_key(), tmp_path / "seen"
    runner = functools.partial(masking.run_masked, secrets=[key]) if masked else None
    with pytest.raises(SystemExit) as left:
        process.exec_with_env(
            ["tool", str(out)],
            {"OPENAI_API_KEY": key},
            pristine=False,
            environ={"PATH": str(folder)},
            execvpe=runner or process._run_child,
        )
    assert left.value.code == 7
    assert out.read_text() == key

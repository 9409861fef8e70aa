"""The directory hook in real bash, zsh and fish: what it exports, and when it starts keyvault.

`keyvault` on the shells' PATH is a shim that logs each call, so every test counts the
`hook-env` runs: none in folders without a project file, one on entering a project, none
while moving inside it, one on leaving (the user's own variables come back), one when the
session starts or ends, one when the project file changes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PASSPHRASE, REPO, Cli, make_key, require_tool

SHELLS = ("bash", "zsh", "fish")


class Shell:
    """Builds one script for `shell` from steps, runs it, returns its `NAME=value` lines."""

    def __init__(self, shell: str, env: dict[str, str], log: Path) -> None:
        self.shell = shell
        self.binary = require_tool(shell)
        self.env = env
        self.log = log
        self.lines: list[str] = []
        fish = shell == "fish"
        self.lines.append(
            "keyvault hook fish | source" if fish else f'eval "$(keyvault hook {shell})"'
        )

    def prompt(self) -> Shell:
        self.lines.append("emit fish_prompt" if self.shell == "fish" else "_keyvault_hook")
        return self

    def cd(self, folder: Path | str) -> Shell:
        self.lines.append(f"cd '{folder}'")
        return self.prompt()

    def run(self, command: str) -> Shell:
        self.lines.append(command)
        return self

    def show(self, label: str, variable: str = "OPENAI_API_KEY") -> Shell:
        if self.shell == "fish":
            self.lines.append(
                f"if set -q {variable}; echo {label}=${variable}; else; echo {label}=unset; end"
            )
        else:
            self.lines.append(f'echo "{label}=${{{variable}-unset}}"')
        return self

    def calls(self, label: str) -> Shell:
        """How many times the hook has run `keyvault hook-env` so far."""
        grep = f"grep -c hook-env '{self.log}'"
        self.lines.append(
            f"echo {label}=({grep})" if self.shell == "fish" else f"echo {label}=$({grep})"
        )
        return self

    def results(self) -> dict[str, str]:
        self.log.write_text("")
        proc = subprocess.run(
            [self.binary, "-c", "\n".join(self.lines)],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            start_new_session=True,  # no terminal: the hook must never prompt
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-1000:]
        self.stderr = proc.stderr
        found = {}
        # fish's own fish_prompt handlers switch bracketed paste on and off: not ours
        for line in re.sub(r"\x1b\[\?2004[hl]", "", proc.stdout).splitlines():
            name, _, value = line.partition("=")
            found[name] = value
        return found


@pytest.fixture
def hooked(vault_cli: Cli, tmp_path: Path) -> Iterator[tuple[dict[str, str], Path, dict[str, str]]]:
    """A vault with projects `demo` and `other`, a project folder, a logging shim; yields the
    shells' environment (no passphrase: only a session opens the vault), the project folder
    and the keys."""
    keys = {"demo": make_key(), "other": make_key()}
    vault_cli.add("demo-1", keys["demo"], "--project", "demo")
    vault_cli.add(
        "other-1", keys["other"], "--project", "other", "--base-url", "https://r.example/v1"
    )
    project = tmp_path / "proj"
    (project / "sub" / "deeper").mkdir(parents=True)
    (project / ".keyvault.toml").write_text('project = "demo"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    shim = bin_dir / "keyvault"
    shim.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{sys.executable}" -m vault "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in vault_cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    passphrase = tmp_path / "passphrase"  # read by UNLOCK: never in a script's argv
    passphrase.write_text(PASSPHRASE)
    passphrase.chmod(0o600)
    env.update(PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(REPO), HOOK_LOG=str(log))
    env.update(TEST_PASSPHRASE_FILE=str(passphrase))
    yield env, project, keys
    vault_cli("lock")


def shell_for(shell: str, hooked: tuple[dict[str, str], Path, dict[str, str]]) -> Shell:
    env, _, _ = hooked
    return Shell(shell, env, Path(env["HOOK_LOG"]))


UNLOCK = 'env KEYVAULT_PASSPHRASE_FILE="$TEST_PASSPHRASE_FILE" keyvault unlock --ttl 5m >/dev/null'


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_no_process_in_folders_without_a_project_file(
    hooked: tuple[dict[str, str], Path, dict[str, str]], tmp_path: Path, shell: str
) -> None:
    plain = tmp_path / "plain" / "a" / "b"
    plain.mkdir(parents=True)
    script = shell_for(shell, hooked)
    for folder in (plain, plain.parent, "/", tmp_path, plain, "/tmp"):
        script.cd(folder).prompt()
    got = script.calls("CALLS").show("KEY").results()
    assert got == {"CALLS": "0", "KEY": "unset"}


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_enter_move_inside_leave(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    script.run("export OPENAI_API_KEY=mine OPENAI_BASE_URL=https://mine.example/v1")
    if shell == "fish":
        script.lines[-1] = (
            "set -gx OPENAI_API_KEY mine; set -gx OPENAI_BASE_URL https://mine.example/v1"
        )
    script.cd(project).calls("ENTER").show("IN").show("IN_URL", "OPENAI_BASE_URL")
    for folder in (project / "sub", project / "sub" / "deeper", project):
        script.cd(folder).prompt()
    script.calls("INSIDE")
    script.cd("/").calls("LEAVE").show("OUT").show("OUT_URL", "OPENAI_BASE_URL")
    script.cd("/tmp").cd("/").calls("AFTER")
    got = script.results()
    assert got["IN"] == keys["demo"] and got["IN_URL"] == "unset"  # the relay of mine: unset
    assert (got["ENTER"], got["INSIDE"], got["LEAVE"], got["AFTER"]) == ("1", "1", "2", "2")
    assert got["OUT"] == "mine" and got["OUT_URL"] == "https://mine.example/v1"


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_session_start_and_end_are_noticed_at_the_next_prompt(
    hooked: tuple[dict[str, str], Path, dict[str, str]], shell: str
) -> None:
    _, project, keys = hooked
    script = shell_for(shell, hooked)
    script.cd(project / "sub").calls("LOCKED").show("BEFORE")
    script.prompt().cd(project).calls("STILL")
    script.run(UNLOCK).prompt().calls("UNLOCKED").show("AFTER")
    script.prompt().cd(project / "sub").calls("QUIET")
    script.run("keyvault lock >/dev/null").prompt().calls("ENDED").show("GONE")
    got = script.results()
    assert got["BEFORE"] == "unset" and got["AFTER"] == keys["demo"] and got["GONE"] == "unset"
    counts = (got["LOCKED"], got["STILL"], got["UNLOCKED"], got["QUIET"], got["ENDED"])
    assert counts == ("1", "1", "2", "2", "3")


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_an_edited_project_file_is_read_at_the_next_change_of_folder(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    script.cd(project).show("FIRST")
    script.run(f"echo 'project = \"other\"' > '{project / '.keyvault.toml'}'")
    script.cd(project / "sub").show("SECOND").show("URL", "OPENAI_BASE_URL").calls("CALLS")
    got = script.results()
    assert got["FIRST"] == keys["demo"] and got["SECOND"] == keys["other"]
    assert got["URL"] == "https://r.example/v1" and got["CALLS"] == "2"


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_an_edited_project_file_is_read_at_the_next_prompt(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    """`env` reads the file on every run; the hook must not keep the old project until the
    user happens to change folder."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    script = shell_for(shell, hooked)
    script.cd(project / "sub").show("FIRST").prompt().calls("QUIET")
    script.run(f"echo 'project = \"other\"' > '{project / '.keyvault.toml'}'")
    script.prompt().show("SECOND").show("URL", "OPENAI_BASE_URL").calls("CALLS")
    got = script.results()
    assert got["FIRST"] == keys["demo"] and got["SECOND"] == keys["other"]
    assert got["URL"] == "https://r.example/v1"
    assert (got["QUIET"], got["CALLS"]) == ("1", "2")


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_change_to_the_vault_is_followed_at_the_next_prompt(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    """A rotation, an edit or a removal while the shell sits in the project folder: the next
    prompt exports what `env` exports, not the old key or the old relay."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    spare = make_key()
    script = shell_for(shell, hooked)
    script.cd(project).show("FIRST").prompt().calls("QUIET")
    script.run("keyvault edit demo-1 --base-url https://new.example/v1 >/dev/null").prompt()
    script.show("URL", "OPENAI_BASE_URL").calls("EDITED")
    script.run(f"printf %s {spare} | keyvault add demo-2 --project demo --activate >/dev/null")
    script.prompt().show("ROTATED").show("URL2", "OPENAI_BASE_URL").calls("ADDED")
    script.run("keyvault rm demo-2 --yes >/dev/null; keyvault rm demo-1 --yes >/dev/null")
    script.prompt().show("REMOVED").show("PROJECT", "KEYVAULT_HOOK_PROJECT")
    got = script.results()
    assert got["FIRST"] == keys["demo"] and got["QUIET"] == "1"
    assert (got["URL"], got["EDITED"]) == ("https://new.example/v1", "2")
    assert (got["ROTATED"], got["URL2"], got["ADDED"]) == (spare, "unset", "3")
    assert (got["REMOVED"], got["PROJECT"]) == ("unset", "unset")
    # no config.toml in this vault home: watching it is silent
    noise = [line for line in script.stderr.splitlines() if not line.startswith("keyvault:")]
    assert noise == [], noise


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_changed_default_base_url_is_followed_at_the_next_prompt(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    """config.toml's default_base_url is exported by `env` at once: the hook too."""
    _, project, _ = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    config = vault_cli.home / "config.toml"
    script = shell_for(shell, hooked)
    script.cd(project).show("FIRST", "OPENAI_BASE_URL").prompt().calls("QUIET")
    script.run(f"echo 'default_base_url = \"https://d.example/v1\"' > '{config}'").prompt()
    script.show("SECOND", "OPENAI_BASE_URL").prompt().calls("CALLS")
    got = script.results()
    assert (got["FIRST"], got["QUIET"]) == ("unset", "1")
    assert (got["SECOND"], got["CALLS"]) == ("https://d.example/v1", "2")


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_shell_started_by_exec_keeps_the_project_exec_chose(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, shell: str
) -> None:
    """`keyvault exec --project other -- bash` in demo's folder: the hook of the inner shell
    (its rc file) must not swap other's key for demo's, there or in any folder."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    inner = shell_for(shell, hooked)
    inner.prompt().show("HERE").show("URL", "OPENAI_BASE_URL").cd(project / "sub").show("SUB")
    script = shell_for(shell, hooked)
    script.cd(project).show("OUTER")
    quoted = "\n".join(inner.lines).replace("'", "'\\''")
    binary = require_tool(shell)
    script.run(f"keyvault exec --no-masking --project other -- {binary} -c '{quoted}'")
    got = script.results()
    assert got["OUTER"] == keys["demo"]
    assert got["HERE"] == got["SUB"] == keys["other"]
    assert got["URL"] == "https://r.example/v1"


@pytest.mark.slow
@pytest.mark.parametrize("shell", SHELLS)
def test_a_symlinked_folder_finds_the_file_python_finds(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    """Python walks up the physical folder: through a link into proj/sub, the project file
    is in proj, which the link's own path never passes."""
    _, project, keys = hooked
    vault_cli.ok("unlock", "--ttl", "5m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "link").symlink_to(project / "sub")
    script = shell_for(shell, hooked)
    script.cd(elsewhere / "link").show("IN").cd(elsewhere).show("OUT").calls("CALLS")
    got = script.results()
    assert got == {"IN": keys["demo"], "OUT": "unset", "CALLS": "2"}


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
@pytest.mark.parametrize("shell", SHELLS)
def test_a_project_file_of_another_user_exports_nothing(
    hooked: tuple[dict[str, str], Path, dict[str, str]], vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    """Python ignores a .keyvault.toml someone else owns (vault/store/context.py); the shell
    finds it, lets Python decide once, and exports nothing."""
    vault_cli.ok("unlock", "--ttl", "5m")
    shared = tmp_path / "shared"
    (shared / "inner").mkdir(parents=True)
    planted = shared / ".keyvault.toml"
    planted.write_text('project = "demo"\n')
    os.chown(planted, 65534, 65534)
    script = shell_for(shell, hooked)
    script.cd(shared).show("KEY").cd(shared / "inner").show("INNER").calls("CALLS")
    got = script.results()
    assert got == {"KEY": "unset", "INNER": "unset", "CALLS": "1"}

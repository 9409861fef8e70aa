"""Names that complete in real bash, zsh and fish, from an unlocked session only (silently
nothing, and fast, when locked); "did you mean" for commands and entries; `--vault` after
the subcommand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, REPO, Cli, make_key, require_tool

pytestmark = pytest.mark.slow  # real shells, each completion a real keyvault process

SCRIPTS = {
    "bash": """
source <(keyvault completion bash)
COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_keyvault_completion keyvault
printf '%s\\n' "${{COMPREPLY[@]}}"
""",
    "zsh": """
compdef() {{ : }}
compadd() {{ local name=${{@[-1]}}; print -rl -- ${{(P)name}} }}
_describe() {{ local name=${{@[3]}}; print -rl -- ${{(P)name}} }}
source <(keyvault completion zsh)
words=({words}); CURRENT=${{#words}}
_keyvault_completion
""",
    "fish": """
keyvault completion fish | source
complete -C "{line}"
""",
}


@pytest.fixture
def shim(tmp_path: Path) -> Path:
    """A `keyvault` on PATH running this checkout, as the completion scripts call it."""
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "keyvault"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vault "$@"\n')
    script.chmod(0o755)
    return folder


@pytest.fixture
def unlocked(vault_cli: Cli) -> Iterator[Cli]:
    vault_cli.add("main-1", None, "--project", "work")
    vault_cli.add("main-2", None, "--project", "work")
    vault_cli.add("主要", None, "--project", "工作")
    vault_cli.ok("unlock", "--ttl", "5m")
    yield vault_cli
    vault_cli("lock")


def complete(cli: Cli, shim: Path, shell: str, *words: str) -> list[str]:
    """What `shell` offers after typing `words` (the last one being completed)."""
    binary = require_tool(shell)
    quoted = " ".join(f"'{w}'" for w in words)
    script = SCRIPTS[shell].format(words=quoted, line=" ".join(words))
    env = {k: v for k, v in cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    env.update(PATH=f"{shim}:{os.environ['PATH']}", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [binary, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        start_new_session=True,  # no terminal: a prompt would fail, never hang
        check=False,
    )
    assert done.stderr == "", done.stderr
    # fish prints `name<TAB>help`, zsh's _describe `name:help`; names never hold either
    lines = done.stdout.splitlines()
    return [line.split("\t")[0].split(":")[0] for line in lines if line.strip()]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_entry_and_project_names_complete_when_unlocked(
    unlocked: Cli, shim: Path, shell: str
) -> None:
    assert complete(unlocked, shim, shell, "keyvault", "show", "") == ["main-1", "main-2", "主要"]
    assert complete(unlocked, shim, shell, "keyvault", "rm", "main-") == ["main-1", "main-2"]
    assert complete(unlocked, shim, shell, "keyvault", "list", "--project", "") == ["work", "工作"]
    assert "import" in complete(unlocked, shim, shell, "keyvault", "imp")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_locked_means_no_names_no_prompt_and_no_wait(
    vault_cli: Cli, shim: Path, shell: str
) -> None:
    vault_cli.add("main-1", None, "--project", "work")
    started = time.monotonic()
    assert complete(vault_cli, shim, shell, "keyvault", "show", "") == []
    assert complete(vault_cli, shim, shell, "keyvault", "get", "--project", "") == []
    assert time.monotonic() - started < 15  # two processes, no scrypt, no passphrase wait
    # KEYVAULT_PASSPHRASE is not used either: a scrypt on every Tab would make Tab slow
    assert complete(vault_cli, shim, "bash", "keyvault", "show", "") == []


def test_completion_follows_vault_after_the_subcommand(
    unlocked: Cli, shim: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    unlocked.ok("--vault", str(other), "init", "--work-factor", str(CHEAP_LOG_N))
    unlocked.ok("add", "elsewhere", "--vault", str(other), input=make_key())
    unlocked.ok("unlock", "--vault", str(other), "--ttl", "5m")
    try:
        words = ("keyvault", "show", "--vault", str(other), "")
        assert complete(unlocked, shim, "bash", *words) == ["elsewhere"]
    finally:
        unlocked("lock", "--vault", str(other))


def test_vault_is_accepted_after_the_subcommand(vault_cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    vault_cli.ok("init", "--vault", str(other), "--work-factor", str(CHEAP_LOG_N))
    key = vault_cli.add("here", None, "--project", "p")
    vault_cli.ok("add", "there", "--project", "p", "--vault", str(other), input=make_key())
    assert [e["name"] for e in json.loads(vault_cli.ok("list", "--json").out)] == ["here"]
    there = json.loads(vault_cli.ok("list", "--json", "--vault", str(other)).out)
    assert [e["name"] for e in there] == ["there"]
    # after the subcommand wins over before it, as the nearer one
    both = vault_cli.ok(
        "--vault", str(tmp_path / "nowhere"), "get", "here", "--vault", str(vault_cli.home)
    )
    assert both.out == key + "\n"
    vault_cli.ok("phones", "add", "+447911123456", "--vault", str(other))
    assert "+447911123456" in vault_cli.ok("phones", "--vault", str(other)).out
    assert vault_cli.ok("phones").out.startswith("no phones yet")


def test_did_you_mean_for_commands_and_entries(vault_cli: Cli) -> None:
    vault_cli.add("main-1", None, "--project", "work")
    typo = vault_cli("lsit")
    assert typo.code == 2
    assert typo.err.splitlines() == [
        "keyvault: error: no such command 'lsit'",
        "keyvault: hint: did you mean 'list'?",
    ]
    assert "did you mean 'import'?" in vault_cli("imoprt").err
    assert vault_cli("zzzzzz").err.endswith("keyvault: hint: see `keyvault --help`\n")
    entry = vault_cli("show", "mian-1")
    assert entry.code == 1 and "did you mean 'main-1'?" in entry.err

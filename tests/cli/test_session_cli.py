"""Unlock once, then no prompts; CI with only an identity; hooks in real shells."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, Cli, base_env, make_key, require_tool


@pytest.fixture
def locked_cli(vault_cli: Cli) -> Iterator[Cli]:
    """A vault with one active key whose runner has NO passphrase: only a session opens it."""
    key = make_key()
    vault_cli.add("main", key, "--project", "demo")
    env = {k: v for k, v in vault_cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    runner = Cli(vault_cli.home, env)
    runner.key = key  # type: ignore[attr-defined]
    yield runner
    vault_cli("lock")


@pytest.mark.slow
def test_unlock_then_env_without_prompt_then_lock(locked_cli: Cli, vault_cli: Cli) -> None:
    denied = locked_cli("env", "--project", "demo", "--shell", "bash")
    assert denied.code == 3
    assert "keyvault: hint:" in denied.err and "unlock" in denied.err

    vault_cli.ok("unlock", "--ttl", "10m")  # the passphrase comes from the env here
    shown = locked_cli.ok("env", "--project", "demo", "--shell", "bash")
    assert locked_cli.key in shown.out  # type: ignore[attr-defined]
    status = locked_cli.ok("status", "--json")
    assert '"unlocked": true' in status.out

    locked_cli.ok("lock")
    again = locked_cli("env", "--project", "demo", "--shell", "bash")
    assert again.code == 3
    assert again.out == ""
    assert "unlock" in again.err


@pytest.mark.slow
def test_session_expires_after_ttl(locked_cli: Cli, vault_cli: Cli) -> None:
    vault_cli.ok("unlock", "--ttl", "2s")
    locked_cli.ok("get", "main")
    time.sleep(2.5)
    expired = locked_cli("get", "main")
    assert expired.code == 3
    assert expired.out == ""


def test_unlock_needs_the_passphrase_even_when_unlocked(locked_cli: Cli, vault_cli: Cli) -> None:
    vault_cli.ok("unlock", "--ttl", "10m")
    extend = locked_cli("unlock", "--ttl", "30d")  # no passphrase source: must not extend
    assert extend.code == 3


def test_wrong_passphrase_does_not_start_a_session(locked_cli: Cli) -> None:
    bad = locked_cli("unlock", env={"KEYVAULT_PASSPHRASE": "not the passphrase"})
    assert bad.code == 3
    assert "locked" in locked_cli.ok("status").out


def test_ci_flow_with_only_an_identity(vault_cli: Cli, tmp_path: Path) -> None:
    """A CI job has the vault file and KEYVAULT_IDENTITY, nothing else."""
    key = make_key()
    vault_cli.add("ci-key", key, "--project", "ci")
    identity = vault_cli.ok("recipients", "new-ci", "github").out.strip()
    assert identity.startswith("AGE-SECRET-KEY-1")

    env = base_env(vault_cli.home, Path(vault_cli.env["XDG_RUNTIME_DIR"]))
    env["KEYVAULT_IDENTITY"] = identity
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    ci = Cli(vault_cli.home, {**env, "GITHUB_ENV": str(github_env)})
    assert ci.ok("get", "--project", "ci").out.strip() == key
    out = ci.ok("ci", "github", "--project", "ci").out
    assert out.startswith("::add-mask::")
    assert key in github_env.read_text()
    check = ci.ok(
        "exec", "--project", "ci", "--", "sh", "-c", 'printf %s "$OPENAI_API_KEY" | sha256sum'
    )
    assert hashlib.sha256(key.encode()).hexdigest() in check.out


@pytest.mark.slow
def test_removed_recipient_can_no_longer_decrypt(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("k", make_key(), "--project", "p")
    identity = vault_cli.ok("recipients", "new-ci", "old-ci").out.strip()
    id_file = tmp_path / "old-ci.txt"
    id_file.write_text(identity + "\n")
    ci = Cli(vault_cli.home, {**vault_cli.env, "KEYVAULT_IDENTITY": identity})
    del ci.env["KEYVAULT_PASSPHRASE"]
    ci.ok("list")
    vault_cli.ok("recipients", "rm", "old-ci")
    assert ci("list").code == 3
    age = require_tool("age")
    for name in ("vault.age", "vault.age.bak"):  # the backup was re-sealed too
        proc = subprocess.run(
            [age, "-d", "-i", str(id_file), str(vault_cli.home / name)],
            capture_output=True,
            check=False,
        )
        assert proc.returncode != 0, name
        assert proc.stdout == b""


def test_cannot_remove_own_identity(vault_cli: Cli) -> None:
    refused = vault_cli("recipients", "rm", "owner")
    assert refused.code == 1
    assert "lock you out" in refused.err


HOOK_SCRIPTS = {
    # each script enters a project folder, prints the key, leaves, prints it again
    "bash": (
        'eval "$(keyvault hook bash)"; cd {proj}; _keyvault_hook; echo "IN=$OPENAI_API_KEY";'
        ' cd /; _keyvault_hook; echo "OUT=${{OPENAI_API_KEY-unset}}"'
    ),
    "zsh": (
        'eval "$(keyvault hook zsh)"; cd {proj}; _keyvault_hook; echo "IN=$OPENAI_API_KEY";'
        ' cd /; _keyvault_hook; echo "OUT=${{OPENAI_API_KEY-unset}}"'
    ),
    "fish": (
        'keyvault hook fish | source; cd {proj}; echo "IN=$OPENAI_API_KEY"; cd /;'
        ' if set -q OPENAI_API_KEY; echo "OUT=$OPENAI_API_KEY"; else; echo OUT=unset; end'
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("shell", sorted(HOOK_SCRIPTS))
def test_hook_exports_in_project_folder_and_unsets_on_leaving(
    locked_cli: Cli, vault_cli: Cli, tmp_path: Path, shell: str
) -> None:
    binary = require_tool(shell)
    proj = tmp_path / "proj" / "sub"
    proj.mkdir(parents=True)
    (tmp_path / "proj" / ".keyvault.toml").write_text('project = "demo"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "keyvault"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m vault "$@"\n')
    shim.chmod(0o755)
    env = {**locked_cli.env, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(REPO)}
    script = HOOK_SCRIPTS[shell].format(proj=proj)

    def run() -> list[str]:
        proc = subprocess.run(
            [binary, "-c", script],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            start_new_session=True,
            check=False,
        )
        return proc.stdout.splitlines()

    locked_lines = run()  # locked: the hook must not prompt or hang, and exports nothing
    assert "IN=" in locked_lines
    vault_cli.ok("unlock", "--ttl", "10m")
    lines = run()
    assert f"IN={locked_cli.key}" in lines  # type: ignore[attr-defined]
    assert "OUT=unset" in lines


# --- the identity stays in the agent ----------------------------------------------------------


@pytest.mark.slow
def test_commands_that_need_the_identity_itself_ask_again(locked_cli: Cli, vault_cli: Cli) -> None:
    """A session opens the vault but never gives its key out: `identity export` and `passwd`
    need the passphrase (or KEYVAULT_IDENTITY) even while unlocked."""
    vault_cli.ok("unlock", "--ttl", "10m")
    locked_cli.ok("list")  # the session opens the vault
    exported = locked_cli("identity", "export")
    assert exported.code == 3
    assert exported.out == ""
    assert "AGE-SECRET-KEY" not in exported.err
    assert "needs the passphrase even while unlocked" in exported.err  # not "the vault is locked"
    changed = locked_cli("passwd", env={"KEYVAULT_NEW_PASSPHRASE": "another passphrase"})
    assert changed.code == 3
    assert vault_cli.ok("identity", "export").out.startswith("AGE-SECRET-KEY-1")


@pytest.mark.slow
def test_session_knows_its_own_recipient(locked_cli: Cli, vault_cli: Cli) -> None:
    """`recipients rm` refuses the identity that unlocked, also when that is the session's."""
    vault_cli.ok("unlock", "--ttl", "10m")
    refused = locked_cli("recipients", "rm", "owner")
    assert refused.code == 1
    assert "lock you out" in refused.err
    locked_cli.ok("recipients", "new-ci", "ci")
    locked_cli.ok("recipients", "rm", "ci")  # a session can still re-seal the vault
    assert "ci" not in locked_cli.ok("recipients", "list").out.split()


@pytest.mark.slow
def test_scan_names_leaked_identities_with_a_session(
    locked_cli: Cli, vault_cli: Cli, tmp_path: Path
) -> None:
    """The owner's and a CI recipient's identity are recognised by their public keys."""
    owner = vault_cli.ok("identity", "export").out.strip()
    ci_identity = vault_cli.ok("recipients", "new-ci", "deploy").out.strip()
    vault_cli.ok("unlock", "--ttl", "10m")
    leaky = tmp_path / "repo"
    leaky.mkdir()
    (leaky / "ci.env").write_text(f"A={owner}\nB={ci_identity}\n")
    found = locked_cli("scan", str(leaky))
    assert found.code == 1
    assert ":1: your age identity (AGE-SECRET-KEY-1" in found.out
    assert ":2: age identity of deploy (AGE-SECRET-KEY-1" in found.out
    assert owner not in found.out + found.err and ci_identity not in found.out + found.err


HEAVY = ("cryptography", "httpx", "vault.age", "vault.health", "vault.health.admin", "phonenumbers")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("env", "--project", "demo", "--shell", "bash"),
        ("get", "main"),
        ("exec", "--project", "demo", "--", "true"),
    ],
)
def test_hot_path_imports_no_crypto_or_http_with_a_session(
    locked_cli: Cli, vault_cli: Cli, args: tuple[str, ...]
) -> None:
    """With a session, env/get/exec load neither cryptography (the agent decrypts) nor httpx,
    health or admin code: `python -X importtime` lists every module a run imports."""
    vault_cli.ok("unlock", "--ttl", "10m")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vault", *args],
        capture_output=True,
        text=True,
        env=locked_cli.env,
        timeout=60,
        start_new_session=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-500:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "vault.cli.main" in imported and "vault.session.client" in imported  # the probe works
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert heavy == []

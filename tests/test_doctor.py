"""`keyvault doctor`: each problem it knows is planted for real and reported with its fix.

Exit 0 only when nothing needs fixing; `warn` and `fail` both exit 1; `skip` (could not
unlock) does not count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import CHEAP_LOG_N, Cli, make_cli, open_vault
from vault.model.document import VaultDoc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and owners")

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


def doctor(cli: Cli, **env: str) -> tuple[int, list[dict[str, Any]]]:
    result = cli("doctor", "--json", env=env)
    data = json.loads(result.out)
    assert data["ok"] is (result.code == 0)
    return result.code, data["checks"]


def problems(checks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(c["area"], c["level"], c["message"]) for c in checks if c["level"] in ("warn", "fail")]


def git(folder: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(folder), *args],
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV},
    )


@pytest.mark.slow
def test_a_healthy_vault_is_all_good(cli: Cli) -> None:
    cli.ok("init", "--work-factor", "18")  # the default cost: the only way to get no warning
    identity = cli.ok("identity", "export").out.strip()
    fast = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY": identity}
    cli.ok("add", "work-1", input="sk-" + "a1" * 20, env=fast)
    result = cli("doctor", env=fast)
    assert result.code == 0, result.out
    assert result.out.rstrip().endswith("all good")
    assert "scrypt work factor 18" in result.out
    assert "vault.age.bak opens (generation 1)" in result.out


def test_a_cheap_work_factor_is_a_warning_with_its_fix(vault_cli: Cli) -> None:
    result = vault_cli("doctor")
    assert result.code == 1
    assert f"WARN  identity     the passphrase's scrypt work factor is {CHEAP_LOG_N}" in result.out
    assert "fix: keyvault passwd --work-factor 18" in result.out


def test_loose_modes_fail_with_chmod_fixes(vault_cli: Cli) -> None:
    home = vault_cli.home
    home.chmod(0o755)
    (home / "vault.age").chmod(0o644)
    (home / "vault.lock").chmod(0o660)
    code, checks = doctor(vault_cli)
    assert code == 1
    failed = {c["message"]: c["fix"] for c in checks if c["level"] == "fail"}
    assert failed[f"{home} is readable or writable by others (mode 0755)"] == f"chmod 700 {home}"
    vault = home / "vault.age"
    assert failed[f"{vault} is readable or writable by others (mode 0644)"] == f"chmod 600 {vault}"
    assert f"{home / 'vault.lock'} is readable or writable by others (mode 0660)" in failed


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_file_owned_by_someone_else_fails(vault_cli: Cli) -> None:
    vault_cli.add("k", None)
    os.chown(vault_cli.home / "vault.age.bak", 4242, -1)
    code, checks = doctor(vault_cli)
    assert code == 1
    assert (
        "permissions",
        "fail",
        f"{vault_cli.home / 'vault.age.bak'} belongs to uid 4242, not you (0)",
    ) in problems(checks)


def test_a_symlinked_vault_file_fails(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("k", None)
    backup = vault_cli.home / "vault.age.bak"
    elsewhere = tmp_path / "elsewhere"
    backup.rename(elsewhere)
    backup.symlink_to(elsewhere)
    code, checks = doctor(vault_cli)
    assert code == 1
    assert ("permissions", "fail", f"{backup} is a symlink") in problems(checks)


def test_a_damaged_backup_fails(vault_cli: Cli) -> None:
    vault_cli.add("k", None)
    backup = vault_cli.home / "vault.age.bak"
    data = bytearray(backup.read_bytes())
    data[-5] ^= 1
    backup.write_bytes(bytes(data))
    code, checks = doctor(vault_cli)
    assert code == 1
    assert (
        "backup",
        "fail",
        "vault.age.bak does not open: payload: chunk 1 failed authentication",
    ) in problems(checks)
    assert any(c["area"] == "vault" and c["level"] == "ok" for c in checks)


def test_a_damaged_vault_fails_and_the_backup_is_still_checked(vault_cli: Cli) -> None:
    vault_cli.add("k", None)
    vault = vault_cli.home / "vault.age"
    vault.write_bytes(vault.read_bytes()[:-1])
    code, checks = doctor(vault_cli)
    assert code == 1
    damaged = [c for c in checks if c["area"] == "vault"]
    assert (
        damaged[0]["level"] == "fail" and "copy vault.age.bak over vault.age" in damaged[0]["fix"]
    )
    assert any(c["area"] == "backup" and c["level"] == "ok" for c in checks)


def test_a_locked_vault_skips_what_needs_the_key(vault_cli: Cli) -> None:
    code, checks = doctor(vault_cli, KEYVAULT_PASSPHRASE="")
    skipped = [c for c in checks if c["level"] == "skip"]
    assert [c["area"] for c in skipped] == ["vault"]
    assert "no terminal" in skipped[0]["message"]
    assert not any(c["area"] == "backup" for c in checks)
    assert [p[:2] for p in problems(checks)] == [("identity", "warn")]  # only the cheap scrypt
    assert code == 1


@pytest.mark.slow
def test_vault_files_in_a_git_work_tree(vault_cli: Cli) -> None:
    top = vault_cli.home.parent
    git(top, "init", "-q")
    _, checks = doctor(vault_cli)
    assert (
        "git",
        "warn",
        f"vault file {vault_cli.home / 'vault.age'} is not ignored by git",
    ) in problems(checks)
    git(top, "add", "-f", "kv/identity.age")
    _, checks = doctor(vault_cli)
    tracked = [c for c in checks if c["level"] == "fail" and c["area"] == "git"]
    assert (
        tracked[0]["message"] == f"vault file {vault_cli.home / 'identity.age'} is tracked by git"
    )
    assert tracked[0]["fix"].startswith(f"git -C {vault_cli.home} rm --cached identity.age")
    git(top, "rm", "-q", "--cached", "kv/identity.age")
    (top / ".gitignore").write_text("kv/\n")
    _, checks = doctor(vault_cli)
    assert not [p for p in problems(checks) if p[0] == "git"]
    assert ("git", "ok", "vault files are ignored by git") in [
        (c["area"], c["level"], c["message"]) for c in checks
    ]


@pytest.mark.slow
def test_dotenv_files_the_vault_wrote(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("k", None, "--project", "web")
    project = tmp_path / "project"
    project.mkdir()
    git(project, "init", "-q")
    env_file = project / ".env"
    vault_cli.ok("dotenv", str(env_file), "--project", "web")
    env_file.chmod(0o644)
    _, checks = doctor(vault_cli)
    found = problems(checks)
    assert ("dotenv", "warn", f"{env_file} is readable or writable by others (mode 0644)") in found
    assert ("git", "warn", f".env file {env_file} is not ignored by git") in found
    git(project, "add", ".env")
    assert ("git", "warn", f".env file {env_file} is tracked by git") in problems(
        doctor(vault_cli)[1]
    )
    git(project, "rm", "-q", "--cached", ".env")
    (project / ".gitignore").write_text(".env\n")
    env_file.chmod(0o600)
    _, checks = doctor(vault_cli)
    assert not [p for p in problems(checks) if p[0] in ("dotenv", "git")]
    assert ("dotenv", "ok") in [(c["area"], c["level"]) for c in checks]


@pytest.mark.slow
def test_a_running_session_is_reported(vault_cli: Cli) -> None:
    vault_cli.ok("unlock", "--ttl", "10m")
    try:
        _, checks = doctor(vault_cli, KEYVAULT_PASSPHRASE="")
        session = [c for c in checks if c["area"] == "session"]
        assert session[0]["level"] == "ok" and session[0]["message"].startswith("unlocked until ")
        assert any(c["area"] == "vault" and c["level"] == "ok" for c in checks)  # via the agent
    finally:
        vault_cli.ok("lock")
    _, checks = doctor(vault_cli)
    assert ("session", "ok", "no unlock session is running") in [
        (c["area"], c["level"], c["message"]) for c in checks
    ]


def test_a_readable_passphrase_file_fails(vault_cli: Cli, tmp_path: Path) -> None:
    secret_file = tmp_path / "pass.txt"
    secret_file.write_text(vault_cli.env["KEYVAULT_PASSPHRASE"] + "\n")
    secret_file.chmod(0o644)
    code, checks = doctor(
        vault_cli, KEYVAULT_PASSPHRASE="", KEYVAULT_PASSPHRASE_FILE=str(secret_file)
    )
    assert (
        "unlock",
        "fail",
        f"{secret_file} is readable or writable by others (mode 0644)",
    ) in problems(checks)
    assert code == 1


def test_no_vault_home(cli: Cli) -> None:
    result = cli("doctor")
    assert result.code == 1
    assert f"FAIL  vault        no vault home at {cli.home}\n" in result.out
    assert "run `keyvault init`" in result.out


def test_a_backup_of_another_vault_is_not_called_a_backup(vault_cli: Cli) -> None:
    """Another vault sealed to the same identity opens, but copying it over vault.age (the fix
    doctor gives for a damaged vault) would install a stranger: doctor must say so."""
    vault_cli.add("k", None)
    kv = open_vault(vault_cli.home)
    mine = kv.read()
    stranger = VaultDoc(generation=1, recipients=mine.recipients)  # a second vault of ours
    stranger.ensure_team(at="2026-03-01T12:00:00Z", rand=os.urandom)
    (vault_cli.home / "vault.age.bak").write_bytes(kv.seal(stranger))
    code, checks = doctor(vault_cli)
    assert code == 1
    assert mine.team is not None and stranger.team is not None
    assert (
        "backup",
        "fail",
        f"vault.age.bak is a copy of another vault (id {stranger.team.vault_id}; this one is"
        f" {mine.team.vault_id})",
    ) in problems(checks)


def test_a_backup_sealed_to_others_says_so_not_vault_age(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("k", None)
    other = make_cli(tmp_path / "other", vault_cli.home.parent)
    other.ok("init", "--work-factor", str(CHEAP_LOG_N))
    (vault_cli.home / "vault.age.bak").write_bytes((other.home / "vault.age").read_bytes())
    code, checks = doctor(vault_cli)
    assert code == 1
    assert (
        "backup",
        "fail",
        "vault.age.bak does not open: it is sealed to other recipients, not to this identity",
    ) in problems(checks)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[health]\ndisable_afer = 3\n", "config.toml: unknown setting health.disable_afer"),
        (
            '[rotation.projects.work]\nmax_age_days = "90"\n',
            "config.toml: rotation.projects.work.max_age_days must be a number >= 1",
        ),
    ],
)
def test_a_typo_in_a_config_section_fails_doctor(vault_cli: Cli, text: str, message: str) -> None:
    """`list` and `add` never read [health] or [rotation]: doctor is where such a typo shows
    before the night's `check --rotate` stops on it."""
    config = vault_cli.home / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    assert vault_cli("list").code == 0
    code, checks = doctor(vault_cli)
    assert code == 1
    assert ("config", "fail", message) in problems(checks)
    config.write_text("[health]\ndisable_after = 3\n")
    code, checks = doctor(vault_cli)
    assert ("config", "ok") in [(c["area"], c["level"]) for c in checks]


def test_a_broken_config_is_every_failed_check_and_doctor_goes_on(vault_cli: Cli) -> None:
    """A bad proxy stopped doctor with `keyvault: error:` before any check ran, so a
    world-readable vault file went unreported too. Now each mistake is its own failed check,
    and the other checks run with the settings that are right."""
    config = vault_cli.home / "config.toml"
    config.write_text(
        'proxy = "ftp://nope"\nphone_slots = -3\ncolour = 1\nlock_timeout = 5\n'
        "[health]\ndisable_afer = 3\n"
    )
    config.chmod(0o600)
    (vault_cli.home / "vault.age").chmod(0o644)
    assert vault_cli("list").code == 1  # every other command still stops at the first one
    code, checks = doctor(vault_cli)
    assert code == 1
    failed = [c for c in checks if c["area"] == "config"]
    assert [c["level"] for c in failed] == ["fail"] * 4, failed
    assert [c["message"].rsplit(": ", 1)[-1] for c in failed] == [
        "bad value for proxy",
        "bad value for phone_slots",
        "unknown setting 'colour'",
        "unknown setting health.disable_afer",
    ]
    assert failed[0]["fix"].startswith("a proxy is http://HOST:PORT")
    assert ("permissions", "fail") in [(c["area"], c["level"]) for c in checks]  # went on
    assert ("vault", "ok") in [(c["area"], c["level"]) for c in checks]  # and opened it
    text = vault_cli("doctor")
    assert text.code == 1 and "keyvault: error" not in text.err
    assert text.out.count("FAIL  config") == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("proxy = \n", "not valid TOML"),
        ('proxy = "http://127.0.0.1:9"\n', "refusing a config.toml in a team vault pinned"),
    ],
)
def test_a_config_doctor_cannot_use_at_all_is_one_failed_check(
    vault_cli: Cli, text: str, message: str
) -> None:
    config = vault_cli.home / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    pinned = {"KEYVAULT_TEAM_PIN": "0" * 16} if "pinned" in message else {}
    code, checks = doctor(vault_cli, **pinned)
    assert code == 1
    failed = [c for c in checks if c["area"] == "config"]
    assert len(failed) == 1 and message in failed[0]["message"], failed

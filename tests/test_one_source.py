"""Issue 12's reproductions through the real command line: every consumer exports the key the
vault says, with exactly its OPENAI_* set, after every kind of change."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import dotenv
import pytest

from tests.helpers import Cli, make_key

KEYVAULT = f"{shlex.quote(sys.executable)} -m vault"
PHONE = "+447911123456"
OTHER_PHONE = "+14155552671"


def setup_two_projects(cli: Cli) -> dict[str, str]:
    side = cli.add(
        "side-1",
        None,
        "--project",
        "side",
        "--base-url",
        "https://relay.example.com/v1",
        "--org-id",
        "org-side123456",
    )
    work = cli.add("work-1", None, "--project", "work")
    return {"side": side, "work": work}


def bash(script: str, env: dict[str, str], cwd: Path | None = None) -> dict[str, str]:
    """Run `script` in a real bash, then print the OPENAI_* variables it left set."""
    printer = "for v in OPENAI_API_KEY OPENAI_BASE_URL OPENAI_ORG_ID OPENAI_PROJECT_ID; do\n"
    printer += '  if [ -n "${!v+x}" ]; then printf "%s=%s\\n" "$v" "${!v}"; fi\ndone\n'
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script + "\n" + printer],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_switching_projects_in_one_shell_leaves_nothing_of_the_first(vault_cli: Cli) -> None:
    keys = setup_two_projects(vault_cli)
    script = (
        f'eval "$({KEYVAULT} env --project side --shell bash)"\n'
        f'eval "$({KEYVAULT} env --project work --shell bash)"\n'
    )
    left = bash(script, vault_cli.env)
    assert left == {"OPENAI_API_KEY": keys["work"]}  # no relay or org of `side` stays behind


def test_exec_drops_a_stale_base_url_from_the_callers_environment(vault_cli: Cli) -> None:
    keys = setup_two_projects(vault_cli)
    stale = {"OPENAI_BASE_URL": "https://relay.example.com/v1", "OPENAI_ORG_ID": "org-side123456"}
    ran = vault_cli("exec", "--no-masking", "--project", "work", "--", "env", env=stale)
    assert ran.code == 0, ran.err
    child = dict(line.split("=", 1) for line in ran.out.splitlines() if "=" in line)
    assert child["OPENAI_API_KEY"] == keys["work"]
    assert "OPENAI_BASE_URL" not in child and "OPENAI_ORG_ID" not in child


def test_get_follows_the_project_file_like_env(vault_cli: Cli, tmp_path: Path) -> None:
    keys = setup_two_projects(vault_cli)
    vault_cli.add("default-1")
    folder = tmp_path / "repo" / "sub"
    folder.mkdir(parents=True)
    (tmp_path / "repo" / ".keyvault.toml").write_text('project = "side"\n')
    got = subprocess.run(
        [sys.executable, "-m", "vault", "get"],
        capture_output=True,
        text=True,
        env=vault_cli.env,
        cwd=folder,
        check=False,
    )
    assert got.stdout == keys["side"] + "\n", got.stderr
    env = bash(f'eval "$({KEYVAULT} env --shell bash)"', vault_cli.env, cwd=folder)
    assert env["OPENAI_API_KEY"] == keys["side"]


@pytest.mark.slow
def test_a_dotenv_file_belongs_to_one_project_at_a_time(vault_cli: Cli, tmp_path: Path) -> None:
    keys = setup_two_projects(vault_cli)
    vault_cli.add("side-2", None, "--project", "side")
    env_file = tmp_path / ".env"
    vault_cli.ok("dotenv", str(env_file), "--project", "side")
    vault_cli.ok("dotenv", str(env_file), "--project", "work")  # re-pointed: it moves
    rotated = vault_cli.ok("rotate", "--project", "side", "--no-check")
    assert str(env_file) not in rotated.out  # side's rotation does not touch work's file
    assert dotenv.dotenv_values(env_file) == {"OPENAI_API_KEY": keys["work"]}
    log = json.loads(vault_cli.ok("log", "--json").out)
    assert [e["action"] for e in log if e["action"].startswith("export")] == [
        "export",
        "export-move",
    ]


@pytest.mark.slow
def test_every_change_of_the_active_key_reaches_the_dotenv_file(
    vault_cli: Cli, tmp_path: Path
) -> None:
    keys = setup_two_projects(vault_cli)
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\n")
    vault_cli.ok("dotenv", str(env_file), "--project", "side")
    assert dotenv.dotenv_values(env_file)["OPENAI_BASE_URL"] == "https://relay.example.com/v1"

    fresh = make_key()
    added = vault_cli.ok("add", "side-2", "--project", "side", "--activate", input=fresh)
    assert f"updated: {env_file}" in added.out
    assert dotenv.dotenv_values(env_file) == {"DEBUG": "1", "OPENAI_API_KEY": fresh}

    vault_cli.ok("edit", "side-1", "--status", "active")
    assert dotenv.dotenv_values(env_file)["OPENAI_API_KEY"] == keys["side"]
    assert dotenv.dotenv_values(env_file)["OPENAI_ORG_ID"] == "org-side123456"

    vault_cli.ok("edit", "side-1", "--org-id", "")  # a variable the key no longer sets goes
    assert "OPENAI_ORG_ID" not in dotenv.dotenv_values(env_file)

    replaced = make_key()
    vault_cli.ok("edit", "side-1", "--secret", input=replaced)
    assert dotenv.dotenv_values(env_file)["OPENAI_API_KEY"] == replaced

    vault_cli.ok("rm", "side-1", "--yes")  # no active key: the lines go, the reason stays
    text = env_file.read_text()
    assert "OPENAI_" not in text.replace("OPENAI_* lines", "") and text.startswith("DEBUG=1\n")
    vault_cli.ok("edit", "side-2", "--status", "active")  # and come back with the next one
    assert dotenv.dotenv_values(env_file)["OPENAI_API_KEY"] == fresh


@pytest.mark.slow
def test_a_new_secret_is_an_unchecked_key(vault_cli: Cli, tmp_path: Path) -> None:
    setup_two_projects(vault_cli)
    home = vault_cli.home
    from tests.helpers import open_vault
    from vault.model.health import HealthRecord, HealthStatus

    kv = open_vault(home)
    ok = HealthRecord(HealthStatus.OK, "2026-11-30T10:00:00Z", last_ok_at="2026-11-30T10:00:00Z")

    def mark_ok(doc: object) -> None:
        doc.find("work-1").health = ok  # type: ignore[attr-defined]

    kv.transact(mark_ok)
    assert json.loads(vault_cli.ok("show", "work-1", "--json").out)["health"]["status"] == "ok"
    vault_cli.ok("edit", "work-1", "--secret", input=make_key())
    assert json.loads(vault_cli.ok("show", "work-1", "--json").out)["health"] is None
    assert "unchecked" in vault_cli.ok("list").out


@pytest.mark.slow
def test_a_removed_key_still_uses_its_phone_slot(vault_cli: Cli) -> None:
    vault_cli.add("a", None, "--phone", PHONE)
    vault_cli.add("b", None, "--phone", PHONE)
    vault_cli.add("c", None, "--phone", OTHER_PHONE)
    vault_cli.ok("rm", "b", "--yes")
    phones = {p["phone"]: p for p in json.loads(vault_cli.ok("phones", "--json").out)}
    assert (phones[PHONE]["used"], phones[PHONE]["free"]) == (2, 0)
    assert phones[PHONE]["removed"] == ["b"]
    refused = vault_cli("add", "d", "--phone", PHONE, input=make_key())
    assert refused.code == 1
    assert f"phone {PHONE} already verified 2 keys (limit 2): a, b (removed)" in refused.err
    hint = refused.err.splitlines()[1]
    assert PHONE not in hint and OTHER_PHONE in hint


@pytest.mark.slow
def test_doctor_finds_a_dotenv_file_that_fell_behind(vault_cli: Cli, tmp_path: Path) -> None:
    """A crash between the vault's save and the file's leaves the file with the old key (it is
    written after the save, under the same lock): doctor says so and how to fix it."""
    keys = setup_two_projects(vault_cli)
    newer = vault_cli.add("work-2", None, "--project", "work")
    env_file = tmp_path / ".env"
    vault_cli.ok("dotenv", str(env_file), "--project", "work")
    assert "does not hold" not in vault_cli("doctor").out
    vault_cli.ok("edit", "work-2", "--status", "active")
    env_file.write_text(f"OPENAI_API_KEY={keys['work']}\n")  # as if the process died in between
    env_file.chmod(0o600)
    report = vault_cli("doctor")
    assert f"{env_file} does not hold the active key of project work" in report.out
    assert f"fix: keyvault dotenv {env_file} --project work" in report.out
    vault_cli.ok("dotenv", str(env_file), "--project", "work")
    assert dotenv.dotenv_values(env_file)["OPENAI_API_KEY"] == newer
    assert "does not hold" not in vault_cli("doctor").out

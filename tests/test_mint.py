"""`keyvault rotate --mint`: service-account keys through the Administration API, with a kill at
every step followed by a resume. Invariants after any crash and resume: the project has exactly
one active key, every secret the API handed out and that was saved is still in the vault, and
every service account that exists at OpenAI is named in the vault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, Clock, Result, actives, add, by_name, files, make_key, open_vault
from vault.errors import NetworkUnavailable
from vault.export import export_values
from vault.export.dotenv import update_dotenv_file
from vault.model.document import Status, VaultDoc
from vault.model.entry import DEFAULT_BASE_URL, Entry, Kind
from vault.model.secret import Secret
from vault.rotation.mint import mint_rotate, minted_base_url, run_due
from vault.rotation.mint_admin import MintOptions
from vault.rotation.rotate import RotateOptions
from vault.store.inventory import remember_dotenv
from vault.store.keyvault import Keyvault

STEPS = ["intent", "created", "saved", "checked", "switched", "deleted"]
CRASH_EXIT = 86
LIVE = ("created", "switched", "active", "retiring")


def setup_project(server: FakeOpenAI, home: Path, env_file: Path, **kv_args: Any) -> Keyvault:
    """An admin key, a user key active in project `work`, a .env file, and one minted rotation
    already done (so the next one has an old service account to delete)."""
    kv = open_vault(home, **kv_args)
    project_id = server.admin.add_project("work")
    _, user_key = server.admin.add_user_key(project_id)
    add(kv, "org-admin", server.admin.add_admin_key(), base_url=server.base_url)
    add(kv, "user-1", user_key, project="work", project_id=project_id, base_url=server.base_url)
    env_file.write_text("DEBUG=1\n")
    update_dotenv_file(env_file, {"OPENAI_API_KEY": user_key})
    remember_dotenv(kv, "work", env_file)
    mint_rotate(kv, "work", MintOptions())
    return kv


# Runs `rotate --mint` through the library in a real process that dies (os._exit, as a kill
# would) right after the named step is saved: the `after_step` seam of MintOptions.
CRASH_AT = """
import os, sys
from vault.rotation.mint import mint_rotate
from vault.rotation.mint_admin import MintOptions
from vault.store.context import Context

step, grace = sys.argv[1], sys.argv[2]
def crash(done):
    if done == step:
        os._exit(86)
ctx = Context()
options = MintOptions(grace_hours=float(grace) if grace else None, after_step=crash)
mint_rotate(ctx.kv, "work", options)
"""


def crash_mint(cli: Cli, step: str, grace: str = "") -> Result:
    """`keyvault rotate --mint --project work` killed right after `step`."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AT, step, grace],
        capture_output=True,
        text=True,
        env=cli.env,
        timeout=60,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def server_accounts(server: FakeOpenAI) -> dict[str, tuple[str, str]]:
    """service account id → (its name, its key's value) for every account at the fake OpenAI."""
    out = {}
    for project in server.admin.projects.values():
        for account, key_id in project.service_accounts.items():
            key = project.keys[key_id]
            out[account] = (key.owner["service_account"]["name"], key.value)
    return out


def assert_nothing_unrecorded(server: FakeOpenAI, doc: VaultDoc) -> None:
    """Every account at OpenAI is named in the vault; every saved key is still in the vault."""
    names = {r.name for r in doc.mints}
    secrets = {e.secret.reveal() for e in doc.entries}
    by_id = {r.id: r for r in doc.mints if r.id}
    for account, (name, value) in server_accounts(server).items():
        assert name in names, f"{account} is not recorded"
        if account in by_id and by_id[account].state in LIVE:
            assert value in secrets, f"the key of {account} was lost"


def assert_settled(server: FakeOpenAI, doc: VaultDoc, env_file: Path) -> None:
    (active,) = actives(doc, "work")
    entry = by_name(doc)[active]
    live = [r for r in doc.mints if r.state in LIVE]
    assert [r.entry for r in live] == [entry.id]  # the active key's account, nothing else
    assert set(server_accounts(server)) == {live[0].id}  # old and orphaned ones deleted
    assert server_accounts(server)[live[0].id][1] == entry.secret.reveal()
    assert entry.secret.reveal().startswith("sk-svcacct-")
    assert f"OPENAI_API_KEY={entry.secret.reveal()}" in env_file.read_text()
    assert env_file.read_text().startswith("DEBUG=1\n")
    assert all(r.state in (*LIVE, "deleted", "abandoned") for r in doc.mints)


@pytest.mark.slow
@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_is_resumed_by_finish(
    step: str, fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    kv = setup_project(fake_openai, cli.home, env_file)
    first = actives(kv.read(), "work")
    crashed = crash_mint(cli, step, grace="0")
    assert crashed.code == CRASH_EXIT, crashed.err
    doc = open_vault(cli.home).read()
    assert len(actives(doc, "work")) == 1  # never zero or two, even mid-rotation
    assert_nothing_unrecorded(fake_openai, doc)
    resumed = cli("rotate", "--finish")
    assert resumed.code == 0, resumed.err
    doc = open_vault(cli.home).read()
    assert_settled(fake_openai, doc, env_file)
    assert actives(doc, "work") != first
    assert cli("check", actives(doc, "work")[0]).code == 0  # the key really works


@pytest.mark.slow
def test_resume_with_mint_again_reuses_the_saved_key(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    kv = setup_project(fake_openai, cli.home, env_file)
    crash_mint(cli, "saved")
    saved = [r for r in kv.read().mints if r.state == "created"]
    assert len(saved) == 1
    result = cli("rotate", "--mint", "--project", "work")
    assert result.code == 0, result.err
    assert f"resumed mint {saved[0].name} (created)" in result.out
    doc = open_vault(cli.home).read()
    assert by_name(doc)[actives(doc, "work")[0]].id == saved[0].entry  # no second mint
    assert len(server_accounts(fake_openai)) == 2  # new + old (waiting for --finish)
    assert cli("rotate", "--finish").code == 0
    assert_settled(fake_openai, open_vault(cli.home).read(), env_file)


@pytest.mark.slow
def test_a_minted_key_that_fails_its_check_is_not_activated(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = setup_project(fake_openai, cli.home, tmp_path / ".env")
    before = actives(kv.read(), "work")
    crash_mint(cli, "saved")
    (pending,) = [r for r in kv.read().mints if r.state == "created"]
    new_key = server_accounts(fake_openai)[pending.id][1]
    fake_openai.keys[new_key].behaviour = "region_blocked"
    refused = cli("rotate", "--finish")
    assert refused.code == 1
    assert "failed its check (region_blocked)" in refused.err
    assert actives(open_vault(cli.home).read(), "work") == before
    fake_openai.keys[new_key].behaviour = "ok"
    assert cli("rotate", "--finish").code == 0
    doc = open_vault(cli.home).read()
    assert by_name(doc)[actives(doc, "work")[0]].id == pending.entry


@pytest.mark.slow
def test_a_removed_minted_key_gets_its_account_deleted(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = setup_project(fake_openai, cli.home, tmp_path / ".env")
    crash_mint(cli, "saved")
    (pending,) = [r for r in kv.read().mints if r.state == "created"]
    name = next(e.name for e in kv.read().entries if e.id == pending.entry)
    assert cli("rm", name, "--yes").code == 0
    result = cli("rotate", "--finish")
    assert result.code == 1
    assert "the minted key was removed from the vault" in result.err
    assert f"deleted service account {pending.id}" in result.out
    assert pending.id not in server_accounts(fake_openai)


def test_grace_period_delays_the_deletion(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    clock = Clock()
    kv = setup_project(fake_openai, tmp_path / "kv", tmp_path / ".env", clock=clock)
    (old,) = [r for r in kv.read().mints if r.state == "active"]
    mint_rotate(kv, "work", MintOptions(grace_hours=24))
    retiring = {r.rid: r for r in kv.read().mints}[old.rid]
    assert retiring.state == "retiring"
    assert retiring.delete_after == "2026-03-02T12:00:00Z"
    clock.advance(hours=23)
    assert run_due(kv, RotateOptions(), MintOptions(), mint=False).finished == []
    assert old.id in server_accounts(fake_openai)
    clock.advance(hours=2)
    report = run_due(kv, RotateOptions(), MintOptions(), mint=False)
    assert report.finished == [f"deleted service account {old.id} ({old.name})"]
    assert old.id not in server_accounts(fake_openai)
    old_entry = kv.read().by_id(old.entry)
    assert old_entry is not None
    assert old_entry.status is Status.RETIRED  # its key no longer works
    events = [e.action for e in kv.read().history if "service_account" in e.detail]
    assert events.count("delete-service-account") == 1


@pytest.mark.slow
def test_mint_dry_run_and_missing_prerequisites(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = open_vault(cli.home)
    add(kv, "solo", fake_openai.add_key("ok"), project="work", base_url=fake_openai.base_url)
    no_admin = cli("rotate", "--mint", "--project", "work")
    assert no_admin.code == 1
    assert "the vault holds no admin key" in no_admin.err
    add(kv, "org-admin", fake_openai.admin.add_admin_key(), base_url=fake_openai.base_url)
    no_project = cli("rotate", "--mint", "--project", "work")
    assert no_project.code == 1
    assert "has no openai project id" in no_project.err
    assert "--project-id" in no_project.err
    project_id = fake_openai.admin.add_project("work")
    (cli.home / "config.toml").write_text(
        f'[rotation.projects.work]\nproject_id = "{project_id}"\n'
    )
    before = files(cli.home)
    preview = cli("rotate", "--mint", "--project", "work", "--dry-run")
    assert preview.code == 0, preview.err
    assert f"would create a service account in {project_id} with admin key org-admin" in preview.out
    assert files(cli.home) == before
    assert server_accounts(fake_openai) == {}
    assert cli("rotate", "--mint", "--project", "work").code == 0
    doc = open_vault(cli.home).read()
    assert by_name(doc)["solo"].status is Status.STANDBY
    assert by_name(doc)["org-admin"].status is Status.STANDBY  # never active


def test_intent_is_saved_before_the_api_is_called(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    kv = setup_project(fake_openai, cli.home, tmp_path / ".env")
    accounts = len(server_accounts(fake_openai))
    crash_mint(cli, "intent")
    assert len(server_accounts(fake_openai)) == accounts  # the API was not called yet
    (intent,) = [r for r in kv.read().mints if r.state == "intent"]
    assert intent.name.startswith("keyvault-work-")
    assert intent.id is None  # recorded by name: a resume finds the account by it


@pytest.mark.slow
def test_a_minted_key_the_network_kept_from_checking_is_not_called_bad(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    """The API goes away after the new key is saved: its check gets no answer. That is the
    network's failure: nothing switches, the error says so (not "failed its check", with
    advice to skip checking), and `rotate --finish` checks it again once the API is back."""
    env_file = tmp_path / ".env"
    kv = setup_project(fake_openai, cli.home, env_file)
    before = actives(kv.read(), "work")
    port = fake_openai.port

    def outage(done: str) -> None:
        if done == "saved":
            fake_openai.stop()

    with pytest.raises(NetworkUnavailable) as failed:
        mint_rotate(kv, "work", MintOptions(after_step=outage))
    assert "the network or the API failed, not the key; nothing switched" in failed.value.message
    assert "--no-check" not in (failed.value.hint or "")
    doc = kv.read()
    assert actives(doc, "work") == before
    assert [r.state for r in doc.mints if r.state == "created"] == ["created"]
    fake_openai.port = port
    fake_openai.start()
    resumed = cli("rotate", "--finish")
    assert resumed.code == 0, resumed.err
    assert_settled(fake_openai, open_vault(cli.home).read(), env_file)


@pytest.mark.slow
def test_a_mint_resumes_after_its_admin_key_was_removed_and_added_back(
    fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path
) -> None:
    """The error said "add it back, then run `keyvault rotate --finish`", but the record named
    the admin entry by id and an entry added back gets a new one: `--finish` failed forever.
    It now falls back to the admin key a new mint would use."""
    env_file = tmp_path / ".env"
    kv = setup_project(fake_openai, cli.home, env_file)
    crash_mint(cli, "saved", grace="0")
    (pending,) = [r for r in kv.read().mints if r.state == "created"]
    admin = by_name(kv.read())["org-admin"]
    assert cli("rm", "org-admin", "--yes").code == 0
    stuck = cli("rotate", "--finish")
    assert stuck.code == 1
    assert "the admin key that started this mint was removed" in stuck.err
    assert "add it (or another admin key of that organization) back" in stuck.err
    add(kv, "org-admin", admin.secret.reveal(), base_url=fake_openai.base_url)
    assert by_name(kv.read())["org-admin"].id != admin.id
    resumed = cli("rotate", "--finish")
    assert resumed.code == 0, resumed.err
    doc = open_vault(cli.home).read()
    assert by_name(doc)[actives(doc, "work")[0]].id == pending.entry
    assert_settled(fake_openai, doc, env_file)


def test_a_minted_key_is_exported_with_the_api_that_minted_it_not_the_relay() -> None:
    """default_base_url (config.toml) sends keys stored without a URL to a relay, but admin
    keys never use it: a key minted through api.openai.com must not follow it there."""
    relay = "https://relay.example.com/v1"
    admin = Entry(id="a" * 16, name="org-admin", secret=Secret("sk-admin-" + "x" * 40))
    admin.kind = Kind.ADMIN
    minted = Entry(id="b" * 16, name="work-svc", secret=Secret(make_key()))
    minted.base_url = minted_base_url(admin)
    assert export_values(minted, default_base_url=relay)["OPENAI_BASE_URL"] == DEFAULT_BASE_URL
    admin.base_url = "https://gateway.example.org/v1"  # an admin key given its own URL
    assert minted_base_url(admin) == "https://gateway.example.org/v1"

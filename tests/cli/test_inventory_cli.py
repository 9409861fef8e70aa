"""A new user's journey through the inventory commands, in real subprocesses.

init → add → list/phones/get/show → edit → rm → passwd → log → identity export + real age.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, PASSPHRASE, REPO, Cli, make_key, require_tool
from vault import age

UK = "+447911123456"
US = "+14155552671"


def masked(key: str) -> str:
    return f"sk-proj-…{key[-4:]}"


def assert_absent(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text
        assert len(key) < 40 or key[12:40] not in text  # not even a fragment


def decrypted_document(cli: Cli) -> dict[str, object]:
    """The decrypted document, read with the exported identity (the user's recovery path)."""
    identity = age.X25519Identity.parse(cli.ok("identity", "export").out.strip())
    return json.loads(age.decrypt((cli.home / "vault.age").read_bytes(), [identity]))


def test_init_creates_a_private_vault(cli):
    result = cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    assert result.out.splitlines()[0] == f"created {cli.home / 'vault.age'}"
    assert "your public key: age1" in result.out
    assert cli.home.stat().st_mode & 0o777 == 0o700
    for name in ("vault.age", "identity.age"):
        assert (cli.home / name).stat().st_mode & 0o777 == 0o600
    assert PASSPHRASE not in result.out + result.err
    assert json.loads(cli.ok("list", "--json").out) == []
    assert cli.ok("phones", "--json").out.strip() == "[]"


@pytest.mark.slow
def test_add_list_phones_get_show(vault_cli, snapshot):
    cli = vault_cli
    k1, k2, k3, kh = make_key(), make_key(), make_key(), make_key()
    first = cli.ok(
        "add",
        "main-1",
        "--project",
        "work",
        "--phone",
        "+44 7911 123456",
        "--card",
        "WildCard ****1234",
        "--credit",
        "20",
        "--created",
        "2025-01-02",
        "--org-id",
        "org-abcdef123",
        "--project-id",
        "proj_abc123456",
        "--base-url",
        "https://relay.example.com/v1/",
        "--tag",
        "ci",
        "--tag",
        "a,b",
        "--note",
        "first key",
        "--priority",
        "5",
        input=k1,
    )
    assert first.out == f"added main-1 ({masked(k1)}) to work as active\n"
    assert first.err == ""
    second = cli.ok("add", "main-2", "--project", "work", "--phone", UK, input=k2)
    assert second.out == f"added main-2 ({masked(k2)}) to work as standby\n"
    cli.add("home-1", kh, "--project", "home", "--phone", US)

    before = snapshot(cli.home)
    third = cli("add", "main-3", "--project", "work", "--phone", UK, input=k3)
    assert third.code == 1 and third.out == ""
    assert third.err.splitlines() == [
        f"keyvault: error: phone {UK} already verified 2 keys (limit 2): main-1, main-2",
        f"keyvault: hint: phones with a free slot: {US}",
    ]
    assert snapshot(cli.home) == before
    assert_absent(third.err, k3)

    table = cli.ok("list").out.splitlines()
    assert table[0].split() == ["NAME", "PROJECT", "STATUS", "KEY", "CREDIT", "HEALTH"]
    assert [row.split()[:4] for row in table[1:4]] == [
        ["main-1", "work", "active", masked(k1)],
        ["main-2", "work", "standby", masked(k2)],
        ["home-1", "home", "active", masked(kh)],
    ]
    assert "$20.00" in table[1] and "unchecked" in table[1]
    assert table[4] == "3 keys: 2 active, 1 standby"
    wide = cli.ok("list", "--wide").out.splitlines()
    assert "2025-01-02" in wide[1] and UK in wide[1] and "WildCard ****1234" in wide[1]

    listed = json.loads(cli.ok("list", "--json").out)
    assert [(e["name"], e["status"], e["secret"]) for e in listed] == [
        ("main-1", "active", masked(k1)),
        ("main-2", "standby", masked(k2)),
        ("home-1", "active", masked(kh)),
    ]
    only_work = json.loads(cli.ok("list", "--project", "work", "--json").out)
    assert [e["name"] for e in only_work] == ["main-1", "main-2"]
    standby = cli.ok("list", "--status", "standby").out.splitlines()
    assert [row.split()[0] for row in standby[1:-1]] == ["main-2"]
    typo = cli("list", "--project", "wrok", "--json")  # a typo is an error, never "no keys"
    assert typo.code == 1 and typo.out == ""
    assert "no project named 'wrok'" in typo.err and "did you mean 'work'" in typo.err

    phones = json.loads(cli.ok("phones", "--json").out)
    assert phones == [
        {
            "phone": UK,
            "used": 2,
            "slots": 2,
            "free": 0,
            "over": 0,
            "entries": ["main-1", "main-2"],
            "removed": [],
            "note": None,
        },
        {
            "phone": US,
            "used": 1,
            "slots": 2,
            "free": 1,
            "over": 0,
            "entries": ["home-1"],
            "removed": [],
            "note": None,
        },
    ]
    phone_table = cli.ok("phones").out.splitlines()
    assert phone_table[1].split() == [UK, "2/2", "0", "main-1,", "main-2"]

    assert cli.ok("get", "main-2").out == k2 + "\n"
    assert cli.ok("get", "--project", "work").out == k1 + "\n"
    assert cli.ok("get", "--project", "home").out == kh + "\n"

    shown = json.loads(cli.ok("show", "main-1", "--json").out)
    assert shown == {
        "id": shown["id"],
        "name": "main-1",
        "secret": masked(k1),
        "provider": "openai",
        "kind": "api",
        "project": "work",
        "created": "2025-01-02",
        "phone": UK,
        "card": "WildCard ****1234",
        "credit_usd": 20.0,
        "credit_source": "typed",  # typed with `add --credit`, at once
        "credit_at": shown["added_at"],
        "org_id": "org-abcdef123",
        "project_id": "proj_abc123456",
        "base_url": "https://relay.example.com/v1",
        "tags": ["a", "b", "ci"],
        "note": "first key",
        "status": "active",
        "priority": 5,
        "health": None,
        "added_at": shown["added_at"],
        "updated_at": shown["added_at"],
    }
    assert len(shown["id"]) == 16
    revealed = json.loads(cli.ok("show", "main-1", "--json", "--reveal").out)
    assert revealed == {**shown, "secret": k1}
    text = cli.ok("show", "main-1").out
    assert f"secret      {masked(k1)}" in text and "phone       " + UK in text
    assert f"secret      {k1}" in cli.ok("show", "main-1", "--reveal").out

    everything = "".join(
        cli.ok(*argv).out
        for argv in (
            ["list"],
            ["list", "--json"],
            ["phones"],
            ["phones", "--json"],
            ["show", "main-1"],
            ["show", "main-2", "--json"],
            ["log"],
            ["log", "--json"],
        )
    )
    assert_absent(everything, k1, k2, kh)


@pytest.mark.slow
def test_edit_metadata_rename_activate_secret_and_clear(vault_cli):
    cli = vault_cli
    ka, kb, kc, new = make_key(), make_key(), make_key(), make_key()
    cli.add("a", ka, "--project", "work")
    cli.add("b", kb, "--project", "work", "--note", "spare", "--card", "Visa ****1111")
    cli.add("c", kc, "--project", "home")

    assert cli.ok("edit", "b", "--status", "active").out == "updated b; a is standby now\n"
    status = {e["name"]: e["status"] for e in json.loads(cli.ok("list", "--json").out)}
    assert status == {"a": "standby", "b": "active", "c": "active"}
    assert cli.ok("get", "--project", "work").out == kb + "\n"

    cli.ok(
        "edit",
        "b",
        "--credit",
        "12.5",
        "--tag",
        "x",
        "--priority",
        "3",
        "--phone",
        US,
        "--created",
        "2025-05-06",
        "--base-url",
        "http://127.0.0.1:8080/v1",
    )
    cli.ok("edit", "b", "--note", "", "--card", "", "--tag", "")
    shown = json.loads(cli.ok("show", "b", "--json").out)
    assert (shown["credit_usd"], shown["priority"], shown["phone"], shown["created"]) == (
        12.5,
        3,
        US,
        "2025-05-06",
    )
    assert shown["base_url"] == "http://127.0.0.1:8080/v1"
    assert (shown["note"], shown["card"], shown["tags"]) == (None, None, [])

    cli.ok("edit", "b", "--name", "b2")
    assert cli("get", "b").code == 1
    assert cli.ok("get", "b2").out == kb + "\n"
    assert json.loads(cli.ok("show", "b2", "--json").out)["id"] == shown["id"]

    assert cli.ok("edit", "b2", "--secret", input=new + "\n").out == "updated b2\n"
    assert cli.ok("get", "b2").out == new + "\n"
    assert kb not in json.dumps(decrypted_document(cli)["entries"])
    # the old secret is free again: it can be stored under another name
    cli.add("b-old", kb, "--project", "work")

    history = json.loads(cli.ok("log", "--json").out)
    displaced = [h for h in history if h["action"] == "status"]
    assert [(h["name"], h["status"]) for h in displaced] == [("a", "standby")]
    assert displaced[0]["reason"] == "b became the active key"
    by_name = json.loads(cli.ok("log", "b2", "--json").out)  # follows the entry across a rename
    assert [(h["action"], h["name"]) for h in by_name][:2] == [("add", "b"), ("edit", "b")]
    assert ["secret"] in [h.get("fields") for h in by_name]


@pytest.mark.slow
def test_rm_needs_yes_without_a_terminal(vault_cli, snapshot):
    cli = vault_cli
    key = cli.add("gone")
    before = snapshot(cli.home)
    refused = cli("rm", "gone")
    assert refused.code == 2
    assert refused.err.splitlines() == [
        "keyvault: error: removing 'gone' needs confirmation",
        "keyvault: hint: add --yes",
    ]
    assert snapshot(cli.home) == before
    assert cli.ok("rm", "gone", "--yes").out == (
        "removed gone; the default project has no active key now"
        " (`keyvault rotate --project ''` picks one)\n"
    )
    assert json.loads(cli.ok("list", "--json").out) == []
    assert (cli.home / "vault.age.bak").read_bytes() == before["vault.age"]
    assert cli("get", "gone").code == 1
    assert cli("rm", "gone", "--yes").code == 1
    assert_absent(refused.err, key)


@pytest.mark.slow
def test_passwd_old_then_new(vault_cli, snapshot):
    cli = vault_cli
    key = cli.add("k")
    new = "a brand new passphrase"
    vault_before = (cli.home / "vault.age").read_bytes()
    identity_before = (cli.home / "identity.age").read_bytes()

    wrong = cli(
        "passwd",
        "--work-factor",
        "10",
        env={"KEYVAULT_PASSPHRASE": "wrong passphrase", "KEYVAULT_NEW_PASSPHRASE": new},
    )
    assert wrong.code == 3 and "wrong passphrase" in wrong.err
    short = cli("passwd", "--work-factor", "10", env={"KEYVAULT_NEW_PASSPHRASE": "short"})
    assert short.code == 2 and "at least 8" in short.err
    assert (cli.home / "identity.age").read_bytes() == identity_before

    done = cli.ok("passwd", "--work-factor", "10", env={"KEYVAULT_NEW_PASSPHRASE": new})
    assert done.out == "passphrase changed\n"
    assert_absent(done.out + done.err, PASSPHRASE, new)
    assert (cli.home / "identity.age").read_bytes() != identity_before
    assert (cli.home / "vault.age").read_bytes() == vault_before  # the vault is not rewritten
    assert (cli.home / "identity.age").stat().st_mode & 0o777 == 0o600

    old = cli("get", "k")
    assert old.code == 3 and old.out == ""
    assert old.err.startswith("keyvault: error: wrong passphrase")
    assert cli.ok("get", "k", env={"KEYVAULT_PASSPHRASE": new}).out == key + "\n"


@pytest.mark.slow
def test_log_is_append_only_and_never_holds_a_secret(vault_cli):
    cli = vault_cli
    keys = [make_key(), make_key(), make_key()]
    steps = [
        lambda: cli.add("a", keys[0], "--project", "p"),
        lambda: cli.add("b", keys[1], "--project", "p"),
        lambda: cli.ok("edit", "b", "--status", "active"),
        lambda: cli.ok("edit", "a", "--secret", input=keys[2]),
        lambda: cli.ok("rm", "b", "--yes"),
    ]
    seen = json.loads(cli.ok("log", "--json").out)
    assert [h["action"] for h in seen] == ["init"]
    for step in steps:
        step()
        now = json.loads(cli.ok("log", "--json").out)
        assert now[: len(seen)] == seen and len(now) > len(seen)
        seen = now
    assert [h["action"] for h in seen] == ["init", "add", "add", "edit", "status", "edit", "rm"]
    assert all(h["at"].endswith("Z") for h in seen)
    text = cli.ok("log").out
    assert text.splitlines()[0].split() == ["AT", "ACTION", "NAME", "DETAIL"]
    assert "fields: secret" in text and "['" not in text
    assert [h["action"] for h in json.loads(cli.ok("log", "a", "--json").out)] == [
        "add",
        "status",
        "edit",
    ]
    doc = decrypted_document(cli)
    assert_absent(json.dumps(doc["history"]) + text, *keys)


@pytest.mark.slow
def test_relay_keys_warn_and_other_providers_skip_the_shape_check(vault_cli):
    cli = vault_cli
    relay = make_key("sk-", 32, marker=False)
    added = cli.ok(
        "add", "relay", "--project", "r", "--base-url", "https://relay.example.com/v1", input=relay
    )
    assert added.err.startswith("keyvault: warning: the key lacks OpenAI's marker")
    assert_absent(added.out + added.err, relay)
    assert json.loads(cli.ok("show", "relay", "--json").out)["kind"] == "api"
    # a new secret given with `edit --secret` gets the same warning as `add`
    relay2 = make_key("sk-", 32, marker=False)
    edited = cli.ok("edit", "relay", "--secret", input=relay2)
    assert edited.err.startswith("keyvault: warning: the key lacks OpenAI's marker")
    assert edited.out == "updated relay\n"
    assert_absent(edited.out + edited.err, relay2)
    assert cli.ok("edit", "relay", "--note", "n").err == ""  # no new key: no warning

    token = "gw_" + "Q" * 30
    other = cli.ok("add", "gw", "--provider", "Other", input=token)
    assert other.err == ""
    assert json.loads(cli.ok("show", "gw", "--json").out)["provider"] == "other"
    for bad in ("gw token", "gw\ntoken", "gw\ttoken"):
        refused = cli("add", "gw2", "--provider", "other", input=bad)
        assert refused.code == 2 and refused.out == ""
    # a new secret is checked against the entry's own provider, not openai
    cli.ok("edit", "gw", "--secret", input="gw_" + "R" * 30)
    assert cli.ok("get", "gw").out == "gw_" + "R" * 30 + "\n"
    # switching the provider to openai rechecks the stored key
    switched = cli("edit", "gw", "--provider", "openai")
    assert switched.code == 2 and "not an OpenAI key" in switched.err
    reset = cli("edit", "gw", "--provider", "")  # '' means the default (openai): rechecked too
    assert reset.code == 2 and "not an OpenAI key" in reset.err
    assert json.loads(cli.ok("show", "gw", "--json").out)["provider"] == "other"
    cli.ok("edit", "relay", "--provider", "relay")
    cli.ok("edit", "relay", "--provider", "")
    assert json.loads(cli.ok("show", "relay", "--json").out)["provider"] == "openai"


def test_admin_keys_are_stored_but_never_active(vault_cli, snapshot):
    cli = vault_cli
    admin_key = make_key("sk-admin-", 58)
    added = cli.ok("add", "adm", "--project", "ops", input=admin_key)
    assert added.out == f"added adm (sk-admin-…{admin_key[-4:]}) to ops as standby\n"
    before = snapshot(cli.home)
    for argv in (["edit", "adm", "--status", "active"], ["get", "--project", "ops"]):
        refused = cli(*argv)
        assert refused.code == 1 and refused.out == ""
        assert_absent(refused.err, admin_key)
    assert snapshot(cli.home) == before
    assert json.loads(cli.ok("show", "adm", "--json").out)["kind"] == "admin"


@pytest.mark.slow
def test_phone_slots_come_from_config_toml(vault_cli, snapshot):
    cli = vault_cli
    (cli.home / "config.toml").write_text("phone_slots = 3\n")
    for n in range(3):
        cli.add(f"k{n}", None, "--phone", UK)
    cli.add("us", None, "--phone", US)
    before = snapshot(cli.home)
    full = cli("add", "k3", "--phone", UK, input=make_key())
    assert full.code == 1
    assert full.err.splitlines() == [
        f"keyvault: error: phone {UK} already verified 3 keys (limit 3): k0, k1, k2",
        f"keyvault: hint: phones with a free slot: {US}",
    ]
    assert snapshot(cli.home) == before
    assert json.loads(cli.ok("phones", "--json").out)[0] == {
        "phone": UK,
        "used": 3,
        "slots": 3,
        "free": 0,
        "over": 0,
        "entries": ["k0", "k1", "k2"],
        "removed": [],
        "note": None,
    }
    (cli.home / "config.toml").write_text("phone_slots = 0\n")
    bad = cli("phones")
    assert bad.code == 1 and "bad value for phone_slots" in bad.err


def test_identity_export_opens_the_vault_with_the_real_age(vault_cli, tmp_path):
    tool = require_tool("age")
    cli = vault_cli
    key = cli.add("k", None, "--project", "p")
    exported = cli.ok("identity", "export").out
    assert exported.startswith("AGE-SECRET-KEY-1")
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(exported)
    identity_file.chmod(0o600)
    proc = subprocess.run(
        [tool, "-d", "-i", str(identity_file), str(cli.home / "vault.age")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["format"] == "keyvault/1"
    assert [(e["name"], e["secret"], e["status"]) for e in doc["entries"]] == [("k", key, "active")]
    public = cli.ok("identity", "public").out.split()
    assert public == [doc["recipients"][0]["recipient"], "owner"]


def test_ci_style_unlock_with_an_identity_file_only(vault_cli, tmp_path):
    cli = vault_cli
    key = cli.add("k")
    identity_file = tmp_path / "id.txt"
    identity_file.write_text(cli.ok("identity", "export").out)
    ci = Cli(cli.home, {k: v for k, v in cli.env.items() if k != "KEYVAULT_PASSPHRASE"})
    env = {"KEYVAULT_IDENTITY_FILE": str(identity_file)}
    assert ci.ok("get", "k", env=env).out == key + "\n"
    ci.ok("edit", "k", "--note", "from ci", env=env)
    assert json.loads(ci.ok("show", "k", "--json", env=env).out)["note"] == "from ci"


# --- help -------------------------------------------------------------------------------


def _all_commands() -> list[list[str]]:
    import click

    from vault.cli.app import cli  # the command table, to ask each command for --help

    paths: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        if path:
            paths.append(path)
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name="keyvault")
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name])

    walk(cli, [])
    return paths


def test_top_level_help_lists_every_command(cli):
    result = cli.ok("--help")
    assert "Example:" in result.out
    listed = result.out.split("Commands:", 1)[1]
    for name in (
        "init",
        "add",
        "list",
        "show",
        "get",
        "edit",
        "rm",
        "phones",
        "log",
        "passwd",
        "identity",
    ):
        assert f"\n  {name} " in listed, name
    assert cli.ok("-h").out == result.out


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    _all_commands(),
    ids=" ".join,
)
def test_every_command_help_has_an_example(path, cli):
    result = cli.ok(*path, "--help")
    assert result.out.startswith(f"Usage: keyvault {' '.join(path)}")
    assert "Example" in result.out


def test_python_dash_m_vault_is_the_cli(cli):
    assert Path(REPO / "vault" / "__main__.py").exists()
    result = cli.ok("--version")
    assert result.out.startswith("keyvault, version ")


def test_bare_keyvault_prints_help_and_succeeds(cli):
    result = cli.ok()
    assert result.out.startswith("Usage: keyvault")
    assert "Commands:" in result.out


@pytest.mark.slow
def test_lock_timeout_comes_from_config(vault_cli, snapshot):
    """`lock_timeout` in config.toml bounds how long a change waits for another writer."""
    import portalocker

    vault_cli.add("k", make_key(), "--project", "p")
    (vault_cli.home / "config.toml").write_text("lock_timeout = 0.5\n")
    before = snapshot(vault_cli.home)
    with (vault_cli.home / "vault.lock").open("r+b") as lock:
        portalocker.lock(lock, portalocker.LOCK_EX)
        started = time.monotonic()
        late = vault_cli("edit", "k", "--note", "late")
        waited = time.monotonic() - started
        portalocker.unlock(lock)
    assert late.code == 1
    assert "the vault is locked by" in late.err and "lock_timeout" in late.err
    assert waited < 5  # not the default 10 s
    assert snapshot(vault_cli.home) == before
    for bad in ('"10"', "-1", "true", "7200"):
        (vault_cli.home / "config.toml").write_text(f"lock_timeout = {bad}\n")
        refused = vault_cli("edit", "k", "--note", "x")
        assert refused.code == 1 and "bad value for lock_timeout" in refused.err
    (vault_cli.home / "config.toml").write_text("lock_timeout = 0\n")  # never wait
    vault_cli.ok("edit", "k", "--note", "free")

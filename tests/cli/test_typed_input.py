"""Input as people type it: names in any script, `0044…` phones, a pasted
`OPENAI_API_KEY=sk-…` line, base URLs without /v1 or with a full endpoint, `edit --tag` that
adds and `--untag`, a default base URL for relay users, and the marker warning that says what
the marker is. All through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Cli, make_key

pytestmark = pytest.mark.slow  # each case is several real keyvault processes

UK = "+447911123456"


def shown(cli: Cli, name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(cli.ok("show", name, "--json").out)
    return data


def test_project_and_entry_names_in_any_script(vault_cli: Cli, tmp_path: Path) -> None:
    cli = vault_cli
    key = cli.add("主要-1", None, "--project", "工作", "--tag", "测试")
    assert shown(cli, "主要-1")["project"] == "工作"
    assert cli.ok("get", "--project", "工作").out == key + "\n"
    (tmp_path / ".keyvault.toml").write_text('project = "工作"\n', encoding="utf-8")
    env = subprocess.run(
        [*_python(), "env", "--format", "json"],
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=tmp_path,
        check=False,
    )
    assert json.loads(env.stdout) == {"OPENAI_API_KEY": key}  # .keyvault.toml names 工作
    listed = subprocess.run(
        [*_python(), "list", "--project", "工作", "--tag", "测试"],
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=tmp_path,
        check=False,
    )
    assert listed.returncode == 0 and "主要-1" in listed.stdout
    # the same name typed decomposed (e + combining accent) is the same name
    cli.add("café", None, "--project", "x")
    assert cli("add", "cafe\u0301", "--project", "x", input=make_key()).code == 1


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("-rf", "start with a letter or digit"),
        ("a b", "letters (any script)"),
        ("evil\u202eexe", "letters (any script)"),  # a bidi override would reorder the terminal
        ("zero\u200bwidth", "letters (any script)"),
        ("x" * 65, "1-64"),
    ],
)
def test_names_stay_safe_for_shells_and_terminals(vault_cli: Cli, name: str, why: str) -> None:
    key = make_key()
    refused = vault_cli("add", "ok-name", "--project", name, input=key)
    assert refused.code == 2 and why in refused.err
    assert "\u202e" not in refused.err and key not in refused.err


def _python() -> list[str]:
    return [sys.executable, "-m", "vault"]


def test_phones_with_00_and_fullwidth_digits(vault_cli: Cli) -> None:
    vault_cli.add("a", None, "--phone", "0044 7911 123456")
    vault_cli.add("b", None, "--phone", "\uff0b\uff14\uff14 7911 123456")  # from a Chinese IME
    assert shown(vault_cli, "a")["phone"] == UK and shown(vault_cli, "b")["phone"] == UK
    full = vault_cli("add", "c", "--phone", "0044-7911-123456", input=make_key())
    assert full.code == 1 and f"phone {UK} already verified 2 keys" in full.err
    bare = vault_cli("add", "c", "--phone", "7911123456", input=make_key())
    assert "+<country><number> or 00<country><number>" in bare.err


@pytest.mark.parametrize(
    "line",
    [
        "OPENAI_API_KEY={key}",
        'export OPENAI_API_KEY="{key}"',
        "OPENAI_API_KEY: '{key}'",
        "  OPENAI_API_KEY = {key}  \n",
    ],
)
def test_a_pasted_assignment_line_gives_its_value(vault_cli: Cli, line: str) -> None:
    key = make_key()
    added = vault_cli("add", "pasted", input=line.format(key=key))
    assert added.code == 0, added.err
    assert "keyvault: warning: took the value of OPENAI_API_KEY from the pasted line" in added.err
    assert vault_cli.ok("get", "pasted").out == key + "\n"
    assert key not in added.out + added.err


@pytest.mark.parametrize(
    ("typed", "stored", "said"),
    [
        ("https://relay.example.com", "https://relay.example.com/v1", "added /v1"),
        ("https://relay.example.com/", "https://relay.example.com/v1", "added /v1"),
        (
            "https://relay.example.com/v1/chat/completions",
            "https://relay.example.com/v1",
            "dropped /chat/completions",
        ),
        (
            "https://relay.example.com/chat/completions",
            "https://relay.example.com/v1",
            "dropped /chat/completions and added /v1",
        ),
        ("https://relay.example.com/openai", "https://relay.example.com/openai", "does not end in"),
        ("https://relay.example.com/api/v1", "https://relay.example.com/api/v1", None),
    ],
)
def test_base_urls_are_normalised_or_warned_about(
    vault_cli: Cli, typed: str, stored: str, said: str | None
) -> None:
    added = vault_cli("add", "relay", "--base-url", typed, input=make_key())
    assert added.code == 0, added.err
    assert shown(vault_cli, "relay")["base_url"] == stored
    if said is None:
        assert added.err == ""
    else:
        assert said in added.err and added.err.startswith("keyvault: warning: base url")
    edited = vault_cli("edit", "relay", "--base-url", "https://other.example.com")
    assert edited.code == 0 and "added /v1" in edited.err
    assert shown(vault_cli, "relay")["base_url"] == "https://other.example.com/v1"


def test_edit_tag_adds_untag_removes_and_empty_clears(vault_cli: Cli) -> None:
    vault_cli.add("k", None, "--tag", "ci")
    vault_cli.ok("edit", "k", "--tag", "nightly", "--tag", "生产")
    assert shown(vault_cli, "k")["tags"] == ["ci", "nightly", "生产"]
    vault_cli.ok("edit", "k", "--untag", "ci")
    assert shown(vault_cli, "k")["tags"] == ["nightly", "生产"]
    typo = vault_cli("edit", "k", "--untag", "nigthly")
    assert typo.code == 2
    assert "'k' has no tag 'nigthly' (its tags: nightly, 生产)" in typo.err
    assert shown(vault_cli, "k")["tags"] == ["nightly", "生产"]
    vault_cli.ok("edit", "k", "--tag", "", "--tag", "fresh")  # '' clears first, then adds
    assert shown(vault_cli, "k")["tags"] == ["fresh"]


def test_the_marker_warning_names_the_marker(vault_cli: Cli) -> None:
    added = vault_cli("add", "relay", input=make_key(marker=False))
    assert added.code == 0
    assert "the key lacks OpenAI's marker T3BlbkFJ (base64 of 'OpenAI'" in added.err


def test_default_base_url_flows_to_every_export(vault_cli: Cli, tmp_path: Path) -> None:
    cli = vault_cli
    relay = "https://relay.example.com/v1"
    (cli.home / "config.toml").write_text(f'default_base_url = "{relay}"\n')
    key = cli.add("plain", None, "--project", "p")
    own = cli.add("own", None, "--project", "q", "--base-url", "https://mine.example.com/v1")
    env = cli.ok("env", "--project", "p", "--format", "json").out
    assert json.loads(env) == {"OPENAI_API_KEY": key, "OPENAI_BASE_URL": relay}
    assert (
        json.loads(cli.ok("env", "--project", "q", "--format", "json").out)["OPENAI_BASE_URL"]
        == "https://mine.example.com/v1"
    )  # a key's own base URL wins
    seen = cli.ok(
        "exec",
        "--project",
        "p",
        "--no-masking",
        "--",
        "sh",
        "-c",
        'printf "%s|%s" "$OPENAI_BASE_URL" "$OPENAI_API_KEY"',
    ).out
    assert seen == f"{relay}|{key}"
    assert cli.ok("get", "--project", "p").out == key + "\n"
    dotenv = tmp_path / ".env"
    cli.ok("dotenv", str(dotenv), "--project", "p")
    assert f"OPENAI_BASE_URL={relay}" in dotenv.read_text()
    report = tmp_path / "ci.env"
    cli.ok("ci", "gitlab", "--project", "p", "--output", str(report))
    assert f"OPENAI_BASE_URL={relay}" in report.read_text()
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / ".keyvault.toml").write_text('project = "p"\n')
    hook = subprocess.run(
        [*_python(), "hook-env", "--shell", "bash"],
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=folder,
        check=False,
    )
    assert hook.returncode == 0 and f"export OPENAI_BASE_URL=$'{relay}'" in hook.stdout
    # the .env files that follow a change of the key get the setting too
    (cli.home / "config.toml").write_text('default_base_url = "https://next.example.com/v1"\n')
    cli.ok("edit", "plain", "--org-id", "org-abcdef123")
    written = dotenv.read_text()
    assert "OPENAI_BASE_URL=https://next.example.com/v1" in written
    assert "OPENAI_ORG_ID=org-abcdef123" in written and own not in written


def test_a_new_default_base_url_reaches_registered_files_at_the_next_save(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """A config.toml edit is no vault change: `env` exports the new URL at once, and the
    .env files of a project that did not change follow at the next save of anything. A
    file that is not ours to rewrite is left alone (said once, with that sync)."""
    cli = vault_cli
    key = cli.add("plain", None, "--project", "p")
    dotenv = tmp_path / "app" / ".env"
    dotenv.parent.mkdir()
    dotenv.write_text("# mine\nDEBUG=1\n")
    cli.ok("dotenv", str(dotenv), "--project", "p")
    foreign = tmp_path / "foreign.env"
    cli.ok("dotenv", str(foreign), "--project", "p")
    foreign.write_text(f"OPENAI_API_KEY={make_key()}\n")  # a hand edit: not this project's
    before_foreign = foreign.read_bytes()
    relay = "https://next.example.com/v1"
    (cli.home / "config.toml").write_text(f'default_base_url = "{relay}"\n')
    added = cli.ok("add", "other", "--project", "q", input=make_key())  # another project
    assert dotenv.read_text() == (
        f"# mine\nDEBUG=1\nOPENAI_API_KEY={key}\nOPENAI_BASE_URL={relay}\n"
    )
    assert f"updated: {dotenv}" in added.out and f"update {foreign}: holds a key" in added.err
    assert foreign.read_bytes() == before_foreign
    again = cli.ok("add", "third", "--project", "q", "--standby", input=make_key())
    assert again.out.count("\n") == 1 and again.err == ""  # in step now: nothing to say


def test_a_bad_default_base_url_is_a_config_error(vault_cli: Cli) -> None:
    (vault_cli.home / "config.toml").write_text('default_base_url = "http://relay.example.com"\n')
    refused = vault_cli("env", "--project", "p")
    assert refused.code == 1 and "bad value for default_base_url" in refused.err


def test_check_probes_keys_at_the_default_base_url(vault_cli: Cli, fake_openai) -> None:  # type: ignore[no-untyped-def]
    key = fake_openai.add_key("ok")
    (vault_cli.home / "config.toml").write_text(f'default_base_url = "{fake_openai.base_url}"\n')
    vault_cli.ok("add", "relay-key", "--project", "p", input=key)
    checked = vault_cli("check", "relay-key", "--json")
    assert checked.code == 0, checked.err
    assert json.loads(checked.out)[0]["status"] == "ok"
    assert fake_openai.count(key) >= 1

"""`keyvault import` from stores: a real `pass` store (real pass and gpg, a throwaway key)
and a real SQLite file with one-api's channel schema."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, make_key, require_tool

pytestmark = pytest.mark.slow  # real pass, gpg and sqlite files, then the CLI

UK = "+447911123456"


def plan(cli: Cli, *argv: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = cli("import", *argv, "--json", env=env)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def reasons(data: dict[str, Any], part: str) -> dict[str, str]:
    return {item["from"]: item["reason"] for item in data[part]}


# --- pass ---------------------------------------------------------------------------------


class PassStore:
    def __init__(self, root: Path) -> None:
        self.gnupg = root / "g"
        self.store = root / "store"
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(root),
            "GNUPGHOME": str(self.gnupg),
            "PASSWORD_STORE_DIR": str(self.store),
        }

    def run(self, *argv: str, input: str | None = None) -> None:
        subprocess.run(
            argv, env=self.env, input=input, text=True, check=True, capture_output=True, timeout=120
        )

    def insert(self, name: str, text: str) -> None:
        self.run("pass", "insert", "--multiline", name, input=text)


@pytest.fixture
def pass_store() -> Iterator[PassStore]:
    """A pass store encrypted to a throwaway gpg key with no passphrase."""
    require_tool("pass")
    require_tool("gpg")
    root = Path(tempfile.mkdtemp(prefix="kvp-", dir="/tmp"))  # short: gpg-agent's socket
    store = PassStore(root)
    store.gnupg.mkdir(mode=0o700)
    try:
        store.run(
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "keyvault test <kv-test@example.invalid>",
            "default",
            "default",
            "never",
        )
        store.run("pass", "init", "kv-test@example.invalid")
        yield store
    finally:
        subprocess.run(
            ["gpgconf", "--kill", "gpg-agent"], env=store.env, check=False, capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def test_a_pass_subfolder_through_the_real_pass(
    vault_cli: Cli, pass_store: PassStore, tmp_path: Path
) -> None:
    keys = {n: make_key() for n in ("m1", "m2", "m3", "h1", "dup", "card", "other")}
    vault_cli.add("stored", keys["dup"])
    pass_store.insert(
        "openai/work/main-1",
        f"{keys['m1']}\nphone: 0044 7911 123456\n"
        "card: WildCard ****1234\ncredit: 20\nurl: https://platform.openai.com\n",
    )
    pass_store.insert("openai/work/main-2", f"{keys['m2']}\nphone: {UK}\n")
    pass_store.insert("openai/work/main-3", f"{keys['m3']}\nphone: {UK}\n")  # third on a phone
    pass_store.insert("openai/home/h1", f"account password\napi_key: {keys['h1']}\n")
    pass_store.insert("openai/home/notes", "just a note\nno key here\n")
    pass_store.insert("openai/dup", keys["dup"])
    pass_store.insert("openai/card", f"{keys['card']}\ncard: 4111 1111 1111 1111\n")
    pass_store.insert("email/gmail", f"{keys['other']}\n")  # outside the folder: untouched
    (pass_store.store / "openai" / "broken.gpg").write_bytes(b"not gpg at all")

    # a `pass` that records the environment it got, then runs the real one
    spy = tmp_path / "spy"
    spy.mkdir()
    seen = tmp_path / "pass-env.txt"
    real = shutil.which("pass")
    (spy / "pass").write_text(f'#!/bin/sh\nenv >> "{seen}"\nexec "{real}" "$@"\n')
    (spy / "pass").chmod(0o755)
    # keyvault runs with its passphrase and an OPENAI_API_KEY in its environment
    env = {
        **pass_store.env,
        **vault_cli.env,
        "PATH": f"{spy}:{os.environ['PATH']}",
        "OPENAI_API_KEY": keys["other"],
    }
    data = plan(vault_cli, "--from", "pass", "openai", env=env)

    added = {a["name"]: a for a in data["added"]}
    assert set(added) == {"main-1", "main-2", "h1"}
    assert (added["main-1"]["project"], added["main-1"]["status"]) == ("work", "active")
    assert added["h1"]["project"] == "home"
    skipped = reasons(data, "skipped")
    assert skipped["pass:openai/work/main-3"].startswith(f"phone {UK} already verified 2 keys")
    assert skipped["pass:openai/dup"] == "this key is already stored as 'stored'"
    assert "full card number" in skipped["pass:openai/card"]
    not_keys = reasons(data, "not_keys")
    assert not_keys["pass:openai/home/notes"].startswith("no key: the first line is not sk-")
    assert not_keys["pass:openai/broken"].startswith("pass show failed:")
    assert not any(item.startswith("pass:email") for item in {**skipped, **not_keys})
    shown = json.loads(vault_cli.ok("show", "main-1", "--json").out)
    # pass's `url:` line is the website's address, not a base URL
    assert (shown["phone"], shown["card"], shown["credit_usd"], shown["base_url"]) == (
        UK,
        "WildCard ****1234",
        20.0,
        None,
    )
    assert vault_cli.ok("get", "h1").out == keys["h1"] + "\n"

    tool_env = seen.read_text()
    assert "GNUPGHOME=" in tool_env and "PASSWORD_STORE_DIR=" in tool_env
    assert "KEYVAULT_" not in tool_env  # not the passphrase, not the home, nothing of ours
    assert keys["other"] not in tool_env and "OPENAI_API_KEY" not in tool_env
    assert "PYTHONPATH" not in tool_env


def test_a_pass_entry_saved_on_windows_is_a_key(vault_cli: Cli, pass_store: PassStore) -> None:
    """An entry whose first line starts with a byte-order mark and ends in CR LF (edited in
    Notepad) was "no key: the first line is not sk-…"."""
    key = make_key()
    pass_store.insert("openai/win", f"\ufeff{key}\r\nphone: {UK}\r\n")
    env = {**pass_store.env, **vault_cli.env}
    data = plan(vault_cli, "--from", "pass", "openai", "--project", "p", env=env)
    assert [a["name"] for a in data["added"]] == ["win"], data
    assert vault_cli.ok("get", "win").out == key + "\n"


def test_pass_missing_or_no_store(vault_cli: Cli, tmp_path: Path) -> None:
    env = {"PASSWORD_STORE_DIR": str(tmp_path / "none")}
    refused = vault_cli("import", "--from", "pass", env=env)
    assert refused.code == 1 and "no pass store at" in refused.err
    store = tmp_path / "store"
    (store / "openai").mkdir(parents=True)
    (store / "openai" / "k.gpg").write_bytes(b"x")
    no_pass = vault_cli(
        "import",
        "--from",
        "pass",
        env={"PASSWORD_STORE_DIR": str(store), "PATH": str(tmp_path / "empty-bin")},
    )
    assert no_pass.code == 1 and "pass is not installed" in no_pass.err
    wrong = vault_cli("import", "--from", "pass", "nope", env={"PASSWORD_STORE_DIR": str(store)})
    assert wrong.code == 1 and "no folder 'nope' in the pass store" in wrong.err


# --- one-api / new-api ----------------------------------------------------------------------

# the table GORM creates for one-api's model.Channel on SQLite
CHANNELS_DDL = """
CREATE TABLE `channels` (
  `id` integer PRIMARY KEY AUTOINCREMENT,
  `type` integer DEFAULT 0,
  `key` text NOT NULL,
  `open_ai_organization` text,
  `test_model` text,
  `status` integer DEFAULT 1,
  `name` text,
  `weight` integer DEFAULT 0,
  `created_time` integer,
  `test_time` integer,
  `response_time` integer,
  `base_url` text DEFAULT '',
  `other` text,
  `balance` real,
  `balance_updated_time` integer,
  `models` text,
  `group` varchar(32) DEFAULT 'default',
  `used_quota` integer DEFAULT 0,
  `model_mapping` varchar(1024) DEFAULT '',
  `priority` integer DEFAULT 0,
  `config` text,
  `system_prompt` text
);
CREATE INDEX `idx_channels_key` ON `channels`(`key`);
CREATE INDEX `idx_channels_name` ON `channels`(`name`);
"""


def one_api_db(path: Path, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(CHANNELS_DDL)
        db.executemany(
            "INSERT INTO channels (type, key, status, name, base_url, balance,"
            " balance_updated_time, models) VALUES (?, ?, ?, ?, ?, ?, ?, 'gpt-4o-mini')",
            rows,
        )
    db.close()


def test_one_api_channels(vault_cli: Cli, tmp_path: Path) -> None:
    k = [make_key() for _ in range(7)]
    stored = vault_cli.add("stored", None, "--project", "relay")
    db = tmp_path / "one-api.db"
    one_api_db(
        db,
        [
            (1, k[0], 1, "官方 OpenAI", "", 12.5, 1767225600),  # OpenAI itself, balance read
            (8, k[1], 1, "relay-cn", "https://api.relay.example.cn", 0, 0),  # balance never read
            (1, f"{k[2]}\n{k[3]}\n{stored}\n", 1, "pool", None, None, None),  # multi-key channel
            (1, k[4], 2, "paused", "", None, None),  # disabled by hand
            (1, k[5], 3, "auto-off", "", None, None),  # disabled by one-api after failures
            (14, "sk-ant-api03-" + "a" * 40, 1, "claude", "", None, None),
            (41, '{"type": "service_account", "project_id": "x"}', 1, "vertex", "", None, None),
            (1, "", 1, "empty", "", None, None),
        ],
    )
    before = db.read_bytes()
    data = plan(vault_cli, str(db), "--project", "relay")
    added = {a["name"]: a for a in data["added"]}
    assert list(added) == ["官方-OpenAI", "relay-cn", "pool-1", "pool-2", "paused", "auto-off"]
    assert added["paused"]["status"] == "disabled" and added["auto-off"]["status"] == "disabled"
    assert {a["status"] for n, a in added.items() if n not in ("paused", "auto-off")} == {
        "standby"  # the project already had its active key ('stored')
    }
    skipped = reasons(data, "skipped")
    assert skipped[f"{db} channel 3 key 3"] == "this key is already stored as 'stored'"
    assert skipped[f"{db} channel 6"] == "an Anthropic key, not an OpenAI one"
    assert reasons(data, "not_keys") == {
        f"{db} channel 7": "a JSON credential, not an API key",
        f"{db} channel 8": "a channel without a key",
    }
    official = json.loads(vault_cli.ok("show", "官方-OpenAI", "--json").out)
    assert official["credit_usd"] == 12.5 and official["base_url"] is None
    assert official["note"] == "one-api channel 1"
    relay = json.loads(vault_cli.ok("show", "relay-cn", "--json").out)
    assert relay["base_url"] == "https://api.relay.example.cn/v1" and relay["credit_usd"] is None
    assert any("added /v1" in w for w in added["relay-cn"]["warnings"])
    assert db.read_bytes() == before  # opened read-only
    assert vault_cli.ok("get", "pool-2").out == k[3] + "\n"


def test_a_database_that_is_not_one_api(vault_cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (id integer, name text)")
    db.close()
    refused = vault_cli("import", str(other))
    assert refused.code == 1 and "no one-api channels table" in refused.err
    forced = vault_cli("import", "--from", "oneapi", str(tmp_path / "missing.db"))
    assert forced.code == 1 and "no database at" in forced.err

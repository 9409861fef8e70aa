"""`keyvault import` from files people have: .env files, llm's keys.json, a CSV or JSON
inventory. Real files with malformed rows, duplicates and a key already in the vault; every
key through add's own checks; `--dry-run` saves nothing; the import is one save."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, make_key, open_vault

pytestmark = pytest.mark.slow  # real processes: init, import, list per case

UK, US = "+447911123456", "+14155552671"
Snapshot = Callable[[Path], dict[str, bytes]]


def plan(cli: Cli, *argv: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli.ok("import", *argv, "--json").out)
    return data


def entries(cli: Cli) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in json.loads(cli.ok("list", "--json").out)}


def reasons(data: dict[str, Any], part: str) -> dict[str, str]:
    return {item["from"]: item["reason"] for item in data[part]}


def assert_no_secret(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text and key[10:40] not in text


# --- .env files ---------------------------------------------------------------------------


@pytest.fixture
def projects(tmp_path: Path) -> dict[str, Any]:
    """Folders as a developer has them, each with its .env (and one with its quirks)."""
    keys = {name: make_key() for name in ("shop", "blog", "工作", "old", "stored")}
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / ".env").write_text(
        "# shop settings\n"
        f"OPENAI_API_KEY={keys['old']}\n"  # overridden by the later line
        "DATABASE_URL=postgres://localhost/shop\n"
        f"OPENAI_API_KEY={keys['shop']}\n"
        "OPENAI_API_BASE=https://relay.example.com\n"  # the older SDK's name, without /v1
        "OPENAI_ORG_ID=org-abcdef123\n"
        "this line is not an assignment\n"
        f"# OPENAI_API_KEY={make_key()}\n"
        "OPENAI_KEY=sk-not-the-right-variable-name-at-all\n"
    )
    (tmp_path / "blog").mkdir()
    (tmp_path / "blog" / ".env.production").write_text(
        f'export OPENAI_API_KEY="{keys["blog"]}"\nBROKEN="never closed\n'
    )
    (tmp_path / "工作").mkdir()
    (tmp_path / "工作" / ".env").write_text(f"OPENAI_API_KEY='{keys['工作']}'\n")
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / ".env").write_text(f"OPENAI_API_KEY={keys['shop']}\n")  # same as shop
    (tmp_path / "stored").mkdir()
    (tmp_path / "stored" / ".env").write_text(f"OPENAI_API_KEY={keys['stored']}\n")
    (tmp_path / "placeholder").mkdir()
    (tmp_path / "placeholder" / ".env").write_text("OPENAI_API_KEY=sk-your-key-here\n")
    files = [
        str(tmp_path / p)
        for p in (
            "shop/.env",
            "blog/.env.production",
            "工作/.env",
            "copy/.env",
            "stored/.env",
            "placeholder/.env",
        )
    ]
    return {"keys": keys, "files": files, "root": tmp_path}


def test_dotenv_files_dry_run_then_one_save(
    vault_cli: Cli, projects: dict[str, Any], snapshot: Snapshot
) -> None:
    cli, keys, root = vault_cli, projects["keys"], projects["root"]
    cli.add("already", keys["stored"], "--project", "stored")
    before = snapshot(cli.home)
    dry = cli.ok("import", *projects["files"], "--dry-run")
    assert dry.out.startswith("would add 3, skipped 3, 5 not keys (dry run: nothing was saved)")
    assert snapshot(cli.home) == before

    data = plan(cli, *projects["files"])
    added = {a["name"]: a for a in data["added"]}
    assert set(added) == {"shop", "blog-production", "工作"}
    assert (added["shop"]["project"], added["shop"]["status"]) == ("shop", "active")
    assert added["工作"]["project"] == "工作"
    assert any("added /v1" in w for w in added["shop"]["warnings"])
    skipped = reasons(data, "skipped")
    assert skipped[f"{root}/copy/.env:1"] == (
        f"the same key as {root}/shop/.env:4 (imported as 'shop')"
    )
    assert skipped[f"{root}/stored/.env:1"] == "this key is already stored as 'already'"
    assert "not an OpenAI key" in skipped[f"{root}/placeholder/.env:1"]
    assert reasons(data, "not_keys") == {
        f"{root}/shop/.env:2": "overridden by line 4",
        f"{root}/shop/.env:7": "not NAME=value",
        f"{root}/shop/.env:8": "a commented-out OPENAI_API_KEY",
        f"{root}/shop/.env:9": "OPENAI_KEY holds an sk-… value; only OPENAI_API_KEY is imported",
        f"{root}/blog/.env.production:2": "a quote that is never closed",
    }
    assert_no_secret(json.dumps(data), *keys.values())

    shop = json.loads(cli.ok("show", "shop", "--json").out)
    assert shop["base_url"] == "https://relay.example.com/v1" and shop["org_id"] == "org-abcdef123"
    assert cli.ok("get", "--project", "shop").out == keys["shop"] + "\n"
    # one save for the whole import: the backup is the vault from before it
    assert (cli.home / "vault.age.bak").read_bytes() == before["vault.age"]
    assert open_vault(cli.home).read().generation == 3  # init 1, add 2, import 3

    again = plan(cli, *projects["files"])  # importing twice adds nothing and saves nothing
    assert again["added"] == [] and len(again["skipped"]) == 6
    assert open_vault(cli.home).read().generation == 3


def test_project_option_wins_over_the_folder_and_first_key_is_active(
    vault_cli: Cli, projects: dict[str, Any]
) -> None:
    files = projects["files"][:3]
    data = plan(vault_cli, *files, "--project", "all-in-one")
    assert {a["project"] for a in data["added"]} == {"all-in-one"}
    assert [a["status"] for a in data["added"]] == ["active", "standby", "standby"]


def test_names_already_taken_get_a_number(vault_cli: Cli, projects: dict[str, Any]) -> None:
    vault_cli.add("shop", None, "--project", "elsewhere")
    data = plan(vault_cli, projects["files"][0])
    assert data["added"][0]["name"] == "shop-2"
    assert "named 'shop-2', not 'shop': 'shop' is taken" in data["added"][0]["warnings"]


# --- llm's keys.json -----------------------------------------------------------------------


def test_llm_keys_json(vault_cli: Cli, tmp_path: Path) -> None:
    stored, openai, work = make_key(), make_key(), make_key(marker=False)
    vault_cli.add("mine", stored)
    keys_json = tmp_path / "io.datasette.llm" / "keys.json"
    keys_json.parent.mkdir()
    keys_json.write_text(
        json.dumps(
            {
                "// Note": "This file stores secret API credentials. Do not share!",
                "openai": openai,
                "work": work,
                "old": stored,
                "claude": "sk-ant-api03-" + "x" * 40,
                "personal": "sk-ant-api03-" + "y" * 40,  # Anthropic's, under an alias of ours
                "gemini": "AIza" + "z" * 35,
                "broken": 42,
            },
            indent=2,
        )
        + "\n"
    )
    data = plan(vault_cli, str(keys_json))
    assert [(a["name"], a["status"]) for a in data["added"]] == [
        ("openai", "standby"),
        ("work", "standby"),
    ]
    assert any("T3BlbkFJ" in w for w in data["added"][1]["warnings"])  # a relay key, said so
    skipped = reasons(data, "skipped")
    assert skipped[f"{keys_json} [old]"] == "this key is already stored as 'mine'"
    assert skipped[f"{keys_json} [personal]"] == "an Anthropic key, not an OpenAI one"
    not_keys = reasons(data, "not_keys")
    assert not_keys[f"{keys_json} [claude]"] == "llm's key for claude, not for OpenAI"
    assert not_keys[f"{keys_json} [gemini]"] == "llm's key for gemini, not for OpenAI"
    assert not_keys[f"{keys_json} [broken]"] == "not a key (not a string)"
    assert vault_cli.ok("get", "openai").out == openai + "\n"

    bad = tmp_path / "keys.json"
    bad.write_text('{"openai": "sk-')
    refused = vault_cli("import", str(bad))
    assert refused.code == 1 and refused.err.startswith("keyvault: error:")
    assert "is not valid JSON" in refused.err


# --- CSV and JSON inventories --------------------------------------------------------------


def test_a_spreadsheet_saved_by_excel_on_chinese_windows(vault_cli: Cli, tmp_path: Path) -> None:
    cli = vault_cli
    stored = cli.add("stored", None, "--phone", US)
    k = [make_key() for _ in range(8)]
    rows = [
        "名称,密钥,项目,手机号,卡,创建日期,余额,接口地址,备注,颜色",
        f"主力,{k[0]},工作,0044 7911 123456,WildCard ****1234,2025-01-02,20,,第一个,红",
        f"备用,{k[1]},工作,+44 7911 123456,WildCard ****1234,2025-01-03,5.5,,,蓝",
        f"第三,{k[2]},工作,+447911123456,,,,,,",  # the phone's third key: refused
        f"卡号,{k[3]},工作,,4111 1111 1111 1111,,,,,",  # a full card number: refused
        f"日期,{k[4]},工作,,,2099-01-01,,,,",  # a date in the future: refused
        f"中转,{k[5]},中转,,,,,https://relay.example.com/v1/chat/completions,,",
        f"重复,{stored},工作,,,,,,,",
        "空的,,工作,,,,,,,",
        f"多了,{k[6]},工作,,,,,,,,额外,更多",
        f"掩码,sk-proj-…{k[7][-4:]},工作,,,,,,,",
        "",
    ]
    sheet = tmp_path / "keys.csv"
    sheet.write_bytes("\r\n".join(rows).encode("gb18030"))  # Excel's "CSV" on Chinese Windows
    data = plan(cli, str(sheet))
    assert [a["name"] for a in data["added"]] == ["主力", "备用", "中转"]
    skipped = reasons(data, "skipped")
    assert skipped[f"{sheet}:4"].startswith(f"phone {UK} already verified 2 keys")
    assert "full card number" in skipped[f"{sheet}:5"]
    assert "in the future" in skipped[f"{sheet}:6"]
    assert skipped[f"{sheet}:8"] == "this key is already stored as 'stored'"
    not_keys = reasons(data, "not_keys")
    assert not_keys[f"{sheet}:9"] == "no key in this row"
    assert not_keys[f"{sheet}:10"] == "12 cells, the header has 10"
    assert not_keys[f"{sheet}:11"] == "a masked key (sk-…abcd): the file holds no key itself"
    assert data["notes"] == ["ignored the column '颜色': keyvault has no such field"]
    main = json.loads(cli.ok("show", "主力", "--json").out)
    assert (main["phone"], main["card"], main["credit_usd"], main["created"], main["note"]) == (
        UK,
        "WildCard ****1234",
        20.0,
        "2025-01-02",
        "第一个",
    )
    assert main["status"] == "active"
    assert json.loads(cli.ok("show", "中转", "--json").out)["base_url"] == (
        "https://relay.example.com/v1"
    )
    assert_no_secret(json.dumps(data) + cli.ok("list").out, *k)


def test_a_semicolon_csv_with_english_headers(vault_cli: Cli, tmp_path: Path) -> None:
    key = make_key()
    sheet = tmp_path / "inventory.csv"
    sheet.write_text(
        f"Name;Key;Project;Base URL;Tags\nrelay-1;{key};relay;https://r.example.com;a,b\n"
    )
    data = plan(vault_cli, str(sheet))
    assert data["added"][0]["name"] == "relay-1"
    shown = json.loads(vault_cli.ok("show", "relay-1", "--json").out)
    assert shown["tags"] == ["a", "b"] and shown["base_url"] == "https://r.example.com/v1"
    headless = tmp_path / "nokey.csv"
    headless.write_text("name,project\nx,y\n")
    refused = vault_cli("import", str(headless))
    assert refused.code == 1 and "no key column in the first row" in refused.err


def test_a_json_inventory_and_our_own_masked_list(vault_cli: Cli, tmp_path: Path) -> None:
    k1, k2 = make_key(), make_key()
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            [
                {
                    "name": "j1",
                    "secret": k1,
                    "project": "p",
                    "credit_usd": 7.25,
                    "tags": ["x", "y"],
                },
                {
                    "name": "j2",
                    "key": k2,
                    "project": "p",
                    "status": "disabled",
                    "phone": "0044 7911 123456",
                },
                "not an object",
                {"name": "j3", "project": "p"},
            ]
        )
    )
    data = plan(vault_cli, str(inventory))
    assert [(a["name"], a["status"]) for a in data["added"]] == [
        ("j1", "active"),
        ("j2", "disabled"),
    ]
    assert reasons(data, "not_keys") == {
        f"{inventory} [2]": "not an object",
        f"{inventory} [3]": "no key in this row",
    }
    shown = json.loads(vault_cli.ok("show", "j1", "--json").out)
    assert shown["credit_usd"] == 7.25 and shown["tags"] == ["x", "y"]
    # `keyvault list --json` holds masked keys: nothing to import, and it says why
    listing = tmp_path / "listing.json"
    listing.write_text(vault_cli.ok("list", "--json").out)
    refused = vault_cli("import", str(listing))
    assert refused.code == 1
    assert "a masked key" in refused.out and "found no keys to import" in refused.err


def test_sources_that_cannot_be_read(vault_cli: Cli, tmp_path: Path) -> None:
    missing = vault_cli("import", str(tmp_path / "nothing.env"))
    assert missing.code == 1 and "cannot read" in missing.err
    folder = vault_cli("import", str(tmp_path))
    assert folder.code == 1 and "is a folder" in folder.err
    nothing = vault_cli("import")
    assert nothing.code == 2 and "name what to import" in nothing.err
    empty = tmp_path / ".env"
    empty.write_text("DEBUG=1\n")
    none_found = vault_cli("import", str(empty))
    assert none_found.code == 1 and "found no keys to import" in none_found.err


def test_a_key_in_an_alias_name_or_cell_is_masked_in_the_report(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """A source may name a row by a key: llm's alias (a keys.json written the wrong way
    round), a CSV whose columns slipped. The report prints `from` and `name` as the source
    has them, on the terminal and in --json: every key there is masked."""
    keys = [make_key() for _ in range(4)]
    llm = tmp_path / "keys.json"
    llm.write_text(json.dumps({keys[0]: keys[0], keys[1] + "x": 5}))
    sheet = tmp_path / "inventory.csv"
    sheet.write_text(f"name,key\n{keys[2]},{keys[3]}\nfine,{keys[2]}\n")
    for argv in (["--dry-run"], ["--dry-run", "--json"], []):
        done = vault_cli("import", str(llm), str(sheet), *argv)
        assert done.code == 0, done.err
        assert_no_secret(done.out + done.err, *keys)
    names = set(entries(vault_cli))
    assert names == {"fine"}


def test_a_bad_project_option_fails_the_command_not_each_row(
    vault_cli: Cli, tmp_path: Path, snapshot: Snapshot
) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / ".env").write_text(f"OPENAI_API_KEY={make_key()}\n")
    before = snapshot(vault_cli.home)
    for argv in (["--dry-run"], []):
        done = vault_cli("import", str(tmp_path / "shop" / ".env"), "--project", "bad!", *argv)
        assert done.code == 2 and "project 'bad!' must be" in done.err, done
        assert done.out == ""
    assert snapshot(vault_cli.home) == before
    unread = vault_cli("import", str(tmp_path / "nowhere.env"), "--project", "bad!")
    assert unread.code == 2 and "project 'bad!'" in unread.err  # before any source is read

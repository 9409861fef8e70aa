"""`keyvault usage`: spend from the Administration API's costs endpoint, per project and key."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, add, by_name, make_key, open_vault
from vault.rotation.mint import mint_rotate
from vault.rotation.mint_admin import MintOptions

DAY = 86_400


@pytest.fixture
def spend(fake_openai: FakeOpenAI, cli: Cli) -> dict[str, str]:
    """Two OpenAI projects with keys in the vault and 40 days of costs."""
    admin = fake_openai.admin
    kv = open_vault(cli.home)
    add(kv, "org-admin", admin.add_admin_key(), base_url=fake_openai.base_url)
    work = admin.add_project("Work app")
    play = admin.add_project("Side project")
    _, work_user = admin.add_user_key(work)
    play_key_id, play_user = admin.add_user_key(play)
    add(kv, "work-1", work_user, project="work", project_id=work, base_url=fake_openai.base_url)
    add(
        kv,
        "play-1",
        play_user,
        project="play",
        project_id=play,
        base_url=fake_openai.base_url,
        credit_usd=20,
    )
    mint_rotate(kv, "work", MintOptions())
    minted_key_id = next(r.key_id for r in kv.read().mints if r.key_id)
    now = int(time.time())
    admin.add_cost(now - 35 * DAY, 4.0, work, minted_key_id)  # only in a 40-day window
    admin.add_cost(now - 10 * DAY, 3.0, play, play_key_id)  # before play-1's credit was noted
    admin.add_cost(now - 60, 1.5, play, play_key_id)
    admin.add_cost(now - 60, 0.25, work, minted_key_id)
    return {"work": work, "play": play, "minted": minted_key_id, "play_key": play_key_id}


def test_spend_per_project_and_key_over_every_page(
    fake_openai: FakeOpenAI, cli: Cli, spend: dict[str, str]
) -> None:
    result = cli("usage", "--days", "40", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["total_usd"] == pytest.approx(8.75)
    projects = {p["project_id"]: p for p in report["projects"]}
    assert projects[spend["work"]]["spend_usd"] == pytest.approx(4.25)
    assert projects[spend["work"]]["vault_project"] == "work"
    assert projects[spend["play"]]["name"] == "Side project"
    keys = {k["api_key_id"]: k for k in report["keys"]}
    minted_name = next(e.name for e in open_vault(cli.home).read().entries if "minted" in e.tags)
    assert keys[spend["minted"]]["name"] == minted_name  # matched through the mint record
    assert keys[spend["play_key"]]["name"] == "play-1"  # matched by the redacted value
    assert keys[spend["play_key"]]["remaining_usd"] == pytest.approx(18.5)  # 20 - today's 1.5
    assert fake_openai.stats.by_path["GET /v1/organization/costs"] == 2  # 40 days, 31 a page


def test_a_shorter_window_and_one_project(cli: Cli, spend: dict[str, str]) -> None:
    result = cli("usage", "--project", "work", "--days", "7", "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert [p["project_id"] for p in report["projects"]] == [spend["work"]]
    assert report["total_usd"] == pytest.approx(0.25)


def test_bar_chart_in_the_terminal(cli: Cli, spend: dict[str, str]) -> None:
    result = cli("usage", "--days", "40")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].endswith("$8.75")
    work = next(line for line in lines if line.startswith("work "))
    play = next(line for line in lines if line.startswith("play "))
    assert play.count("█") == 30  # the biggest spender ($4.50) fills the bar
    assert work.count("█") == round(30 * 4.25 / 4.5)
    assert work.endswith("$4.25")
    table = lines[len(lines) - lines[::-1].index("") :]
    assert table[0].split()[:3] == ["KEY", "PROJECT", "SPEND"]
    assert any(row.startswith("play-1") and "$18.50" in row for row in table)


def test_usage_needs_an_admin_key(fake_openai: FakeOpenAI, cli: Cli, tmp_path: Path) -> None:
    kv = open_vault(cli.home)
    add(kv, "k", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    result = cli("usage")
    assert result.code == 1
    assert "the vault holds no admin key" in result.err
    assert "keyvault: hint:" in result.err
    assert cli("usage", "--days", "0").code == 2


def test_a_revoked_admin_key_is_reported_without_the_key(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    revoked = fake_openai.admin.add_admin_key()
    fake_openai.admin.admin_keys.discard(revoked)
    add(kv, "org-admin", revoked, base_url=fake_openai.base_url)
    result = cli("usage")
    assert result.code == 1
    assert "admin api: GET /organization/costs failed: http 401 invalid" in result.err
    assert revoked not in result.err
    assert by_name(kv.read())["org-admin"].status == "standby"


def test_an_unreachable_admin_api_is_named_once_as_the_network(cli: Cli) -> None:
    """No HTTP answer: the line says network_error once (it said it twice), with the reason."""
    kv = open_vault(cli.home)
    add(kv, "org-admin", make_key("sk-admin-", 58), base_url="http://127.0.0.1:9/v1")
    result = cli("usage", "--timeout", "5")
    assert result.code == 1
    line = result.err.splitlines()[0]
    assert line.startswith("keyvault: error: admin api: GET /organization/costs failed:"), line
    assert line.count("network_error") == 1 and "ConnectError" in line, line

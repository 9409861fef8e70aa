"""Issue 14's rotation reproductions, against the local fake OpenAI server: rotation verifies
the key it lands on with a real request, tells a network failure from bad keys, and says why
nothing qualifies, key by key, with the long hint once per run."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, Clock, actives, add, by_name, files, open_vault, write_config
from vault.health.checking import CheckOptions, run_checks, select_entries

PHONE = "+447911123456"
CARD = "WildCard ****1234"


def alpha(server: FakeOpenAI, cli: Cli) -> dict[str, str]:
    """The issue's project: a dead active key, a broke standby key (its /v1/models answers
    200, its chat 429 insufficient_quota) ranked first, and a healthy standby key."""
    kv = open_vault(cli.home)
    url = server.base_url
    keys = {"dead": server.add_key("invalid"), "broke": server.add_key("quota")}
    keys["healthy"] = server.add_key("ok")
    add(kv, "dead", keys["dead"], project="alpha", base_url=url, phone=PHONE, card=CARD)
    add(kv, "broke", keys["broke"], project="alpha", base_url=url, priority=5)
    add(kv, "healthy", keys["healthy"], project="alpha", base_url=url)
    return keys


def test_rotation_lands_on_the_key_that_serves_a_chat_not_the_broke_one(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    keys = alpha(fake_openai, cli)
    result = cli("rotate", "--project", "alpha")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "rotated alpha: dead -> healthy (manual)"
    assert lines[1] == "  skipped broke: quota_exhausted (chat probe: code=insufficient_quota)"
    assert lines[2] == (
        "  checked healthy with a 1-token chat completion: 4 requests,"
        " 2 chat completions of ~11 tokens"
    )
    doc = open_vault(cli.home).read()
    assert actives(doc, "alpha") == ["healthy"]
    broke = by_name(doc)["broke"].health
    assert broke is not None and broke.status == "quota_exhausted"  # stored: not tried again
    assert fake_openai.count(keys["dead"]) == 0  # the key being replaced costs nothing
    assert fake_openai.count(keys["broke"], "chat") == 1
    assert fake_openai.count(keys["healthy"], "chat") == 1


def test_json_reports_the_skipped_keys_and_the_cost(fake_openai: FakeOpenAI, cli: Cli) -> None:
    alpha(fake_openai, cli)
    report = json.loads(cli.ok("rotate", "--project", "alpha", "--dry-run", "--json").out)
    assert (report["new"], report["verify"], report["requests"]) == ("healthy", "chat", 4)
    assert report["chat_completions"] == 2
    assert report["skipped"] == [
        {"name": "broke", "reason": "quota_exhausted (chat probe: code=insufficient_quota)"}
    ]


@pytest.mark.slow
def test_models_only_is_a_config_choice_and_says_its_cost(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    """For users who want no spend: free, but blind to credit (so it lands on the broke key)."""
    write_config(cli.home, '[rotation]\nverify = "models"\n')
    keys = alpha(fake_openai, cli)
    result = cli("rotate", "--project", "alpha")
    assert result.code == 0, result.err
    assert "dead -> broke" in result.out
    assert "checked broke with GET /models: 1 request" in result.out
    assert fake_openai.count(keys["broke"], "chat") == 0
    forced = cli("rotate", "--project", "alpha", "--verify", "chat", "--dry-run")
    assert "broke -> healthy" in forced.out  # the option wins over the config
    bad = cli("rotate", "--project", "alpha", "--verify", "chat", "--no-check")
    assert bad.code == 2


def test_no_check_trusts_stored_results_and_sends_nothing(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    alpha(fake_openai, cli)
    before = sum(fake_openai.stats.by_key.values())
    result = cli("rotate", "--project", "alpha", "--no-check")
    assert result.code == 0, result.err
    assert "dead -> broke" in result.out  # never checked, so trusted: the user's choice
    assert "not checked now (--no-check): stored results trusted, 0 requests" in result.out
    assert sum(fake_openai.stats.by_key.values()) == before


@pytest.fixture
def tls_env(test_ca: Any, tmp_path: Path) -> dict[str, str]:
    """The CLI trusts the test CA: https goes through a proxy (plain http never does)."""
    pem = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(pem))
    return {"SSL_CERT_FILE": str(pem)}


@pytest.mark.slow
def test_network_down_is_not_key_failure_and_changes_nothing(
    fake_openai_tls: FakeOpenAI, cli: Cli, tls_env: dict[str, str]
) -> None:
    fake_openai = fake_openai_tls
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "side-main", fake_openai.add_key("ok"), project="side", base_url=url, phone=PHONE)
    for i in range(4):
        add(kv, f"side-{i}", fake_openai.add_key("ok"), project="side", base_url=url, card=CARD)
    assert cli("check", "--project", "side", env=tls_env).code == 0  # 5 keys, all ok
    before = files(cli.home)
    for extra in (("--dry-run",), ()):
        dead_proxy = ("--proxy", "http://127.0.0.1:1")
        result = cli("rotate", "--project", "side", *dead_proxy, *extra, env=tls_env)
        assert result.code == 1
        lines = result.err.splitlines()
        assert lines[0] == (
            "keyvault: error: could not check any candidate in project 'side': the network or"
            " the API failed, not the keys; nothing was changed"
        )
        assert lines[1].startswith("keyvault:   side-0: network_error (models probe: connect")
        assert lines[2] == (
            f"keyvault:   side-1: not tried: 127.0.0.1:{fake_openai.port} did not answer for"
            " an earlier key"
        )
        hint = lines[-1]
        assert hint.startswith("keyvault: hint: check the network and the proxy")
        assert "phone" not in result.err and "no healthy standby key" not in result.err
        assert files(cli.home) == before  # no result stored, no switch
    doc = open_vault(cli.home).read()
    assert all(e.health is not None and e.health.ok for e in doc.entries)


@pytest.fixture
def old_vault(fake_openai: FakeOpenAI, cli: Cli) -> Cli:
    """Two projects whose every key is 97 days old, with `max_age_days = 90`."""
    write_config(cli.home, "[rotation]\nmax_age_days = 90\n")
    kv = open_vault(cli.home)
    created = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=97)).isoformat()
    url = fake_openai.base_url
    for project in ("p1", "p2"):
        for i in range(3):
            key = fake_openai.add_key("ok")
            add(kv, f"{project}-{i}", key, project=project, base_url=url, created=created)
    add(kv, "spare-phone-key", fake_openai.add_key("ok"), project="p3", phone=PHONE, card=CARD)
    return cli


def test_due_says_why_each_key_is_out_and_the_long_hint_once(old_vault: Cli) -> None:
    result = old_vault("rotate", "--due")
    assert result.code == 1
    err = result.err.splitlines()
    for project in ("p1", "p2"):
        at = err.index(
            f"keyvault: warning: {project}: no healthy standby key in project '{project}'"
        )
        assert err[at + 1 : at + 3] == [
            f"keyvault:   {project}-1: too old: 97 d ≥ 90",
            f"keyvault:   {project}-2: too old: 97 d ≥ 90",
        ]
    hints = [line for line in err if line.startswith("keyvault: hint:")]
    assert len(hints) == 1  # the phone/card hint once per run, not once per project
    assert f"{PHONE} (1 free)" in hints[0] and CARD in hints[0]
    assert "keyvault add NAME --project PROJECT" in hints[0]
    report = json.loads(old_vault("rotate", "--due", "--json").out)
    assert [f["details"] for f in report["failures"]] == [
        ["p1-1: too old: 97 d ≥ 90", "p1-2: too old: 97 d ≥ 90"],
        ["p2-1: too old: 97 d ≥ 90", "p2-2: too old: 97 d ≥ 90"],
    ]


@pytest.mark.slow
def test_each_reason_is_short_and_in_local_time(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """`cooling down until 15:21` (local), `quota_exhausted 2 h ago`, `retired`."""
    url = fake_openai.base_url
    two_hours_ago = Clock(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    kv = open_vault(cli.home, clock=two_hours_ago)
    add(kv, "main", fake_openai.add_key("invalid"), project="p", base_url=url)
    add(kv, "broke", fake_openai.add_key("quota"), project="p", base_url=url)
    add(kv, "gone", fake_openai.add_key("ok"), project="p", base_url=url, status="retired")
    deep = CheckOptions(deep=True, max_retry_wait=0)
    run_checks(kv, select_entries(kv.read(), names=["broke"]), deep)
    add(
        kv, "busy", fake_openai.add_key("rate_limited", retry_after="30"), project="p", base_url=url
    )
    assert cli("check", "busy", "--max-wait", "0").code == 5  # now: cooling down for 60 min
    checked = by_name(open_vault(cli.home).read())["busy"].health
    assert checked is not None
    until = dt.datetime.fromisoformat(checked.checked_at) + dt.timedelta(minutes=60)
    result = cli("rotate", "--project", "p", env={"TZ": "Asia/Shanghai"})
    assert result.code == 1
    reasons = [line.removeprefix("keyvault:   ") for line in result.err.splitlines()[1:-1]]
    shanghai = until.astimezone(ZoneInfo("Asia/Shanghai"))
    same_day = shanghai.date() == dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    expected = shanghai.strftime("%H:%M") if same_day else shanghai.strftime("%Y-%m-%d %H:%M CST")
    assert reasons == [  # in rank order (here: by name)
        "broke: quota_exhausted 2 h ago",
        f"busy: cooling down until {expected}",
        "gone: retired",
    ]
    hint = result.err.splitlines()[-1]
    assert hint.startswith("keyvault: hint: recharged or fixed a key? `keyvault rotate --to NAME`")
    in_utc = cli("rotate", "--project", "p", "--utc", env={"TZ": "Asia/Shanghai"})
    assert re.search(r"busy: cooling down until (\d{4}-\d\d-\d\d )?\d\d:\d\d UTC", in_utc.err)


def test_to_checks_a_recharged_key_again(fake_openai: FakeOpenAI, cli: Cli) -> None:
    keys = alpha(fake_openai, cli)
    cli("rotate", "--project", "alpha")  # broke is now stored quota_exhausted
    fake_openai.keys[keys["broke"]].behaviour = "ok"  # the user recharged the card
    result = cli("rotate", "--to", "broke")
    assert result.code == 0, result.err
    assert "healthy -> broke" in result.out
    assert fake_openai.count(keys["broke"], "chat") == 2


@pytest.mark.slow
def test_rotate_to_a_key_whose_network_fails_is_not_called_bad(
    fake_openai_tls: FakeOpenAI, cli: Cli, tls_env: dict[str, str]
) -> None:
    alpha(fake_openai_tls, cli)
    result = cli("rotate", "--to", "healthy", "--proxy", "http://127.0.0.1:1", env=tls_env)
    assert result.code == 1
    assert "the network or the API failed, not the keys" in result.err
    assert "failed its check" not in result.err

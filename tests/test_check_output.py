"""Issue 14's `check` reproductions, against the local fake OpenAI server: the human output
says what to do, with the evidence that matters, the active key marked, rows in a stable
order and a summary; waits for rate limits are bounded and shown; `--balance` keeps where a
credit figure came from; times are local unless `--utc`."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import PASSPHRASE, Cli, add, base_env, by_name, open_vault, write_config
from vault.model.health import ADVICE


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One vault with a key of each common outcome, checked once with `check --all --deep`."""
    root = tmp_path_factory.mktemp("mixed")
    with FakeOpenAI() as server:
        kv = open_vault(root / "kv")
        url = server.base_url
        add(kv, "main", server.add_key("ok"), project="work", base_url=url)
        add(kv, "broke", server.add_key("quota"), project="work", base_url=url)
        add(kv, "old", server.add_key("invalid"), project="work", base_url=url)
        add(kv, "old-2", server.add_key("invalid"), project="work", base_url=url)
        busy = server.add_key("rate_limited", retry_after="30")
        add(kv, "busy", busy, project="work", base_url=url)
        add(kv, "no-v1", server.add_key("ok"), project="work", base_url=url[:-3] + "/v2")
        add(kv, "side", server.add_key("ok"), project="side", base_url=url)
        cli = Cli(root / "kv", {**base_env(root / "kv", root), "KEYVAULT_PASSPHRASE": PASSPHRASE})
        yield {"cli": cli, "result": cli("check", "--all", "--deep", "--max-wait", "0")}


def test_rows_mark_the_active_keys_and_end_with_a_summary(mixed: dict[str, Any]) -> None:
    result = mixed["result"]
    assert result.code == 5
    header, *rows, summary = result.out.splitlines()
    assert header.split()[:3] == ["NAME", "PROJECT", "STATUS"]
    names = [row.split()[1] if row.startswith("*") else row.split()[0] for row in rows]
    assert names == ["main", "broke", "old", "old-2", "busy", "no-v1", "side"]  # vault order
    assert [row[0] for row in rows] == ["*", " ", " ", " ", " ", " ", "*"]
    assert summary == (
        "2 ok, 2 invalid, 1 quota_exhausted, 1 rate_limited, 1 unexpected;"
        " * marks a project's active key"
    )


def test_each_problem_has_its_evidence_and_each_status_one_line_of_advice(
    mixed: dict[str, Any],
) -> None:
    err = mixed["result"].err.splitlines()
    by_key = {line.split(": ")[0]: line for line in err if not line.startswith(("what", " "))}
    assert by_key["broke"].startswith(
        "broke: quota_exhausted: chat probe, http 429, code=insufficient_quota;"
    )
    assert by_key["no-v1"].startswith(
        "no-v1: unexpected: models probe, http 404 (does base_url end in /v1?),"
        " base_url http://127.0.0.1:"
    )
    assert re.search(r"busy: rate_limited: .*retry after \d\d:\d\d:\d\d;", by_key["busy"])
    assert "Incorrect API key provided: sk-proj-…" in by_key["old"]
    assert "*****" not in mixed["result"].err  # the API's 150-asterisk mask is shortened
    advice = err[err.index("what to do:") + 1 :]
    assert advice == [
        f"  {status}: {ADVICE[status]}"
        for status in ("invalid", "quota_exhausted", "rate_limited", "unexpected")
    ]


@pytest.mark.slow
def test_deep_rows_keep_the_vault_order_whatever_finishes_first(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "first", fake_openai.add_key("slow", slow_s=0.5, times=1), project="p", base_url=url)
    for name in ("second", "third", "fourth"):
        add(kv, name, fake_openai.add_key("ok"), project="p", base_url=url)
    result = cli("check", "--all", "--deep", "--json")
    assert [row["name"] for row in json.loads(result.out)] == ["first", "second", "third", "fourth"]


def test_show_prints_health_as_readable_lines(mixed: dict[str, Any]) -> None:
    out = mixed["cli"].ok("show", "broke").out
    health = [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("health")]
    assert health[0].startswith("quota_exhausted (chat probe, ")
    assert health[1].startswith("chat probe, http 429, code=insufficient_quota;")
    assert health[2] == f"what to do: {ADVICE['quota_exhausted']}"
    assert "{" not in out


@pytest.mark.slow
def test_times_are_local_unless_utc(mixed: dict[str, Any]) -> None:
    cli: Cli = mixed["cli"]
    local = cli("check", "main", env={"TZ": "Asia/Shanghai"})
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CST", local.out)
    utc = cli("check", "main", "--utc", env={"TZ": "Asia/Shanghai"})
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", utc.out) and "CST" not in utc.out
    row = json.loads(cli("check", "main", "--json", env={"TZ": "Asia/Shanghai"}).out)[0]
    assert row["checked_at"].endswith("Z")  # JSON stays UTC ISO
    shown = cli("show", "main", "--utc", env={"TZ": "Asia/Shanghai"}).out
    assert "CST" not in shown and re.search(r"added_at +\d{4}-\d\d-\d\d \d\d:\d\d UTC", shown)
    assert "CST" in cli("log", "main", env={"TZ": "Asia/Shanghai"}).out


@pytest.mark.slow
def test_waiting_for_rate_limits_is_bounded(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """30 keys, 5 rate-limited with `Retry-After: 20`: the cap ends the wait; those keys are
    reported rate_limited with their retry time, not retried forever."""
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    limited = []
    for i in range(30):
        behaviour = "rate_limited" if i % 6 == 0 else "ok"
        key = fake_openai.add_key(behaviour, retry_after="20")
        add(kv, f"k{i:02}", key, project="p", base_url=url)
        if behaviour != "ok":
            limited.append(f"k{i:02}")
    started = time.monotonic()
    result = cli("check", "--all", "--max-wait", "5", "--json")
    assert time.monotonic() - started < 15  # 20 s > the cap: nobody waits
    assert result.code == 5
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert sorted(n for n, r in rows.items() if r["status"] == "rate_limited") == limited
    for name in limited:
        assert rows[name]["retry_after_s"] == 20 and rows[name]["attempts"] == 1
        assert rows[name]["retry_at"] > rows[name]["checked_at"]
    assert re.search(rf"{limited[0]}: rate_limited: .*retry after \d\d:\d\d:\d\d", result.err)


@pytest.mark.slow
def test_the_cap_is_the_total_wait_of_one_key(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """`[health] max_wait = 1`: one 1-second wait is honoured, the second would exceed the
    cap, so the key is reported after two attempts instead of three."""
    write_config(cli.home, "[health]\nmax_wait = 1\n")
    kv = open_vault(cli.home)
    add(
        kv, "k", fake_openai.add_key("rate_limited", retry_after="1"), base_url=fake_openai.base_url
    )
    row = json.loads(cli("check", "k", "--json").out)[0]
    assert (row["status"], row["attempts"]) == ("rate_limited", 2)


@pytest.mark.slow
def test_progress_says_whom_it_waits_for_and_until_when(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    for i in range(4):
        add(kv, f"k{i}", fake_openai.add_key("ok"), project="p", base_url=url)
    waiting = fake_openai.add_key("rate_limited", retry_after="2", times=1)
    add(kv, "waiting-key", waiting, project="p", base_url=url)
    seen = _stderr_on_a_terminal(cli, "check", "--all")
    assert re.search(rb"waiting for waiting-key until \d\d:\d\d:\d\d", seen), seen
    assert b"checking 5/5 [" in seen


def _stderr_on_a_terminal(cli: Cli, *args: str) -> bytes:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault", *args],
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 20)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    proc.wait(20)
    os.close(master)
    return seen


@pytest.mark.slow
def test_balance_keeps_where_the_credit_came_from_and_logs_it(cli: Cli) -> None:
    with FakeOpenAI(relay=True) as relay:
        kv = open_vault(cli.home)
        key = relay.add_key("ok", hard_limit_usd=10.0, total_usage_cents=250)
        add(kv, "rich", key, project="r", base_url=relay.base_url, credit_usd=20)
        typed = by_name(open_vault(cli.home).read())["rich"]
        assert (typed.credit_source, typed.credit_at) == ("typed", typed.added_at)
        result = cli("check", "rich", "--balance")
    assert result.code == 0, result.err
    assert re.search(
        r"rich: credit \$20\.00 \(typed [^)]+\) -> \$7\.50, read from the relay now", result.out
    )
    entry = by_name(open_vault(cli.home).read())["rich"]
    assert (entry.credit_usd, entry.credit_source) == (7.5, "relay")
    assert entry.credit_at is not None and entry.credit_at.endswith("Z")
    log = json.loads(cli.ok("log", "rich", "--json").out)
    credit = [e for e in log if e["action"] == "credit"]
    assert credit == [
        {
            "at": credit[0]["at"],
            "action": "credit",
            "entry": entry.id,
            "name": "rich",
            "project": "r",
            "credit_usd": 7.5,
            "previous": 20.0,
            "source": "relay",
            "previous_source": "typed",
        }
    ]
    shown = cli.ok("show", "rich").out
    assert re.search(r"credit_usd +\$7\.50 \(read from the relay \d{4}-", shown)
    as_json = json.loads(cli.ok("show", "rich", "--json").out)
    assert as_json["credit_source"] == "relay" and as_json["credit_at"].endswith("Z")
    cli.ok("edit", "rich", "--credit", "12")
    again = by_name(open_vault(cli.home).read())["rich"]
    assert (again.credit_usd, again.credit_source) == (12.0, "typed")
    last = json.loads(cli.ok("log", "rich", "--json").out)[-1]
    assert (last["action"], last["previous"], last["source"]) == ("credit", 7.5, "typed")

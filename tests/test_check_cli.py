"""`keyvault check` as a user runs it: a real process against the local fake OpenAI server."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.fake_proxy import ForwardProxy
from tests.helpers import (
    Cli,
    actives,
    add,
    by_name,
    make_cli,
    make_key,
    open_vault,
    write_config,
)
from vault.health.checking import CheckOptions, merge_results, probe_entries
from vault.health.policy import HealthPolicy
from vault.model import codec
from vault.store.inventory import edit_key, remove_key

# Every row of the reference error table that a stored key can reach (the "no Authorization
# header" row cannot: a key is always sent), plus the rate-limit variant that must not retry.
# name → (server behaviour, extra key spec, expected status, http status)
TABLE: dict[str, tuple[str, dict[str, Any], str, int]] = {
    "wrong-key": ("invalid", {}, "invalid", 401),
    "no-org": ("no_organization", {}, "forbidden", 401),
    "ip-allowlist": ("ip_not_authorized", {}, "forbidden", 401),
    "missing-scope": ("missing_scopes", {}, "forbidden", 401),
    "region": ("region_blocked", {}, "region_blocked", 403),
    "no-model": ("model_not_found", {}, "model_unavailable", 404),
    "no-credit": ("quota", {}, "quota_exhausted", 429),
    "no-credit-old": ("quota_old", {}, "quota_exhausted", 429),
    "rate-limited": ("rate_limited", {"retry_after": "30"}, "rate_limited", 429),
    "too-large": ("too_large", {}, "rate_limited", 429),
    "server-error": ("server_error", {}, "server_error", 500),
    "healthy": ("ok", {}, "ok", 200),
}


@pytest.fixture(scope="module")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One vault holding a key per table row, checked once with `check --all --deep --json`."""
    root = tmp_path_factory.mktemp("table")
    with FakeOpenAI() as server:
        kv = open_vault(root / "kv")
        keys = {}
        for name, (behaviour, spec, _, _) in TABLE.items():
            keys[name] = server.add_key(behaviour, **spec)
            add(kv, name, keys[name], project="table", base_url=server.base_url)
        # the org header reaches the server: a key bound to org-a checked with org-b
        keys["wrong-org"] = server.add_key("ok", org_id="org-" + "a" * 24)
        add(
            kv,
            "wrong-org",
            keys["wrong-org"],
            project="table",
            base_url=server.base_url,
            org_id="org-" + "b" * 24,
        )
        cli = make_cli(root / "kv", root)
        result = cli("check", "--all", "--deep", "--json")
        yield {"result": result, "keys": keys, "doc": kv.read(), "cli": cli}


@pytest.mark.slow
@pytest.mark.parametrize("name", [*TABLE, "wrong-org"])
def test_every_error_row_is_classified_and_stored(table_run: dict[str, Any], name: str) -> None:
    expected, http = (TABLE[name][2], TABLE[name][3]) if name in TABLE else ("forbidden", 401)
    rows = {row["name"]: row for row in json.loads(table_run["result"].out)}
    assert rows[name]["status"] == expected
    assert rows[name]["http_status"] == http
    record = by_name(table_run["doc"])[name].health
    assert record is not None
    stored = codec.health_json(record)
    assert stored["status"] == expected
    assert stored["checked_at"] == rows[name]["checked_at"]
    hard = expected in {"invalid", "forbidden", "region_blocked", "quota_exhausted"}
    assert stored["consecutive_failures"] == (1 if hard else 0)
    assert (stored["last_ok_at"] is not None) == (expected == "ok")


@pytest.mark.slow
def test_a_bad_key_makes_check_exit_5_and_no_key_is_printed(table_run: dict[str, Any]) -> None:
    result = table_run["result"]
    assert result.code == 5, result.err
    # for cron's mail: the verdict, the evidence, and the server's words with the key short
    line = next(x for x in result.err.splitlines() if x.startswith("wrong-key: "))
    assert line.startswith("wrong-key: invalid: models probe, http 401, code=invalid_api_key;")
    assert 'server said "Incorrect API key provided: sk-proj-…' in line
    assert "*****" not in result.err
    for key in table_run["keys"].values():
        assert key not in result.out
        assert key not in result.err
        assert key[8:-4] not in result.out  # not even the middle the API shows masked
    events = [e for e in table_run["doc"].history if e.action == "check"]
    assert len(events) == len(TABLE) + 1  # one per key: each went from unchecked to a status


@pytest.mark.slow
def test_an_unchanged_status_adds_no_history(table_run: dict[str, Any]) -> None:
    cli: Cli = table_run["cli"]
    before = len(open_vault(cli.home).read().history)
    assert cli("check", "healthy", "wrong-key").code == 5
    doc = open_vault(cli.home).read()
    assert len(doc.history) == before
    health = by_name(doc)["wrong-key"].health
    assert health is not None and health.consecutive_failures == 2


def test_table_output_and_exit_0_when_all_ok(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    for name in ("a", "b"):
        add(kv, name, fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    result = cli("check", "--project", "p", "--deep")
    assert result.code == 0, result.err
    header, *rows, summary = result.out.splitlines()
    assert header.split() == [
        "NAME",
        "PROJECT",
        "STATUS",
        "LATENCY",
        "MODELS",
        "TIER",
        "LAST",
        "OK",
    ]
    assert len(rows) == 2
    assert all(" ok " in row and " ms " in row and "10k rpm / 200k tpm" in row for row in rows)
    assert rows[0].startswith("*  a ") and rows[1].startswith("   b ")  # a is the active key
    assert summary == "2 ok; * marks a project's active key"
    assert "\r" not in result.err  # no progress bar without a terminal


@pytest.mark.slow
def test_selection_names_project_all(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    add(kv, "x1", fake_openai.add_key("ok"), project="x", base_url=fake_openai.base_url)
    add(kv, "y1", fake_openai.add_key("invalid"), project="y", base_url=fake_openai.base_url)
    assert cli("check", "--project", "x").code == 0
    assert cli("check", "x1", "y1").code == 5
    bad = cli("check", "x1", "--all")
    assert bad.code == 2
    assert "not several" in bad.err
    missing = cli("check", "nope")
    assert missing.code == 1
    assert "no entry named 'nope'" in missing.err


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_results(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    fast = {f"fast{i}": fake_openai.add_key("ok") for i in range(3)}
    for name, key in fast.items():
        add(kv, name, key, project="p", base_url=fake_openai.base_url)
    add(
        kv,
        "slow",
        fake_openai.add_key("slow", slow_s=30),
        project="p",
        base_url=fake_openai.base_url,
    )
    # Ctrl-C as at a terminal: a suite started in the background (`pytest &` from a script)
    # ignores SIGINT, and the child would inherit that and never see the one sent below
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vault", "check", "--all"],
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    finally:
        signal.signal(signal.SIGINT, ignored)
    try:
        deadline = time.monotonic() + 20
        while sum(fake_openai.count(k, "models") for k in fast.values()) < 3:
            assert time.monotonic() < deadline, "the server never answered the fast keys"
            time.sleep(0.02)
        time.sleep(1.0)  # let the client take in the answers it has (the slow key takes 30 s)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: saved 3 of 4 results" in err
    doc = open_vault(cli.home).read()
    entries = by_name(doc)
    assert all((h := entries[name].health) and h.status == "ok" for name in fast)
    assert entries["slow"].health is None
    assert out.count(" ok ") == 3  # the finished rows are still shown


@pytest.mark.slow
def test_disable_after_hard_failures_and_enable_when_it_passes(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    write_config(cli.home, "[health]\ndisable_after = 2\n")
    kv = open_vault(cli.home)
    active_key, spare_key, paused_key = (fake_openai.add_key("ok") for _ in range(3))
    add(kv, "main", active_key, project="p", base_url=fake_openai.base_url)
    add(kv, "spare", spare_key, project="p", base_url=fake_openai.base_url)
    add(kv, "paused", paused_key, project="p", base_url=fake_openai.base_url)
    edit_key(kv, "paused", {"status": "disabled"})  # disabled by the user, not the policy
    for key in (active_key, spare_key, paused_key):
        fake_openai.keys[key].behaviour = "region_blocked"
    assert cli("check", "--all").code == 5
    assert by_name(open_vault(cli.home).read())["spare"].status == "standby"  # 1 of 2
    second = cli("check", "--all")
    assert second.code == 5
    assert "spare: disabled" in second.err
    doc = open_vault(cli.home).read()
    assert by_name(doc)["spare"].status == "disabled"
    assert by_name(doc)["main"].status == "active"  # the active key is left to rotation
    assert [e.detail["reason"] for e in doc.history if e.action == "disable"] == [
        "2 hard failures in a row (last: region_blocked)"
    ]
    for key in (active_key, spare_key, paused_key):
        fake_openai.keys[key].behaviour = "ok"
    assert cli("check", "--all").code == 0
    doc = open_vault(cli.home).read()
    assert by_name(doc)["spare"].status == "standby"
    assert by_name(doc)["paused"].status == "disabled"  # the user's choice stands
    assert [e.name for e in doc.history if e.action == "enable"] == ["spare"]
    assert actives(doc, "p") == ["main"]


def test_balance_stores_remaining_credit_for_relay_keys(cli: Cli) -> None:
    with FakeOpenAI(relay=True) as relay:
        kv = open_vault(cli.home)
        rich = relay.add_key("ok", hard_limit_usd=10.0, total_usage_cents=250)
        broke = relay.add_key("ok", hard_limit_usd=5.0, total_usage_cents=500)
        add(kv, "rich", rich, project="r", base_url=relay.base_url)
        add(kv, "broke", broke, project="r", base_url=relay.base_url)
        result = cli("check", "--project", "r", "--balance", "--json")
    assert result.code == 5
    rows = {r["name"]: r for r in json.loads(result.out)}
    assert rows["rich"]["balance_usd"] == 7.5
    assert rows["broke"]["status"] == "quota_exhausted"
    entries = by_name(open_vault(cli.home).read())
    assert entries["rich"].credit_usd == 7.5
    assert entries["broke"].credit_usd == 0.0


@pytest.fixture
def tls_env(test_ca: Any, tmp_path: Path) -> dict[str, str]:
    """The CLI trusts the test CA (httpx reads SSL_CERT_FILE): https through a proxy is a
    CONNECT tunnel; plain http never goes through one (tests/test_security_proxy.py)."""
    pem = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(pem))
    return {"SSL_CERT_FILE": str(pem)}


def test_proxy_from_config_carries_the_checks(
    fake_openai_tls: FakeOpenAI, forward_proxy: ForwardProxy, cli: Cli, tls_env: dict[str, str]
) -> None:
    write_config(cli.home, f'proxy = "{forward_proxy.url}"\n')
    kv = open_vault(cli.home)
    add(kv, "k", fake_openai_tls.add_key("ok"), project="p", base_url=fake_openai_tls.base_url)
    assert cli("check", "k", env=tls_env).code == 0
    assert sum(forward_proxy.connects.values()) >= 1
    assert not forward_proxy.forwards and not forward_proxy.seen_authorization


def test_socks5_proxy_from_the_option_wins_over_config(
    fake_openai_tls: FakeOpenAI,
    forward_proxy: ForwardProxy,
    socks_proxy: ForwardProxy,
    cli: Cli,
    tls_env: dict[str, str],
) -> None:
    """`--proxy socks5://…` (Clash, v2ray, `ssh -D`) carries the checks; config's proxy waits."""
    write_config(cli.home, f'proxy = "{forward_proxy.url}"\n')
    kv = open_vault(cli.home)
    key = fake_openai_tls.add_key("ok")
    add(kv, "k", key, project="p", base_url=fake_openai_tls.base_url)
    for scheme in ("socks5", "socks5h"):
        url = socks_proxy.url.replace("socks5", scheme, 1)
        result = cli("check", "k", "--proxy", url, "--json", env=tls_env)
        assert result.code == 0, result.err
        assert json.loads(result.out)[0]["status"] == "ok"
    assert sum(socks_proxy.connects.values()) >= 2
    assert sum(forward_proxy.forwards.values()) + sum(forward_proxy.connects.values()) == 0
    assert fake_openai_tls.count(key, "models") == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad",
    ["garbage", "ftp://127.0.0.1:21", "http://", "http://127.0.0.1:99999", "socks4://127.0.0.1:1"],
)
def test_a_bad_proxy_is_one_clear_line(bad: str, fake_openai: FakeOpenAI, cli: Cli) -> None:
    """From --proxy (exit 2), config.toml or the environment (exit 1); never a traceback, and
    never the URL (which may hold a password)."""
    kv = open_vault(cli.home)
    add(kv, "k", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    secret_bad = bad.replace("://", "://user:hunter2@", 1) if "://" in bad else bad
    option = cli("check", "k", "--proxy", secret_bad)
    assert option.code == 2 and "hunter2" not in option.err and "Traceback" not in option.err
    write_config(cli.home, f'proxy = "{secret_bad}"\n')
    config = cli("check", "k")
    assert config.code == 1 and "bad value for proxy" in config.err
    assert "hunter2" not in config.err and "Traceback" not in config.err
    write_config(cli.home, "")
    environ = cli("check", "k", env={"ALL_PROXY": secret_bad, "HTTPS_PROXY": secret_bad})
    # refused, or checked: a plain-http (loopback) target never goes through a proxy
    assert environ.code in (0, 1, 5), environ.err
    assert "hunter2" not in environ.err and "Traceback" not in environ.err


def test_admin_keys_are_checked_against_the_admin_api(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    admin = fake_openai.admin.add_admin_key()
    add(kv, "org-admin", admin, base_url=fake_openai.base_url)
    revoked = fake_openai.admin.add_admin_key()
    add(kv, "old-admin", revoked, base_url=fake_openai.base_url)
    fake_openai.admin.admin_keys.discard(revoked)
    result = cli("check", "--all", "--json")
    rows = {r["name"]: r for r in json.loads(result.out)}
    assert rows["org-admin"]["status"] == "ok"
    assert rows["org-admin"]["evidence"].startswith("admin api")
    assert rows["old-admin"]["status"] == "invalid"
    assert fake_openai.count(admin, "models") == 0  # never sent to the model API
    assert result.code == 5


def test_progress_bar_on_a_terminal(fake_openai: FakeOpenAI, cli: Cli) -> None:
    kv = open_vault(cli.home)
    for i in range(5):
        add(kv, f"k{i}", fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vault", "check", "--all"],
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
    assert proc.returncode == 0
    assert b"checking 5/5 [" in seen


def test_results_follow_renames_and_skip_removed_or_rekeyed_entries(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    kv = open_vault(tmp_path / "kv")
    for name in ("keep", "rename", "remove", "rekey"):
        add(kv, name, fake_openai.add_key("ok"), project="p", base_url=fake_openai.base_url)
    probed = probe_entries(kv.read().entries, CheckOptions(), proxy=None, clock=kv.clock)
    edit_key(kv, "rename", {"name": "renamed"})  # while the network ran
    remove_key(kv, "remove")
    from vault.model.secret import Secret

    edit_key(kv, "rekey", {}, secret=Secret(fake_openai.add_key("ok")))
    now = kv.now_iso()
    checked = kv.transact(lambda doc: merge_results(doc, probed, HealthPolicy(), now))
    actions = {c.name: c.action for c in checked}
    assert actions == {
        "keep": None,
        "renamed": None,
        "remove": "dropped: removed",
        "rekey": "dropped: replaced",
    }
    entries = by_name(kv.read())
    assert entries["renamed"].health is not None
    assert entries["rekey"].health is None
    assert "remove" not in entries


def test_a_shallow_ok_does_not_clear_a_deep_quota_verdict(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    kv = open_vault(cli.home)
    add(kv, "broke", fake_openai.add_key("quota"), project="p", base_url=fake_openai.base_url)
    assert cli("check", "broke", "--deep").code == 5
    shallow = cli("check", "broke", "--json")
    assert shallow.code == 5  # /models still answers 200: that proves nothing about credit
    row = json.loads(shallow.out)[0]
    assert row["status"] == "quota_exhausted"
    assert "--deep" in row["evidence"]


@pytest.mark.parametrize("ca", ["missing", "not a certificate"])
def test_a_broken_ssl_cert_file_is_named_not_called_an_output_error(
    cli: Cli, tmp_path: Path, ca: str
) -> None:
    """SSL_CERT_FILE (read by httpx, as by curl and the SDK) naming a removed file or one
    without a certificate: `check` and `usage` said "cannot write the output (no such file or
    directory)". They now name the variable and its file, and leave the vault as it was."""
    bundle = tmp_path / "corp-ca.pem"
    if ca != "missing":
        bundle.write_text(ca)
    kv = open_vault(cli.home)
    add(kv, "main", make_key(), project="p", base_url="https://relay.invalid/v1")
    add(kv, "org-admin", make_key("sk-admin-", 58), base_url="https://relay.invalid/v1")
    before = (cli.home / "vault.age").read_bytes()
    for command in (["check"], ["usage"]):
        result = cli(*command, env={"SSL_CERT_FILE": str(bundle)})
        assert result.code == 1, result.err
        first = result.err.splitlines()[0]
        assert first.startswith(
            f"keyvault: error: cannot load the CA certificates from SSL_CERT_FILE ({bundle}): "
        ), first
        assert "fix or unset SSL_CERT_FILE" in result.err
    assert (cli.home / "vault.age").read_bytes() == before

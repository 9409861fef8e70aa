"""Answers that did not come from the API: a CDN's block page, a proxy's or captive portal's
login, a body cut short, a wait no server means. None of them is a verdict on the key, so none
may disable a key, make a project due or rotate away from a working key (real CLI processes,
the fake server on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import signal
import subprocess
import sys
import time
import zlib

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, actives, add, by_name, make_key, open_vault, write_config
from tests.hostile_http import HostileServer
from vault.health import HealthResult, ProbeTarget, Status, check
from vault.model.secret import Secret
from vault.rotation.candidates import rank
from vault.rotation.policy import RotationPolicy, Verify

S = Status

CLOUDFLARE = "Attention Required! | Cloudflare"


@pytest.mark.slow
def test_a_cdn_block_page_neither_rotates_nor_disables(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """The active key and a standby key sit behind Cloudflare's 403 page (the API's own host
    blocks this network); a third standby key works. `check --rotate` from cron must keep the
    active key and disable nothing, and still show what the page said."""
    write_config(cli.home, "[health]\ndisable_after = 1\n")
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    blocked = fake_openai.add_key("page", status=403, message=CLOUDFLARE)
    login = fake_openai.add_key("page", status=401, message="401 Authorization Required")
    add(kv, "main", blocked, project="work", base_url=url, activate=True)
    add(kv, "spare", login, project="work", base_url=url, priority=5)
    add(kv, "good", fake_openai.add_key("ok"), project="work", base_url=url)
    result = cli("check", "--rotate", "--json")
    assert result.code == 5, result.err  # not ok, but nothing to rotate for
    report = json.loads(result.out)
    statuses = {c["name"]: (c["status"], c["action"]) for c in report["checked"]}
    assert statuses == {
        "main": ("unexpected", None),
        "spare": ("unexpected", None),
        "good": ("ok", None),
    }
    assert report["rotate"]["rotations"] == []
    assert f'server said "{CLOUDFLARE}"' in result.err
    assert "http 403 with a non-json body, not an api verdict" in result.err
    doc = open_vault(cli.home).read()
    assert actives(doc, "work") == ["main"]
    spare = by_name(doc)["spare"]
    assert spare.status == "standby" and spare.health is not None
    assert spare.health.consecutive_failures == 0
    assert cli("rotate", "--due").code == 0  # and a later cron run agrees: nothing is due
    assert actives(open_vault(cli.home).read(), "work") == ["main"]


# --- bodies that arrive broken ---------------------------------------------------------------

MODELS = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini"}] * 20}).encode()


def _answer(status: int, body: bytes, *headers: str) -> bytes:
    """A raw HTTP/1.1 answer without a length: its body ends where the connection closes."""
    head = [f"HTTP/1.1 {status} X", "content-type: application/json", *headers]
    return ("\r\n".join([*head, "connection: close", "", ""])).encode() + body


async def _no_sleep(_seconds: float) -> None:
    return None


def _check(url: str) -> HealthResult:
    target = ProbeTarget("k", Secret(make_key()), url + "/v1")
    [result] = check([target], sleep=_no_sleep, rand=lambda: 0.0)
    return result


@pytest.mark.parametrize("status", [200, 401])
def test_a_compressed_body_cut_short_is_a_network_error(status: int) -> None:
    """The connection drops in the middle of a gzip body that has no length: HTTP sees a
    complete answer, only the gzip stream knows it stopped early. That is the network's
    failure (retried), not a strange answer and never a bad key."""
    whole = gzip.compress(MODELS)
    cut = _answer(status, whole[: len(whole) // 2], "content-encoding: gzip")
    with HostileServer("raw", payload=cut) as relay:
        result = _check(relay.url)
    assert (result.status, result.error_code) == (S.NETWORK_ERROR, "truncated_body")
    assert result.attempts == 3  # retried like a chunked body cut short
    assert result.evidence == "answer cut short"


def test_a_corrupt_compressed_body_is_not_a_client_bug() -> None:
    """A body that is not the gzip it claims is the server's fault: `unexpected` with the
    encoding named, not keyvault's "client error"."""
    bad = _answer(200, b"\x1f\x8b\x08\x00garbage that is not deflate", "content-encoding: gzip")
    with HostileServer("raw", payload=bad) as relay:
        result = _check(relay.url)
    assert (result.status, result.error_code) == (S.UNEXPECTED, "encoding")
    assert result.evidence == "answer in a corrupt encoding (gzip)"


def test_whole_compressed_and_empty_bodies_still_pass() -> None:
    """The end-marker check must not fail what is whole: gzip, zlib and raw deflate bodies,
    and an empty body that carries a Content-Encoding anyway."""
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    bodies = {
        "gzip": gzip.compress(MODELS),
        "deflate": zlib.compress(MODELS),
        "raw deflate": raw.compress(MODELS) + raw.flush(),
    }
    for name, body in bodies.items():
        coding = "gzip" if name == "gzip" else "deflate"
        answer = _answer(200, body, f"content-encoding: {coding}")
        with HostileServer("raw", payload=answer) as relay:
            assert _check(relay.url).status is S.OK, name
    empty = _answer(401, b"", "content-encoding: gzip")
    with HostileServer("raw", payload=empty) as relay:
        result = _check(relay.url)
    assert (result.status, result.error_code) == (S.UNEXPECTED, None)  # an empty 401: no verdict


# --- waits no server means ------------------------------------------------------------------


@pytest.mark.slow
def test_a_relay_asking_for_years_benches_the_key_for_a_day(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    """`Retry-After: 99999999` (three years) is reported and honoured as one day: the retry
    time shows its date (it is not today's), and rotation leaves the key out until then,
    not until 2029."""
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "main", fake_openai.add_key("ok"), project="work", base_url=url, activate=True)
    slow = fake_openai.add_key("rate_limited", retry_after="99999999")
    add(kv, "spare", slow, project="work", base_url=url)
    result = cli("check", "spare", "--json", "--utc")
    assert result.code == 5, result.err
    [checked] = json.loads(result.out)
    assert checked["retry_after_s"] == 86400.0
    checked_at = dt.datetime.fromisoformat(checked["checked_at"])
    retry_at = dt.datetime.fromisoformat(checked["retry_at"])
    # a day from the server's last answer, which came a moment after the check started
    assert dt.timedelta(days=1) <= retry_at - checked_at < dt.timedelta(days=1, minutes=1)
    tomorrow = f"retry after {retry_at:%Y-%m-%d %H:%M:%S} UTC"
    assert tomorrow in result.err, result.err
    dry = cli("rotate", "--project", "work", "--dry-run", "--utc")
    assert dry.code == 1
    assert f"spare: cooling down until {retry_at:%Y-%m-%d %H:%M} UTC" in dry.err, dry.err


# --- Ctrl-C keeps what was paid for ---------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_during_rotation_keeps_the_verdicts_it_paid_for(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    """The first candidate's chat probe says it has no credit; the second hangs; Ctrl-C.
    Nothing switches, but the paid-for verdict is stored, so the next rotation does not pay
    again to learn it."""
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    add(kv, "main", fake_openai.add_key("ok"), project="work", base_url=url, activate=True)
    broke = fake_openai.add_key("quota")
    add(kv, "broke", broke, project="work", base_url=url, priority=5)
    add(kv, "stuck", fake_openai.add_key("slow", slow_s=30), project="work", base_url=url)
    # Ctrl-C as at a terminal: a suite started in the background ignores SIGINT, and the
    # child would inherit that (see test_check_cli.test_ctrl_c_keeps_the_finished_results)
    ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vault", "rotate", "--project", "work"],
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
        while fake_openai.stats.by_path["models"] < 2:  # broke's two probes, then stuck's
            assert time.monotonic() < deadline, "the rotation never reached the second key"
            time.sleep(0.02)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    doc = open_vault(cli.home).read()
    assert actives(doc, "work") == ["main"]
    entries = by_name(doc)
    stored = entries["broke"].health
    assert stored is not None and stored.status == "quota_exhausted" and stored.probe == "chat"
    assert entries["stuck"].health is None
    ranked = rank(doc, "work", RotationPolicy(), dt.datetime.now(dt.UTC), verify=Verify.CHAT)
    assert [e.name for e in ranked.tryable] == ["stuck"]  # the next rotation skips broke
    assert fake_openai.count(broke, "chat") == 1


# --- a relay that serves other models -------------------------------------------------------


@pytest.mark.slow
def test_rotation_checks_with_the_model_the_relay_serves(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """A relay serving only deepseek-chat answers 404 model_not_found to the chat check's
    gpt-4o-mini: the keys are fine, the model is wrong. Rotation says so and how to change
    it; with `[rotation] model` it verifies with that model and switches."""
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    served = ("deepseek-chat",)
    add(kv, "main", fake_openai.add_key("ok", models=served), project="r", base_url=url)
    spare = fake_openai.add_key("ok", models=served)
    add(kv, "spare", spare, project="r", base_url=url)
    refused = cli("rotate", "--project", "r")
    assert refused.code == 1
    assert "spare: model_unavailable (chat probe: code=model_not_found)" in refused.err
    assert "the check asked for gpt-4o-mini: set `model` under [rotation]" in refused.err
    to = cli("rotate", "--project", "r", "--to", "spare")
    assert to.code == 1 and "set `model` under [rotation]" in to.err, to.err
    write_config(cli.home, '[rotation.projects.r]\nmodel = "deepseek-chat"\n')
    result = cli("rotate", "--project", "r")
    assert result.code == 0, result.err
    assert actives(open_vault(cli.home).read(), "r") == ["spare"]
    assert json.loads(fake_openai.stats.last[spare].body)["model"] == "deepseek-chat"
    write_config(cli.home, '[rotation]\nmodel = "two words"\n')
    bad = cli("rotate", "--project", "r", "--dry-run")
    assert bad.code == 1 and "rotation.model must be a model name" in bad.err, bad.err

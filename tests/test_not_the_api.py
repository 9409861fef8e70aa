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
from vault.health.fetch import Limits
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


@pytest.mark.slow
def test_a_proxy_that_drops_the_key_neither_disables_nor_rotates(
    fake_openai: FakeOpenAI, cli: Cli
) -> None:
    """Something on the way (an nginx `proxy_set_header Authorization ""`, a worker) strips
    the header, and the API answers 401 "You didn't provide an API key". keyvault sent one,
    so the key was never judged: `network_error`, not `invalid` (which, with disable_after = 1,
    disabled the key and made the project due). Asked once, not retried."""
    write_config(cli.home, "[health]\ndisable_after = 1\n")
    kv = open_vault(cli.home)
    url = fake_openai.base_url
    dropped = fake_openai.add_key("no_auth")
    add(kv, "main", dropped, project="work", base_url=url, activate=True)
    add(kv, "spare", fake_openai.add_key("no_auth"), project="work", base_url=url, priority=5)
    result = cli("check", "--rotate", "--json")
    assert result.code == 5, result.err
    report = json.loads(result.out)
    assert {c["name"]: c["status"] for c in report["checked"]} == {
        "main": "network_error",
        "spare": "network_error",
    }
    assert report["rotate"]["rotations"] == []
    assert "dropped the Authorization header" in result.err
    assert fake_openai.count(dropped) == 1
    doc = open_vault(cli.home).read()
    assert actives(doc, "work") == ["main"]
    assert by_name(doc)["spare"].status == "standby"


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
    """A body that is not the gzip it claims was damaged on the way: the network's fault
    (`network_error`, the encoding named), not keyvault's "client error" and not the key's."""
    bad = _answer(200, b"\x1f\x8b\x08\x00garbage that is not deflate", "content-encoding: gzip")
    with HostileServer("raw", payload=bad) as relay:
        result = _check(relay.url)
    assert (result.status, result.error_code) == (S.NETWORK_ERROR, "encoding")
    assert result.evidence == (
        "gzip body that does not inflate: a relay, proxy or CDN on the way changed it"
    )


# bytes as a CDN sends them unasked (a zstd frame's magic number); never decoded here
BROTLI_BODY = b"\x0b\x00\x80{}\x03"
ZSTD_BODY = b"\x28\xb5\x2f\xfd\x20\x02\x11\x00\x00{}"


@pytest.mark.parametrize(("coding", "body"), [("br", BROTLI_BODY), ("zstd", ZSTD_BODY)])
@pytest.mark.parametrize("status", [200, 401])
def test_a_body_in_br_or_zstd_is_the_networks_problem(
    coding: str, body: bytes, status: int
) -> None:
    """keyvault asks for gzip or deflate only; a CDN or relay that compresses with br or zstd
    anyway sends an answer nobody can read here. Even under a 401 that says nothing about the
    key (it was `unexpected` with no status, whose advice blamed the base URL)."""
    with HostileServer(
        "raw", payload=_answer(status, body, f"content-encoding: {coding}")
    ) as relay:
        result = _check(relay.url)
    assert (result.status, result.error_code) == (S.NETWORK_ERROR, "encoding")
    assert result.http_status == status
    assert result.evidence == (
        f"answer in {coding}, which keyvault did not ask for and cannot read: a relay, proxy"
        " or CDN on the way changed it"
    )
    assert result.message is None  # nothing the server said was read
    assert result.attempts == 1  # the same hop re-encodes again: not retried


@pytest.mark.slow
def test_a_relay_that_answers_in_br_disables_nothing_and_rotates_nowhere(cli: Cli) -> None:
    """Every key behind the relay gets an unreadable answer: `check` disables none of them,
    and `rotate` says the network failed (not the keys), tries one candidate, changes nothing."""
    write_config(cli.home, "[health]\ndisable_after = 1\n")
    answer = _answer(401, BROTLI_BODY, "content-encoding: br")
    with HostileServer("raw", payload=answer) as relay:
        kv = open_vault(cli.home)
        for name in ("main", "spare", "spare2"):
            base_url = relay.url + "/v1"
            add(kv, name, make_key(), project="work", base_url=base_url, activate=name == "main")
        checked = cli("check")
        requests_before = relay.requests
        rotated = cli("rotate", "--project", "work")
        rotate_requests = relay.requests - requests_before
    assert checked.code == 5
    assert "3 network_error" in checked.out and "invalid" not in checked.out
    assert "http 401, answer in br, which keyvault did not ask for" in checked.err
    assert "server said" not in checked.err
    assert rotated.code == 1
    assert "the network or the API failed, not the keys; nothing was changed" in rotated.err
    assert "spare2: not tried" in rotated.err
    assert rotate_requests == 1
    doc = open_vault(cli.home).read()
    assert actives(doc, "work") == ["main"]
    assert {e.name: e.status for e in doc.entries} == {
        "main": "active",
        "spare": "standby",
        "spare2": "standby",
    }


@pytest.mark.slow
def test_a_chunked_body_that_stalls_ends_within_its_deadlines() -> None:
    """Headers and half a chunk, then silence with the connection open: each attempt ends at
    the read timeout and is retried (a network error, never a verdict); a request deadline
    shorter than that ends the key at once, not retried."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n"
    stalled = head + b'\r\n10\r\n{"object": "list'
    with HostileServer("stall", payload=stalled) as relay:
        target = ProbeTarget("k", Secret(make_key()), relay.url + "/v1")
        started = time.monotonic()
        [timed_out] = check([target], timeout=0.5, sleep=_no_sleep)
        took = time.monotonic() - started
        [late] = check([target], timeout=10, limits=Limits.starting_now(0.5, None))
    assert (timed_out.status, timed_out.error_code, timed_out.attempts) == (
        S.NETWORK_ERROR,
        "read_timeout",
        3,
    )
    assert took < 5
    assert (late.status, late.error_code, late.attempts) == (S.NETWORK_ERROR, "deadline", 1)


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

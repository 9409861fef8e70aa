"""Network classes of issue 13, each through the real CLI against real loopback servers:

1. a key in clear through a proxy: a plain-http (loopback relay) request never goes through
   HTTP_PROXY/ALL_PROXY/--proxy/config's proxy, for every command that sends a key;
5. no total deadline: a server that trickles one byte at a time ends at --timeout (each
   request) or --run-timeout (the run), naming the key;
6. unbounded bodies: a huge admin answer and gzip bombs are cut at a cap, raw and decoded,
   and the process's peak memory stays small.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import Cli, Result, add, make_key, open_vault, write_config
from tests.hostile_http import HostileServer, RecordingProxy, gzip_bomb

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def through(proxy: str) -> dict[str, str]:
    """Every proxy variable, both cases, pointing at `proxy`; nothing exempted."""
    env = dict.fromkeys(PROXY_VARIABLES, proxy)
    env |= {name.lower(): proxy for name in PROXY_VARIABLES}
    return env | {"NO_PROXY": "", "no_proxy": ""}


@pytest.fixture
def recorder() -> Iterator[RecordingProxy]:
    with RecordingProxy() as proxy:
        yield proxy


# --- 1. plain http never through a proxy --------------------------------------------------


@pytest.mark.slow
def test_check_sends_no_plain_http_request_through_any_proxy(
    fake_openai: FakeOpenAI, recorder: RecordingProxy, cli: Cli
) -> None:
    """A loopback relay key and an admin key, with every way of naming a proxy at once."""
    write_config(cli.home, f'proxy = "{recorder.url}"\n')
    kv = open_vault(cli.home)
    relay_key = fake_openai.add_key("ok")
    add(kv, "relay", relay_key, project="p", base_url=fake_openai.base_url)
    add(kv, "org-admin", fake_openai.admin.add_admin_key(), base_url=fake_openai.base_url)
    for option in ([], ["--proxy", recorder.url]):
        result = cli("check", "--all", "--json", *option, env=through(recorder.url))
        assert result.code == 0, result.err
        assert {row["status"] for row in json.loads(result.out)} == {"ok"}
    assert fake_openai.count(relay_key, "models") == 2
    assert recorder.connections == 0 and recorder.received == []


@pytest.mark.slow
def test_usage_and_mint_send_no_plain_http_request_through_any_proxy(
    fake_openai: FakeOpenAI, recorder: RecordingProxy, cli: Cli
) -> None:
    """The admin client (usage, mint) and the checks a rotation runs."""
    write_config(cli.home, f'proxy = "{recorder.url}"\n')
    kv = open_vault(cli.home)
    work = fake_openai.admin.add_project("work")
    _, user_key = fake_openai.admin.add_user_key(work)
    add(kv, "org-admin", fake_openai.admin.add_admin_key(), base_url=fake_openai.base_url)
    add(kv, "user-1", user_key, project="work", project_id=work, base_url=fake_openai.base_url)
    env = through(recorder.url)
    minted = cli("rotate", "--mint", "--project", "work", "--proxy", recorder.url, env=env)
    assert minted.code == 0, minted.err
    usage = cli("usage", "--days", "7", "--json", env=env)
    assert usage.code == 0, usage.err
    assert recorder.connections == 0 and recorder.received == []


# --- 5. total deadlines --------------------------------------------------------------------


def _timed(cli: Cli, *args: str, env: dict[str, str] | None = None) -> tuple[float, Result]:
    started = time.monotonic()
    result = cli(*args, env=env, timeout=60)
    return time.monotonic() - started, result


@pytest.mark.slow
def test_a_trickling_body_ends_at_the_request_deadline(cli: Cli) -> None:
    with HostileServer("trickle-body", interval=0.3) as relay:
        kv = open_vault(cli.home)
        add(kv, "slow-relay", make_key(), project="p", base_url=f"{relay.url}/v1")
        elapsed, result = _timed(cli, "check", "slow-relay", "--timeout", "2", "--json")
    assert result.code == 5, result.err
    row = json.loads(result.out)[0]
    assert (row["status"], row["error_code"]) == ("network_error", "deadline")
    assert "slow-relay: network_error:" in result.err
    assert "within 2 s" in result.err
    assert elapsed < 12  # one try, not retried: a trickling server trickles again


@pytest.mark.slow
def test_trickling_headers_end_at_the_run_deadline_from_config(cli: Cli) -> None:
    """`timeout`/`run_timeout` in config.toml; every key still unfinished is named."""
    write_config(cli.home, "timeout = 100\nrun_timeout = 2\n")
    with HostileServer("trickle-headers", interval=0.2) as relay:
        kv = open_vault(cli.home)
        for name in ("a", "b", "c"):
            add(kv, name, make_key(), project="p", base_url=f"{relay.url}/v1")
        elapsed, result = _timed(cli, "check", "--all", "--json")
    assert result.code == 5, result.err
    rows = {r["name"]: r for r in json.loads(result.out)}
    assert {r["error_code"] for r in rows.values()} == {"run_deadline"}
    lines = {line.split(":")[0]: line for line in result.err.splitlines()}
    for name in ("a", "b", "c"):  # each key says it ran out of time, by name
        assert lines[name].startswith(f"{name}: network_error: models probe, run deadline of 2 s")
        assert "detail \"the whole run's deadline (2 s" in lines[name]
    assert elapsed < 12


@pytest.mark.slow
def test_the_admin_client_has_a_total_deadline(cli: Cli) -> None:
    """`usage` (admin API) against a trickling server: one clear line, quickly."""
    with HostileServer("trickle-body", interval=0.3) as admin_api:
        kv = open_vault(cli.home)
        add(kv, "org-admin", make_key("sk-admin-", 58), base_url=f"{admin_api.url}/v1")
        add(kv, "k", make_key(), project="p", project_id="proj_abcdef123")
        elapsed, result = _timed(cli, "usage", "--timeout", "2")
    assert result.code == 1
    err = result.err
    assert err.startswith("keyvault: error: admin api: GET /organization/costs failed")
    assert "within 2 s" in err and "raise --timeout" in err
    assert elapsed < 12


# --- 6. bounded bodies ---------------------------------------------------------------------

# Runs a command and reports its peak memory: a fresh parent, so the figure is this child's.
_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run([sys.executable, '-m', 'vault', *sys.argv[2:]]).returncode\n"
    "kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(str(kib))\n"
    "sys.exit(code)\n"
)


def peak_mib(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, float]:
    report = tmp_path / "peak"
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, str(report), *args],
        env=cli.env,
        capture_output=True,
        timeout=120,
        check=False,
        start_new_session=True,
    )
    return done.returncode, int(report.read_text()) / 1024


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(256 << 20)  # ~250 KiB that inflate to 256 MiB


@pytest.mark.slow
def test_gzip_bombs_are_cut_before_they_inflate(cli: Cli, tmp_path: Path, bomb: bytes) -> None:
    with HostileServer("gzip-bomb", payload=bomb) as relay:
        kv = open_vault(cli.home)
        for index in range(6):
            add(kv, f"bomb-{index}", make_key(), project="p", base_url=f"{relay.url}/v1")
        code, peak = peak_mib(cli, tmp_path, "check", "--all", "--json")
        assert relay.requests == 6  # one each: a body over the cap is not worth a retry
    assert code == 5
    assert peak < 120, f"peak RSS {peak:.0f} MiB"


@pytest.mark.slow
def test_a_huge_admin_answer_is_not_read_into_memory(cli: Cli, tmp_path: Path) -> None:
    with HostileServer("huge", size=256 << 20) as admin_api:
        kv = open_vault(cli.home)
        add(kv, "org-admin", make_key("sk-admin-", 58), base_url=f"{admin_api.url}/v1")
        add(kv, "k", make_key(), project="p", project_id="proj_abcdef123")
        code, peak = peak_mib(cli, tmp_path, "usage")
        assert admin_api.sent < 64 << 20  # the client hung up soon after the cap
    assert code == 1
    assert peak < 120, f"peak RSS {peak:.0f} MiB"

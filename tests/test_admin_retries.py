"""The Administration API client retries what is safe to repeat, like the checker does: a
gateway's 502 or 503, a reset connection, a 429 with a short Retry-After. It never repeats a
POST that creates a service account (a lost answer may still have made one), and it never
waits past the command's deadline or a Retry-After longer than its budget (the fake server on
127.0.0.1 answers the faults; `usage` runs as a real process)."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.fake_openai_responses import Canned, error_body
from tests.helpers import Cli, add, open_vault
from vault.errors import AdminApiError
from vault.health.admin import AdminClient
from vault.health.fetch import Limits
from vault.model.secret import Secret

BAD_GATEWAY = Canned(502, b"<html><title>502 Bad Gateway</title></html>", {"retry-after": "0"})
OVERLOADED = Canned(503, error_body("The server is overloaded.", "server_error", None))


def _busy(retry_after: str) -> Canned:
    body = error_body("Rate limit reached for requests", "requests", "rate_limit_exceeded")
    return Canned(429, body, {"retry-after": retry_after})


def _client(server: FakeOpenAI, run_timeout: float | None = None) -> AdminClient:
    key = server.admin.add_admin_key()
    limits = Limits.starting_now(5, run_timeout)
    return AdminClient(Secret(key), base_url=server.base_url, limits=limits)


@pytest.mark.slow
def test_usage_rides_out_a_bad_gateway_and_a_reset(fake_openai: FakeOpenAI, cli: Cli) -> None:
    """Before, the first 502 (or reset) of any of `usage`'s reads failed the whole command."""
    admin = fake_openai.admin
    project = admin.add_project("Work app")
    admin.add_cost(int(time.time()) - 60, 1.25, project)
    add(open_vault(cli.home), "org-admin", admin.add_admin_key(), base_url=fake_openai.base_url)
    admin.fail_next("GET", BAD_GATEWAY, Canned(reset=True), path="/costs")
    admin.fail_next("GET", _busy("0"), path="/projects")
    result = cli("usage", "--days", "3", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["total_usd"] == pytest.approx(1.25)
    assert admin.faults == []  # every fault was served, and retried past
    assert fake_openai.stats.by_path["GET /v1/organization/costs"] == 3  # 502, reset, answer
    assert fake_openai.stats.by_path["GET /v1/organization/projects"] == 2  # 429, answer


def test_a_read_that_keeps_failing_stops_after_its_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.admin.fail_next("GET", *[BAD_GATEWAY] * 4)
    with _client(fake_openai) as api, pytest.raises(AdminApiError) as raised:
        api.list_projects()
    assert "http 502 server_error" in raised.value.message
    assert fake_openai.stats.by_path["GET /v1/organization/projects"] == 3  # 1 + 2 retries


def test_a_creating_post_is_never_repeated(fake_openai: FakeOpenAI) -> None:
    """A 502 to the POST that creates a service account may hide a created account; a
    second POST would make a second key. The error goes to the mint, which resumes by name."""
    project = fake_openai.admin.add_project("p")
    fake_openai.admin.fail_next("POST", BAD_GATEWAY)
    with _client(fake_openai) as api, pytest.raises(AdminApiError) as raised:
        api.create_service_account(project, "keyvault-p-1")
    assert "POST /organization/projects/{id}/service_accounts failed: http 502" in str(
        raised.value.message
    )
    path = f"POST /v1/organization/projects/{project}/service_accounts"
    assert fake_openai.stats.by_path[path] == 1
    assert fake_openai.admin.projects[project].service_accounts == {}


def test_a_creating_post_is_not_repeated_after_a_reset_either(fake_openai: FakeOpenAI) -> None:
    """A reset after the request was sent: the server may have acted on it."""
    project = fake_openai.admin.add_project("p")
    fake_openai.admin.fail_next("POST", Canned(reset=True))
    with _client(fake_openai) as api, pytest.raises(AdminApiError) as raised:
        api.create_service_account(project, "keyvault-p-1")
    assert "network_error" in raised.value.message
    path = f"POST /v1/organization/projects/{project}/service_accounts"
    assert fake_openai.stats.by_path[path] == 1


@pytest.mark.slow
def test_a_post_that_never_connected_is_sent_again() -> None:
    """Connection refused: nothing was sent, so sending it once the server is up is safe."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = FakeOpenAI()
    server.port = port
    key = server.admin.add_admin_key()
    project = server.admin.add_project("p")
    starter = threading.Timer(0.2, server.start)  # up before the first backoff (~0.4 s) ends
    limits = Limits.starting_now(5, 20)
    base_url = f"http://127.0.0.1:{port}/v1"
    starter.start()
    try:
        with AdminClient(Secret(key), base_url=base_url, limits=limits) as api:
            account = api.create_service_account(project, "keyvault-p-1")
    finally:
        starter.join()
        server.stop()
    assert list(server.admin.projects[project].service_accounts) == [account.id]
    path = f"POST /v1/organization/projects/{project}/service_accounts"
    assert server.stats.by_path[path] == 1


def test_a_deletion_is_retried_after_a_reset(fake_openai: FakeOpenAI) -> None:
    project = fake_openai.admin.add_project("p")
    with _client(fake_openai) as api:
        account = api.create_service_account(project, "keyvault-p-1")
        fake_openai.admin.fail_next("DELETE", Canned(reset=True))
        assert api.delete_service_account(project, account.id) is True
    assert fake_openai.admin.projects[project].service_accounts == {}


def test_a_wait_longer_than_the_budget_is_reported_not_slept(fake_openai: FakeOpenAI) -> None:
    """`Retry-After: 3600` is past the 20 s budget of waits: one request, then the error."""
    fake_openai.admin.fail_next("GET", _busy("3600"))
    started = time.monotonic()
    with _client(fake_openai) as api, pytest.raises(AdminApiError) as raised:
        api.list_projects()
    assert time.monotonic() - started < 5
    assert "http 429 rate_limited" in raised.value.message
    assert raised.value.hint == "the admin api asked to wait 60 min: run the command again then"
    assert fake_openai.stats.by_path["GET /v1/organization/projects"] == 1


def test_a_redirect_is_reported_not_followed(fake_openai_factory: Any) -> None:
    """A 307 to another host: the admin key goes nowhere but its own base URL."""
    server, elsewhere = fake_openai_factory(), fake_openai_factory()
    target = f"{elsewhere.base_url}/organization/projects?limit=100"
    server.admin.fail_next("GET", Canned(307, b"", {"location": target}))
    with _client(server) as api, pytest.raises(AdminApiError) as raised:
        api.list_projects()
    assert f"http 307 unexpected (redirect to {elsewhere.base_url}/organization/projects)" in (
        raised.value.message
    )
    assert server.stats.by_path["GET /v1/organization/projects"] == 1  # not retried either
    assert sum(elsewhere.stats.by_path.values()) == 0


@pytest.mark.slow
def test_retries_stop_at_the_run_deadline(fake_openai: FakeOpenAI) -> None:
    """Waits the server asks for fit the budget but not the run: no sleep ends past it."""
    fake_openai.admin.fail_next("GET", *[_busy("1")] * 3)
    started = time.monotonic()
    with _client(fake_openai, run_timeout=1.5) as api, pytest.raises(AdminApiError) as raised:
        api.list_projects()
    assert time.monotonic() - started < 2.5
    assert "http 429 rate_limited" in raised.value.message
    assert fake_openai.stats.by_path["GET /v1/organization/projects"] == 2  # the 2nd wait: no

"""Answers the Administration API never sends, from whatever sits at an admin key's base URL
(a relay, a cache that ignores the query string, a changed API): each fails the call with one
line, never a traceback, a page counted twice or a NaN in a spend (raw servers on 127.0.0.1;
`usage` as a real process)."""

from __future__ import annotations

import json
import time

import pytest

from tests.helpers import Cli, add, make_key, open_vault
from tests.hostile_http import HostileServer
from vault.errors import AdminApiError
from vault.health.admin import AdminClient
from vault.health.fetch import Limits
from vault.model.secret import Secret

DAY = 86_400


def _answer(body: bytes) -> bytes:
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


def _page(doc: object) -> bytes:
    return _answer(json.dumps(doc).encode())


@pytest.mark.slow
def test_a_cache_that_repeats_the_first_page_does_not_multiply_the_spend(cli: Cli) -> None:
    """A cache in front of the API that ignores the query answers every costs request with
    the first page and its `has_more`: usage followed it 200 times and reported 200 x $2.50."""
    now = int(time.time())
    bucket = {"start_time": now - now % DAY, "results": [{"amount": {"value": 2.5}}]}
    page = {"data": [bucket], "has_more": True, "next_page": "page_31"}
    with HostileServer("raw", payload=_page(page)) as cache:
        add(open_vault(cli.home), "org-admin", make_key("sk-admin-", 58), base_url=cache.url)
        result = cli("usage", "--days", "3")
        requests = cache.requests
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        "keyvault: error: admin api: GET /organization/costs answered with the same page again"
    )
    assert "Traceback" not in result.err and result.out == ""
    assert requests == 2


HOSTILE = {
    "a list, not an object": (b"[1, 2]", "a body that is not a JSON object"),
    "data is a number": (b'{"data": 5}', "no list of items in `data`"),
    "the cursor repeats": (
        b'{"data": [{"id": "proj_1"}], "has_more": true, "last_id": "proj_1"}',
        "the same page again",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_listing_projects_from_a_hostile_answer_fails_in_one_line(case: str) -> None:
    body, words = HOSTILE[case]
    with (
        HostileServer("raw", payload=_answer(body)) as server,
        _client(server) as api,
        pytest.raises(AdminApiError) as raised,
    ):
        api.list_projects()
    assert raised.value.message == f"admin api: GET /organization/projects answered with {words}"
    assert "base_url" in (raised.value.hint or "")


COSTS = {
    "start time not a number": ({"start_time": "x", "results": []}, "without a start time"),
    "start time past 9999": ({"start_time": 10**400, "results": []}, "without a start time"),
    "results not a list": ({"start_time": 0, "results": "abc"}, "without a start time"),
    "amount NaN": ({"start_time": 0, "results": [{"amount": {"value": "NaN"}}]}, "not a number"),
    "amount a string": ({"start_time": 0, "results": [{"amount": {"value": "1.5"}}]}, "not a num"),
    "bucket not an object": ("day 1", "not an object"),
}


@pytest.mark.parametrize("case", sorted(COSTS))
def test_a_cost_bucket_that_cannot_be_added_up_fails_the_call(case: str) -> None:
    bucket, words = COSTS[case]
    body = json.dumps({"data": [bucket]}).replace('"NaN"', "NaN").encode()  # JSON allows no NaN
    with (
        HostileServer("raw", payload=_answer(body)) as server,
        _client(server) as api,
        pytest.raises(AdminApiError) as raised,
    ):
        api.costs(0, 3 * DAY)
    assert raised.value.message.startswith("admin api: GET /organization/costs answered with a")
    assert words in raised.value.message


def test_items_without_an_id_are_not_items_and_null_data_is_empty() -> None:
    listing = {"data": [{"id": "proj_1", "name": "a"}, {"id": ["x"]}, {"name": "no id"}, 3]}
    with HostileServer("raw", payload=_page(listing)) as server, _client(server) as api:
        assert api.list_projects() == [{"id": "proj_1", "name": "a"}]
    with HostileServer("raw", payload=_page({"data": None})) as server, _client(server) as api:
        assert api.list_projects() == []


def test_a_key_list_with_odd_owners_finds_no_account() -> None:
    keys = {"data": [{"id": "key_1", "owner": "svc"}, {"id": "key_2", "owner": {"type": 1}}]}
    with HostileServer("raw", payload=_page(keys)) as server, _client(server) as api:
        assert api.find_service_account("proj_1", "keyvault-p-1") is None


def _client(server: HostileServer) -> AdminClient:
    secret = Secret(make_key("sk-admin-", 58))
    return AdminClient(secret, base_url=server.url + "/v1", limits=Limits.starting_now(5, 20))

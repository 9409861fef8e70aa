"""The fake server itself: the official SDK accepts it, the admin API works, it takes load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.fake_openai_responses import make_key
from vault.health import ProbeTarget, Status, check
from vault.model.secret import Secret

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sdk() -> Any:
    return pytest.importorskip("openai")


def client(sdk: Any, server: FakeOpenAI, key: str, retries: int = 0) -> Any:
    return sdk.OpenAI(api_key=key, base_url=server.base_url, max_retries=retries)


@pytest.mark.slow
def test_official_sdk_reads_answers(sdk: Any, fake_openai: FakeOpenAI) -> None:
    ok = fake_openai.add_key("ok")
    models = client(sdk, fake_openai, ok).models.list()
    assert [m.id for m in models.data][:2] == ["gpt-4o-mini", "gpt-4o"]
    reply = client(sdk, fake_openai, ok).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=1
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 1


def test_official_sdk_errors(sdk: Any, fake_openai: FakeOpenAI) -> None:
    bad = make_key("bad")
    with pytest.raises(sdk.AuthenticationError) as auth:
        client(sdk, fake_openai, bad).models.list()
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"
    assert auth.value.request_id.startswith("req_")
    quota = fake_openai.add_key("quota")
    with pytest.raises(sdk.RateLimitError) as limited:
        client(sdk, fake_openai, quota).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.code == "insufficient_quota" and limited.value.type == "insufficient_quota"


def test_official_sdk_retries_on_retry_after_ms(sdk: Any, fake_openai: FakeOpenAI) -> None:
    key = fake_openai.add_key("rate_limited", times=1, retry_after_ms="10")
    client(sdk, fake_openai, key, retries=2).models.list()
    assert fake_openai.count(key) == 2


@pytest.mark.slow
def test_many_concurrent_connections_with_latency(
    fake_openai_factory: Callable[..., FakeOpenAI],
) -> None:
    # 200 requests must arrive within one answer's latency; at 0.1 s a loaded machine (a
    # second xdist worker, other suites) could not open them that fast, so the window is 1 s
    server = fake_openai_factory(latency=1.0)
    targets = [
        ProbeTarget(f"k{i}", Secret(server.add_key("ok")), server.base_url) for i in range(250)
    ]
    results = check(targets, concurrency=250)
    assert all(r.status is Status.OK for r in results)
    assert server.stats.max_in_flight >= 200


def test_runs_by_hand() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_openai", "--keys", "2"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        headers = {"Authorization": f"Bearer {make_key(1)}"}
        answer = httpx.get(f"{base_url}/models", headers=headers, timeout=5)
        assert answer.status_code == 200 and answer.json()["object"] == "list"
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the server exits when its stdin closes
        assert proc.wait(10) == 0


# --- Administration API -----------------------------------------------------------------


@pytest.fixture
def admin(fake_openai: FakeOpenAI) -> tuple[FakeOpenAI, httpx.Client]:
    key = fake_openai.admin.add_admin_key()
    http = httpx.Client(base_url=fake_openai.base_url, headers={"Authorization": f"Bearer {key}"})
    return fake_openai, http


def test_projects_pagination(admin: tuple[FakeOpenAI, httpx.Client]) -> None:
    server, http = admin
    ids = [server.admin.add_project(f"p{i}") for i in range(3)]
    server.admin.add_project("old", archived=True)
    first = http.get("/organization/projects", params={"limit": 2}).json()
    assert first["object"] == "list" and first["has_more"] is True
    assert [p["id"] for p in first["data"]] == ids[:2] and first["last_id"] == ids[1]
    second = http.get("/organization/projects", params={"limit": 2, "after": ids[1]}).json()
    assert [p["id"] for p in second["data"]] == ids[2:] and second["has_more"] is False
    everything = http.get("/organization/projects", params={"include_archived": "true"}).json()
    assert len(everything["data"]) == 4
    assert everything["data"][-1]["status"] == "archived"


def test_service_account_mint_and_delete(admin: tuple[FakeOpenAI, httpx.Client]) -> None:
    server, http = admin
    pid = server.admin.add_project("prod")
    made = http.post(f"/organization/projects/{pid}/service_accounts", json={"name": "rotator"})
    assert made.status_code == 200
    body = made.json()
    assert body["object"] == "organization.project.service_account" and body["role"] == "member"
    secret = body["api_key"]["value"]
    assert secret.startswith("sk-svcacct-") and len(secret) == 167
    assert check([ProbeTarget("new", Secret(secret), server.base_url)])[0].status is Status.OK
    keys = http.get(f"/organization/projects/{pid}/api_keys").json()["data"]
    assert keys[0]["owner"]["type"] == "service_account"
    assert keys[0]["redacted_value"] == f"{secret[:6]}...{secret[-3:]}"
    refused = http.delete(f"/organization/projects/{pid}/api_keys/{keys[0]['id']}")
    assert refused.status_code == 400
    gone = http.delete(f"/organization/projects/{pid}/service_accounts/{body['id']}").json()
    assert gone == {
        "object": "organization.project.service_account.deleted",
        "id": body["id"],
        "deleted": True,
    }
    assert check([ProbeTarget("old", Secret(secret), server.base_url)])[0].status is Status.INVALID


def test_user_key_get_and_delete(admin: tuple[FakeOpenAI, httpx.Client]) -> None:
    server, http = admin
    pid = server.admin.add_project("dev")
    kid, value = server.admin.add_user_key(pid, "laptop")
    got = http.get(f"/organization/projects/{pid}/api_keys/{kid}").json()
    assert (got["object"], got["name"], got["owner"]["type"]) == (
        "organization.project.api_key",
        "laptop",
        "user",
    )
    deleted = http.delete(f"/organization/projects/{pid}/api_keys/{kid}").json()
    assert deleted == {"object": "organization.project.api_key.deleted", "id": kid, "deleted": True}
    assert http.get(f"/organization/projects/{pid}/api_keys/{kid}").status_code == 404
    assert check([ProbeTarget("x", Secret(value), server.base_url)])[0].status is Status.INVALID


def test_costs_pages_and_groups(admin: tuple[FakeOpenAI, httpx.Client]) -> None:
    server, http = admin
    p1, p2 = server.admin.add_project("a"), server.admin.add_project("b")
    day0 = 1_735_689_600  # 2025-01-01
    server.admin.add_cost(day0 + 10, 0.25, p1)
    server.admin.add_cost(day0 + 20, 0.5, p2)
    server.admin.add_cost(day0 + 86_400 * 2 + 5, 1.0, p1)
    params: dict[str, Any] = {"start_time": day0, "end_time": day0 + 3 * 86_400, "limit": 2}
    first = http.get("/organization/costs", params=params).json()
    assert (first["object"], first["has_more"], first["next_page"]) == ("page", True, "page_2")
    assert first["data"][0]["results"][0]["amount"] == {"value": 0.75, "currency": "usd"}
    rest = http.get("/organization/costs", params={**params, "page": first["next_page"]}).json()
    assert rest["has_more"] is False and rest["data"][0]["results"][0]["amount"]["value"] == 1.0
    grouped = http.get(
        "/organization/costs", params={**params, "group_by[]": "project_id", "project_ids[]": p2}
    ).json()
    assert [(r["project_id"], r["amount"]["value"]) for r in grouped["data"][0]["results"]] == [
        (p2, 0.5)
    ]
    assert http.get("/organization/costs").status_code == 400


def test_admin_and_model_keys_stay_in_their_lanes(admin: tuple[FakeOpenAI, httpx.Client]) -> None:
    server, http = admin
    admin_key = http.headers["Authorization"].removeprefix("Bearer ")
    as_model = check([ProbeTarget("admin", Secret(admin_key), server.base_url)])[0]
    assert (as_model.status, as_model.http_status) == (Status.FORBIDDEN, 401)
    model_key = server.add_key("ok")
    answer = httpx.get(
        f"{server.base_url}/organization/projects", headers={"Authorization": f"Bearer {model_key}"}
    )
    assert answer.status_code == 401 and "api.management.read" in answer.text

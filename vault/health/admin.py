"""A small client for the OpenAI Administration API (admin keys, `sk-admin-…`).

Only what rotation and `keyvault usage` need: projects, project API keys, service accounts
(create returns the only copy of the new key's secret) and costs. Synchronous methods over
the health checker's session (transport.Session: the same retries, and fetch.py's total
deadline per request and per run, a body cap before and after decoding, plain http never
through a proxy), run on a private event loop; the transport (an httpx.AsyncBaseTransport)
is injectable. Errors become `AdminApiError` with the server's message masked.

    with AdminClient(admin_entry.secret, base_url=admin_entry.effective_base_url) as api:
        account = api.create_service_account("proj_abc", "keyvault-work-20260101")
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import httpx

from vault.errors import AdminApiError
from vault.health.admin_answers import (
    CostRow,
    Cursors,
    cost_rows,
    malformed,
    page_data,
    shape,
)
from vault.health.fetch import Limits
from vault.health.lanes import Lanes
from vault.health.model import OPENAI_BASE_URL, Classification, HealthResult, ProbeTarget, Status
from vault.health.transport import Exchange, RetryPolicy, Session, refusal
from vault.model.clock import iso
from vault.model.secret import Secret

MAX_PAGES: Final = 200  # a runaway `has_more` must not loop forever
PAGE_LIMIT: Final = 100
# a page of 100 keys is ~50 KiB; a month of costs by project and key for 1,000 keys ~5 MiB
MAX_ADMIN_BODY: Final = 16 * 1024 * 1024
# methods whose repetition changes nothing more than the first did (RFC 9110 9.2.2)
IDEMPOTENT: Final = frozenset({"GET", "DELETE"})


@dataclass(frozen=True)
class ServiceAccount:
    """A freshly created service account; `secret` is the only copy OpenAI will ever send."""

    id: str
    name: str
    key_id: str | None
    secret: Secret


class AdminClient:
    """Administration API calls with one admin key. Use as a context manager.

    Reads (GET) and deletions (DELETE: a repeated one answers 404, which a deletion takes as
    "already gone") are retried like the checker's probes: a gateway's 502 or 503, a reset
    connection or a 429, with the SDKs' backoff or the server's Retry-After, all of one
    command's waits together at most `max_retry_wait` and never past the run's deadline. A POST
    is retried only when no connection could be made: a service account whose answer was lost
    may exist, and a second would be a second key (mint_cleanup finds the first by its name).
    """

    def __init__(
        self,
        secret: Secret,
        *,
        base_url: str = OPENAI_BASE_URL,
        transport: httpx.AsyncBaseTransport | None = None,
        proxy: str | None = None,
        timeout: float = 30.0,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        target = ProbeTarget("admin key", secret, base_url)
        refused = refusal(target)
        if refused is not None:
            raise AdminApiError(f"admin api: {refused.message}")
        lanes = Lanes(1, timeout=timeout, transport=transport, proxy=proxy, http2=False)
        self._session = Session(
            lanes,
            target,
            retry or RetryPolicy(),
            limits=(limits or Limits()).with_max_body(MAX_ADMIN_BODY),
        )
        self._loop = asyncio.new_event_loop()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._loop.run_until_complete(self._session.lanes.aclose())
        finally:
            self._loop.close()

    # --- plumbing -------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kw: Any) -> tuple[Classification, Any, Exchange]:
        """One logical request (a POST retried only if it never left): the classification,
        the JSON body (or None) and the exchange."""
        exchange = self._loop.run_until_complete(
            self._session.call(
                method,
                path,
                params=kw.get("params"),
                json_body=kw.get("json"),
                idempotent=method in IDEMPOTENT,
            )
        )
        try:
            body = json.loads(exchange.body) if exchange.body else None
        except (ValueError, RecursionError):
            body = None
        return exchange.classification, body, exchange

    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kw: Any) -> Any:
        verdict, body, _ = self._send(method, path, **kw)
        if verdict.status is Status.OK:
            if isinstance(body, dict):
                return body
            raise malformed(method, path, "a body that is not a JSON object")
        if missing_ok and verdict.http_status == 404:
            return None
        detail = verdict.message or verdict.evidence
        answer = f"http {verdict.http_status} " if verdict.http_status else ""  # none: network
        hint = _HINTS.get(verdict.error_code or "") or _HINTS.get(verdict.status)
        wait = verdict.wait_hint_s if verdict.status is Status.RATE_LIMITED else None
        if wait is not None:  # longer than the command's budget of waits, so not waited
            hint = f"the admin api asked to wait {_duration(wait)}: run the command again then"
        raise AdminApiError(
            f"admin api: {method} {shape(path)} failed: {answer}{verdict.status} ({detail})",
            hint=hint,
        )

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Items of a cursor-paginated list (`after=<last_id>`)."""
        after: str | None = None
        cursors = Cursors("GET", path)
        for _ in range(MAX_PAGES):
            query = {**params, "limit": PAGE_LIMIT, **({"after": after} if after else {})}
            body = self._call("GET", path, params=query)
            # every item of the API's lists has a string id; anything else is not an item
            items = page_data(body, "GET", path)
            yield from (d for d in items if isinstance(d, dict) and isinstance(d.get("id"), str))
            if not body.get("has_more") or not body.get("last_id"):
                return
            after = cursors.next(body["last_id"])
        raise malformed("GET", path, f"more than {MAX_PAGES} pages")

    # --- the API --------------------------------------------------------------------------

    def list_projects(self) -> list[dict[str, Any]]:
        return list(self._pages("/organization/projects", {}))

    def list_api_keys(self, project_id: str) -> list[dict[str, Any]]:
        return list(self._pages(f"/organization/projects/{project_id}/api_keys", {}))

    def create_service_account(self, project_id: str, name: str) -> ServiceAccount:
        path = f"/organization/projects/{project_id}/service_accounts"
        body = self._call("POST", path, json={"name": name})
        key = body.get("api_key")
        key = key if isinstance(key, dict) else {}
        value, account_id, key_id = key.get("value"), body.get("id"), key.get("id")
        if not isinstance(value, str) or not isinstance(account_id, str):
            raise AdminApiError("admin api: the service account answer holds no key")
        key_id = key_id if isinstance(key_id, str) else None
        return ServiceAccount(account_id, str(body.get("name", name)), key_id, Secret(value))

    def delete_service_account(self, project_id: str, account_id: str) -> bool:
        """Delete; False when it was already gone (a resumed deletion)."""
        path = f"/organization/projects/{project_id}/service_accounts/{account_id}"
        return self._call("DELETE", path, missing_ok=True) is not None

    def find_service_account(self, project_id: str, name: str) -> str | None:
        """The id of the project's service account called `name`, found through its API key
        (the key list names each key's owner)."""
        for key in self.list_api_keys(project_id):
            owner = key.get("owner")
            account = owner.get("service_account") if isinstance(owner, dict) else None
            if not isinstance(owner, dict) or not isinstance(account, dict):
                continue
            if owner.get("type") == "service_account" and account.get("name") == name:
                found = account.get("id")
                return found if isinstance(found, str) else None
        return None

    def costs(self, start: int, end: int, *, project_ids: list[str] | None = None) -> list[CostRow]:
        """Daily spend grouped by project and API key, every page (`page=<next_page>`)."""
        params: dict[str, Any] = {
            "start_time": start,
            "end_time": end,
            "bucket_width": "1d",
            "limit": 31,
            "group_by[]": ["project_id", "api_key_id"],
            **({"project_ids[]": project_ids} if project_ids else {}),
        }
        rows: list[CostRow] = []
        path = "/organization/costs"
        cursors = Cursors("GET", path)
        for _ in range(MAX_PAGES):
            body = self._call("GET", path, params=params)
            for bucket in page_data(body, "GET", path):
                rows += cost_rows(bucket, path)
            if not body.get("has_more") or not body.get("next_page"):
                return rows
            params["page"] = cursors.next(body["next_page"])
        raise malformed("GET", path, f"more than {MAX_PAGES} pages")

    def ping(self, name: str, clock: Callable[[], datetime]) -> HealthResult:
        """Check the admin key itself with the cheapest admin call (one project)."""
        checked_at = iso(clock())
        verdict, _, exchange = self._send("GET", "/organization/projects", params={"limit": 1})
        return HealthResult.from_verdict(
            name,
            checked_at,
            verdict,
            latency_ms=exchange.latency_ms,
            attempts=exchange.attempts,
            evidence=f"admin api: {verdict.evidence}",
        )


_HINTS: Final[dict[object, str]] = {
    "deadline": "the server answered too slowly: raise --timeout (or timeout in config.toml)",
    "run_deadline": "the command ran out of time: raise --run-timeout (or run_timeout)",
    Status.INVALID: "the admin key was revoked or mistyped: add a new one with `keyvault add`",
    Status.FORBIDDEN: "the key lacks admin scopes: use an `sk-admin-…` key with full access",
    Status.RATE_LIMITED: "the admin api is rate limiting: run the command again later",
    Status.NETWORK_ERROR: "check the network or the `proxy` setting in config.toml",
}


def _duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h`: a wait for people, relative, so no time zone is involved."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.0f} h"

"""The Administration API part of the fake server (admin keys `sk-admin-…`).

Projects, project API keys (list/get/delete), service accounts (create/delete: the only way to
mint a key by API) and costs with pagination, shaped as in docs/openai-api.md.
Keys minted here work on the model API of the same server; deleted keys stop working.
Error wording for unknown ids is unconfirmed (plain invalid_request_error bodies).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.fake_openai_responses import (
    Canned,
    admin_redacted,
    error_body,
    invalid_key,
    make_key,
    missing_scopes,
    no_auth,
)

if TYPE_CHECKING:
    from tests.fake_openai import FakeOpenAI, Request

DAY = 86_400


@dataclass
class ApiKey:
    id: str
    name: str
    value: str
    created_at: int
    owner: dict[str, Any]
    last_used_at: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "object": "organization.project.api_key",
            "redacted_value": admin_redacted(self.value),
            "name": self.name,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "id": self.id,
            "owner": self.owner,
        }


@dataclass
class Project:
    id: str
    name: str
    created_at: int
    archived_at: int | None = None
    keys: dict[str, ApiKey] = field(default_factory=dict)
    service_accounts: dict[str, str] = field(default_factory=dict)  # svc id -> key id

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "organization.project",
            "name": self.name,
            "created_at": self.created_at,
            "archived_at": self.archived_at,
            "status": "archived" if self.archived_at else "active",
        }


@dataclass(frozen=True)
class CostItem:
    when: int
    amount: float
    project_id: str
    api_key_id: str | None
    line_item: str


def _json(status: int, doc: dict[str, Any]) -> Canned:
    return Canned(status, json.dumps(doc).encode())


def _bad(status: int, message: str) -> Canned:
    return Canned(status, error_body(message, "invalid_request_error", None))


def _first(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    values = query.get(name) or query.get(name + "[]")
    return values[0] if values else default


def _many(query: dict[str, list[str]], name: str) -> list[str]:
    return [*query.get(name, []), *query.get(name + "[]", [])]


def page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """Cursor pagination: `limit` (1..100, default 20) and `after=<id>`."""
    limit = max(1, min(100, int(_first(query, "limit", "20") or 20)))
    after = _first(query, "after")
    ids = [item["id"] for item in items]
    start = ids.index(after) + 1 if after in ids else 0
    chunk = items[start : start + limit]
    return {
        "object": "list",
        "data": chunk,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
        "has_more": start + limit < len(items),
    }


class AdminAPI:
    """State and handlers; `handle` answers /v1/organization/* and ignores other paths."""

    def __init__(self, server: FakeOpenAI, clock: Callable[[], float] = time.time) -> None:
        self.server = server
        self.clock = clock
        self.admin_keys: set[str] = set()
        self.projects: dict[str, Project] = {}
        self.costs: list[CostItem] = []
        # (method, path suffix, answer) served in order before the real handler: a 502, a reset
        self.faults: list[tuple[str, str, Canned]] = []
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Canned]]] = [
            ("GET", re.compile(r"/v1/organization/projects"), self._list_projects),
            ("GET", re.compile(r"/v1/organization/projects/([^/]+)/api_keys"), self._list_keys),
            (
                "GET",
                re.compile(r"/v1/organization/projects/([^/]+)/api_keys/([^/]+)"),
                self._get_key,
            ),
            (
                "DELETE",
                re.compile(r"/v1/organization/projects/([^/]+)/api_keys/([^/]+)"),
                self._delete_key,
            ),
            (
                "POST",
                re.compile(r"/v1/organization/projects/([^/]+)/service_accounts"),
                self._create_svc,
            ),
            (
                "DELETE",
                re.compile(r"/v1/organization/projects/([^/]+)/service_accounts/([^/]+)"),
                self._delete_svc,
            ),
            ("GET", re.compile(r"/v1/organization/costs"), self._costs),
        ]

    # --- setup helpers for tests ----------------------------------------------------------

    def add_admin_key(self) -> str:
        key = make_key(f"admin-{len(self.admin_keys)}", "admin")
        self.admin_keys.add(key)
        return key

    def add_project(self, name: str, *, archived: bool = False) -> str:
        pid = "proj_" + secrets.token_hex(12)
        now = int(self.clock())
        self.projects[pid] = Project(pid, name, now, now if archived else None)
        return pid

    def add_user_key(self, project_id: str, name: str = "user key") -> tuple[str, str]:
        """A user-owned key in a project (such keys cannot be created by API): (key id, value)."""
        value = self.server.add_key("ok")
        owner = {"type": "user", "user": {"id": "user_" + secrets.token_hex(8), "name": "Test"}}
        return self._store_key(project_id, name, value, owner), value

    def add_cost(
        self,
        when: int,
        amount: float,
        project_id: str,
        api_key_id: str | None = None,
        line_item: str = "gpt-4o-mini, input",
    ) -> None:
        self.costs.append(CostItem(when, amount, project_id, api_key_id, line_item))

    def fail_next(self, method: str, *answers: Canned, path: str = "") -> None:
        """The next requests with `method` (to a path ending in `path`), once authenticated,
        get `answers`, one each, instead of the real one: `Canned(502)`, `Canned(reset=True)`
        (a TCP reset)."""
        self.faults += [(method.upper(), path, answer) for answer in answers]

    def _store_key(self, project_id: str, name: str, value: str, owner: dict[str, Any]) -> str:
        kid = "key_" + secrets.token_hex(8)
        self.projects[project_id].keys[kid] = ApiKey(kid, name, value, int(self.clock()), owner)
        return kid

    # --- dispatch -------------------------------------------------------------------------

    def model_api_refusal(self, key: str) -> Canned | None:
        """An admin key cannot call the model API (status and wording unconfirmed)."""
        return missing_scopes("api.model.read") if key in self.admin_keys else None

    def handle(self, request: Request) -> Canned | None:
        if not request.path.startswith("/v1/organization/"):
            return None
        if not request.key:
            return no_auth()
        if request.key not in self.admin_keys:
            if request.key in self.server.keys:
                return missing_scopes("api.management.read")
            return invalid_key(request.key)
        return self._take_fault(request) or self._route(request)

    def _route(self, request: Request) -> Canned:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                return handler(request, *match.groups())
        return _bad(404, f"Invalid URL ({request.method} {request.path})")

    def _take_fault(self, request: Request) -> Canned | None:
        for fault in self.faults:
            method, suffix, answer = fault
            if method == request.method and request.path.endswith(suffix):
                self.faults.remove(fault)
                return answer
        return None

    def _project(self, pid: str) -> Project | None:
        return self.projects.get(pid)

    # --- handlers -------------------------------------------------------------------------

    def _list_projects(self, request: Request) -> Canned:
        archived = (_first(request.query, "include_archived", "false") or "").lower() == "true"
        items = [p.as_json() for p in self.projects.values() if archived or not p.archived_at]
        return _json(200, page(items, request.query))

    def _list_keys(self, request: Request, pid: str) -> Canned:
        project = self._project(pid)
        if project is None:
            return _bad(404, f"No such project: {pid}")
        return _json(200, page([k.as_json() for k in project.keys.values()], request.query))

    def _get_key(self, request: Request, pid: str, kid: str) -> Canned:
        project = self._project(pid)
        if project is None or kid not in project.keys:
            return _bad(404, f"No such API key: {kid}")
        return _json(200, project.keys[kid].as_json())

    def _delete_key(self, request: Request, pid: str, kid: str) -> Canned:
        project = self._project(pid)
        if project is None or kid not in project.keys:
            return _bad(404, f"No such API key: {kid}")
        if project.keys[kid].owner.get("type") == "service_account":
            return _bad(
                400, "Cannot delete a service account's API key; delete the service account"
            )
        self.server.keys.pop(project.keys.pop(kid).value, None)
        return _json(
            200, {"object": "organization.project.api_key.deleted", "id": kid, "deleted": True}
        )

    def _create_svc(self, request: Request, pid: str) -> Canned:
        project = self._project(pid)
        if project is None:
            return _bad(404, f"No such project: {pid}")
        try:
            name = request.json()["name"]
        except (ValueError, KeyError, TypeError):
            return Canned(
                400,
                error_body(
                    "Missing required parameter: 'name'.",
                    "invalid_request_error",
                    "missing_required_parameter",
                    "name",
                ),
            )
        sid = "svc_acct_" + secrets.token_hex(8)
        value = self.server.add_key("ok", key=make_key(sid, "svcacct"))
        owner = {
            "type": "service_account",
            "service_account": {"id": sid, "name": name, "role": "member"},
        }
        kid = self._store_key(pid, "Secret Key", value, owner)
        project.service_accounts[sid] = kid
        now = int(self.clock())
        api_key = {
            "object": "organization.project.service_account.api_key",
            "value": value,
            "name": "Secret Key",
            "created_at": now,
            "id": kid,
        }
        return _json(
            200,
            {
                "object": "organization.project.service_account",
                "id": sid,
                "name": name,
                "role": "member",
                "created_at": now,
                "api_key": api_key,
            },
        )

    def _delete_svc(self, request: Request, pid: str, sid: str) -> Canned:
        project = self._project(pid)
        if project is None or sid not in project.service_accounts:
            return _bad(404, f"No such service account: {sid}")
        kid = project.service_accounts.pop(sid)
        self.server.keys.pop(project.keys.pop(kid).value, None)
        return _json(
            200,
            {"object": "organization.project.service_account.deleted", "id": sid, "deleted": True},
        )

    def _costs(self, request: Request) -> Canned:
        q = request.query
        start = _first(q, "start_time")
        if start is None or not start.isdigit():
            return Canned(
                400,
                error_body(
                    "Missing required parameter: 'start_time'.",
                    "invalid_request_error",
                    "missing_required_parameter",
                    "start_time",
                ),
            )
        if (_first(q, "bucket_width", "1d") or "1d") != "1d":
            return _bad(400, "Invalid value for 'bucket_width': only '1d' is supported.")
        first_day = int(start) - int(start) % DAY
        end = int(_first(q, "end_time") or self.clock())
        starts = list(range(first_day, end, DAY))
        offset = int((_first(q, "page") or "page_0").removeprefix("page_") or 0)
        limit = max(1, min(180, int(_first(q, "limit", "7") or 7)))
        chunk = starts[offset : offset + limit]
        more = offset + limit < len(starts)
        data = [self._bucket(s, q) for s in chunk]
        return _json(
            200,
            {
                "object": "page",
                "data": data,
                "has_more": more,
                "next_page": f"page_{offset + limit}" if more else None,
            },
        )

    def _bucket(self, start: int, q: dict[str, list[str]]) -> dict[str, Any]:
        projects, keys, groups = (
            _many(q, "project_ids"),
            _many(q, "api_key_ids"),
            _many(q, "group_by"),
        )
        totals: dict[tuple[str | None, ...], float] = {}
        for item in self.costs:
            if not start <= item.when < start + DAY:
                continue
            if (projects and item.project_id not in projects) or (
                keys and item.api_key_id not in keys
            ):
                continue
            group = tuple(
                getattr(item, g) if g in groups else None
                for g in ("project_id", "line_item", "api_key_id")
            )
            totals[group] = totals.get(group, 0.0) + item.amount
        results = [
            {
                "object": "organization.costs.result",
                "amount": {"value": round(v, 6), "currency": "usd"},
                "project_id": g[0],
                "line_item": g[1],
                "api_key_id": g[2],
            }
            for g, v in totals.items()
        ]
        return {
            "object": "bucket",
            "start_time": start,
            "end_time": start + DAY,
            "results": results,
        }

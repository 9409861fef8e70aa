"""Reading the Administration API's answers: list pages, cursors and cost buckets.

Strict on purpose: `usage` adds up what these return, so an answer of the wrong shape (a relay
or a cache in front of the API, a changed API) fails the call with one line rather than
giving a partial sum, a NaN or a page counted twice. Pure: no network (admin.py calls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from vault.errors import AdminApiError
from vault.health.redact import safe_message

LAST_EPOCH: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second datetime can show


@dataclass(frozen=True)
class CostRow:
    """Spend in one day bucket for one (project, api key) pair, in US dollars."""

    start_time: int
    amount_usd: float
    project_id: str | None
    api_key_id: str | None


def shape(path: str) -> str:
    """The path with ids replaced, so messages stay short and comparable."""
    parts = ["{id}" if p.startswith(("proj_", "svc_acct_", "key_")) else p for p in path.split("/")]
    return safe_message("/".join(parts)) or path


def malformed(method: str, path: str, what: str) -> AdminApiError:
    """An answer that is not what the Administration API sends: never a partial result."""
    return AdminApiError(
        f"admin api: {method} {shape(path)} answered with {what}",
        hint="the admin key's base_url should be the API's own (https://api.openai.com/v1),"
        " not a relay's or a cache's",
    )


def page_data(body: dict[str, Any], method: str, path: str) -> list[Any]:
    """The `data` list of a page (`null` or absent: no items)."""
    data = body.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise malformed(method, path, "no list of items in `data`")
    return data


class Cursors:
    """The cursors of one listing. A cursor seen before would page forever (a cache in front
    of the API that ignores the query answers the first page again and again), and counting
    its items twice would double a spend."""

    def __init__(self, method: str, path: str) -> None:
        self._seen: set[str] = set()
        self._method, self._path = method, path

    def next(self, cursor: object) -> str:
        if not isinstance(cursor, str) or cursor in self._seen:
            raise malformed(self._method, self._path, "the same page again")
        self._seen.add(cursor)
        return cursor


def cost_rows(bucket: Any, path: str) -> list[CostRow]:
    """A day bucket's rows. A bucket whose time or amounts are not numbers fails the call: a
    spend report that silently left them out (or added a NaN) would be wrong."""
    if not isinstance(bucket, dict):
        raise malformed("GET", path, "a cost bucket that is not an object")
    start, results = bucket.get("start_time"), bucket.get("results") or []
    if not _is_number(start) or not 0 <= start <= LAST_EPOCH or not isinstance(results, list):
        raise malformed("GET", path, "a cost bucket without a start time or results")
    rows = []
    for result in results:
        amount = result.get("amount") if isinstance(result, dict) else None
        value = amount.get("value") if isinstance(amount, dict) else None
        if value is None:
            continue  # a row without an amount spends nothing
        if not _is_number(value) or not math.isfinite(value):
            raise malformed("GET", path, "a cost that is not a number")
        project, key = result.get("project_id"), result.get("api_key_id")
        rows.append(CostRow(int(start), float(value), _id(project), _id(key)))
    return rows


def _id(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

"""The probes run against one target, and how their answers combine into one `HealthResult`.

models (free) → chat (deep, ~1 token) → balance (relays only); a failed probe ends the chain,
because a key that cannot list models will not complete a chat either.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from vault.health.model import Classification, HealthResult, Probe, ProbeTarget, Status
from vault.health.redact import safe_message
from vault.health.transport import Exchange, Session, refusal
from vault.model.clock import iso

USAGE_WINDOW_DAYS: Final = 99  # OpenAI's legacy usage endpoint refused ranges over 100 days


@dataclass(frozen=True)
class ProbePlan:
    """Which probes to run, shared by every target of one check."""

    deep: bool = False
    model: str = "gpt-4o-mini"
    balance: bool = False
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def chat_body(model: str) -> dict[str, Any]:
    """The cheapest chat request that still proves credit and model access (see reference)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 1,
    }


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _number(value: object) -> float | None:
    """A finite number from a JSON number or a numeric string (relays send both); None for
    anything else, NaN, infinities and integers too large for a float (JSON allows them)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _list_field(body: bytes, key: str) -> list[Any] | None:
    doc = _json(body)
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, list) else None


def _require_list(exchange: Exchange, key: str, what: str) -> Exchange:
    """An OK answer whose body lacks the expected list is not OK: a relay page, a captive portal."""
    verdict = exchange.classification
    if verdict.status is not Status.OK or _list_field(exchange.body, key) is not None:
        return exchange
    evidence = f"http {verdict.http_status} without {what}"
    bad = dataclasses.replace(verdict, status=Status.UNEXPECTED, evidence=evidence)
    return dataclasses.replace(exchange, classification=bad)


async def _balance(session: Session, today: date) -> tuple[float | None, int, str | None]:
    """Remaining USD from a relay's billing endpoints: hard_limit_usd - total_usage/100
    (one-api and new-api report usage in cents); the note says why there is none."""
    sub = await session.call("GET", "/dashboard/billing/subscription")
    hard, missing = _billing_field(sub, "hard_limit_usd")
    if hard is None:
        return None, sub.attempts, missing
    window = {
        "start_date": (today - timedelta(days=USAGE_WINDOW_DAYS)).isoformat(),
        "end_date": (today + timedelta(days=1)).isoformat(),
    }
    usage = await session.call("GET", "/dashboard/billing/usage", params=window)
    attempts = sub.attempts + usage.attempts
    cents, missing = _billing_field(usage, "total_usage")
    if cents is None:
        return None, attempts, missing
    balance = hard - cents / 100
    if cents < 0 or not math.isfinite(balance):  # spending is never negative
        return None, attempts, f"balance unavailable (total_usage {cents:g} makes no sense)"
    return round(balance, 6), attempts, None


def _billing_field(exchange: Exchange, field: str) -> tuple[float | None, str | None]:
    """`field` of a billing answer as a finite number, else None and why."""
    verdict = exchange.classification
    if verdict.status is not Status.OK:
        return None, f"balance unavailable ({verdict.evidence})"
    doc = _json(exchange.body)
    value = _number(doc.get(field)) if isinstance(doc, dict) else None
    if value is None:
        return None, f"balance unavailable (http {verdict.http_status} without a numeric {field})"
    return value, None


def _result(
    target: ProbeTarget,
    checked_at: str,
    verdict: Classification,
    probe: Probe,
    **extra: Any,
) -> HealthResult:
    return HealthResult.from_verdict(target.name, checked_at, verdict, probe=probe, **extra)


async def _run(session: Session, plan: ProbePlan, checked_at: str) -> HealthResult:
    target = session.target
    steps: list[tuple[Probe, Exchange]] = []
    models = _require_list(await session.call("GET", "/models"), "data", "a model list")
    steps.append(("models", models))
    if plan.deep and models.classification.status is Status.OK:
        chat = await session.call("POST", "/chat/completions", json_body=chat_body(plan.model))
        steps.append(("chat", _require_list(chat, "choices", "choices")))
    probe, deciding = next(
        ((p, e) for p, e in steps if e.classification.status is not Status.OK), steps[-1]
    )
    verdict = deciding.classification
    if verdict.ratelimit is None:  # /models rarely carries rate-limit headers; chat does
        verdict = dataclasses.replace(verdict, ratelimit=models.classification.ratelimit)
    model_list = _list_field(models.body, "data")
    attempts = sum(e.attempts for _, e in steps)
    balance_usd = None
    if plan.balance and verdict.status is Status.OK:
        balance_usd, more, note = await _balance(session, plan.clock().date())
        attempts += more
        if note:
            verdict = dataclasses.replace(verdict, evidence=f"{verdict.evidence}; {note}")
        elif balance_usd is not None and balance_usd <= 0:
            verdict = dataclasses.replace(
                verdict, status=Status.QUOTA_EXHAUSTED, evidence=f"balance {balance_usd:.2f} usd"
            )
            probe = "balance"
    return _result(
        target,
        checked_at,
        verdict,
        probe,
        latency_ms=deciding.latency_ms,
        attempts=attempts,
        balance_usd=balance_usd,
        models=len(model_list) if model_list is not None else None,
        retry_at=_retry_at(verdict, plan.clock()),
    )


def _retry_at(verdict: Classification, answered: datetime) -> str | None:
    """When the server said to try again, counted from its last answer (not from the start
    of the check, which may be several waits earlier)."""
    wait = verdict.wait_hint_s
    return None if wait is None else iso(answered + timedelta(seconds=wait))


async def probe_target(session: Session, plan: ProbePlan) -> HealthResult:
    """Check one target. Never raises: any failure becomes a classified result."""
    checked_at = iso(plan.clock())
    refused = refusal(session.target)
    if refused is not None:
        return _result(session.target, checked_at, refused, "models")
    try:
        return await _run(session, plan, checked_at)
    except Exception as exc:  # a bug here must cost one key's result, not the whole batch
        message = safe_message(f"{type(exc).__name__}: {exc}", session.secrets)
        failed = Classification(
            Status.UNEXPECTED, False, "internal error", error_code="client_error", message=message
        )
        return _result(session.target, checked_at, failed, "models")

"""The vocabulary of a health check: statuses, targets, classifications and results.

Pure data, no network: the CLI and the vault model can import this (to show or store the last
result of a key) without loading httpx.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final, Literal

from vault.model.health import HealthStatus
from vault.model.secret import Secret

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"
# Seconds one key may spend waiting for retries in all (every Retry-After and backoff): a
# key still rate-limited after that is reported `rate_limited` with its retry time. 20 s
# honours OpenAI's usual "try again in 20s" once; 30 keys rate-limited that way then cost
# ~20 s, not 40+.
DEFAULT_MAX_WAIT: Final = 20.0

Probe = Literal["models", "chat", "balance"]


# The one status enum (vault/model/health.py), under the name the checker's code uses.
Status = HealthStatus


@dataclass(frozen=True)
class ProbeTarget:
    """What the checker needs from a vault entry. The secret is revealed only for the header."""

    name: str
    secret: Secret
    base_url: str = OPENAI_BASE_URL
    org_id: str | None = None
    project_id: str | None = None

    @classmethod
    def from_entry(cls, entry: object) -> ProbeTarget:
        """A target from a vault entry: anything with `name` and `secret`, and optionally
        `base_url`, `org_id`, `project_id` (None or empty means the default)."""
        name = getattr(entry, "name")  # noqa: B009 - duck-typed on purpose, see docstring
        secret = getattr(entry, "secret")  # noqa: B009
        if not isinstance(secret, Secret):
            raise TypeError("entry.secret must be a Secret")
        return cls(
            name=str(name),
            secret=secret,
            base_url=getattr(entry, "base_url", None) or OPENAI_BASE_URL,
            org_id=getattr(entry, "org_id", None) or None,
            project_id=getattr(entry, "project_id", None) or None,
        )


@dataclass(frozen=True)
class Classification:
    """The verdict on one HTTP answer (or transport failure), with the evidence that decided it.

    `message` is already masked; `evidence` names the rule that matched, e.g.
    `code=insufficient_quota` or `message contains '余额不足'`. `retry_after_s` comes from
    headers and drives retries (as in the official SDKs); `retry_hint_s` is the wait named in
    the message ("Please try again in 20s"), only reported.
    """

    status: Status
    retryable: bool
    evidence: str
    http_status: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    message: str | None = None
    retry_after_s: float | None = None
    request_id: str | None = None
    ratelimit: dict[str, float] | None = None
    retry_hint_s: float | None = None

    @property
    def wait_hint_s(self) -> float | None:
        """What to tell the user about waiting: the header's demand, else the message's."""
        return self.retry_after_s if self.retry_after_s is not None else self.retry_hint_s


@dataclass(frozen=True)
class HealthResult:
    """The outcome of checking one key; safe to print, log and store (it never holds the secret)."""

    name: str
    status: Status
    checked_at: str
    latency_ms: int | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    message: str | None = None
    request_id: str | None = None
    models: int | None = None
    ratelimit: dict[str, float] | None = None
    retry_after_s: float | None = None
    attempts: int = 0
    probe: Probe = "models"
    balance_usd: float | None = None
    evidence: str | None = None
    retry_at: str | None = None  # when retrying makes sense: the last answer + its wait

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (status as its string value)."""
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_verdict(
        cls, name: str, checked_at: str, verdict: Classification, **extra: Any
    ) -> HealthResult:
        """A result carrying a classification's evidence; `extra` sets the other fields."""
        fields: dict[str, Any] = {
            "http_status": verdict.http_status,
            "error_type": verdict.error_type,
            "error_code": verdict.error_code,
            "message": verdict.message,
            "request_id": verdict.request_id,
            "ratelimit": verdict.ratelimit,
            "retry_after_s": verdict.wait_hint_s,
            "evidence": verdict.evidence,
        }
        return cls(name=name, status=verdict.status, checked_at=checked_at, **(fields | extra))

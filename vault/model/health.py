"""A key's health as the vault stores it: one status enum used everywhere, and the record of
the last check.

`HealthStatus` is the fixed set of verdicts the checker (vault/health/) reaches and that
policies, rotation, `list` and the docs speak of; docs/health.md is generated from
`ADVICE`. `HealthRecord` is what `entry.health` holds: the last check's evidence plus the
bookkeeping the policies need. Pure data: no network, cheap to import.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


class HealthStatus(StrEnum):
    """The verdict on one key; `ADVICE` says what to do about each."""

    OK = "ok"
    INVALID = "invalid"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMITED = "rate_limited"
    REGION_BLOCKED = "region_blocked"
    FORBIDDEN = "forbidden"
    MODEL_UNAVAILABLE = "model_unavailable"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    UNEXPECTED = "unexpected"


S = HealthStatus
# Waiting will not fix these: the user must act (a new key, billing, a VPN, a scope).
HARD_FAILURES: Final = frozenset({S.INVALID, S.QUOTA_EXHAUSTED, S.REGION_BLOCKED, S.FORBIDDEN})
# `GET /models` answers 200 for a key without credit or model access: only a real request
# (the chat probe) or the relay's balance can see these.
DEEP_ONLY: Final = frozenset({S.QUOTA_EXHAUSTED, S.MODEL_UNAVAILABLE})
# Say nothing about the key itself: the network, a proxy or the server failed.
NOT_THE_KEY: Final = frozenset({S.NETWORK_ERROR, S.SERVER_ERROR})

# One line per status: what it means for the user and what to do. docs/health.md is made
# from this table (tests/test_cli_docs.py keeps them equal) and `check` prints it.
ADVICE: Final[Mapping[HealthStatus, str]] = MappingProxyType(
    {
        S.OK: "the key answered; nothing to do",
        S.INVALID: "revoked, deleted or mistyped: retire it and add a new key",
        S.QUOTA_EXHAUSTED: "no credit left or billing failed: recharge the card, or rotate",
        S.RATE_LIMITED: "too many requests: wait for the retry time, or rotate to spread load",
        S.REGION_BLOCKED: "the API refuses this country: use a proxy or a relay base URL",
        S.FORBIDDEN: "the key lacks access (scope, org or project): check its permissions",
        S.MODEL_UNAVAILABLE: "the key cannot use this model: pick another --model or key",
        S.SERVER_ERROR: "the API or relay failed: try again later; the key may be fine",
        S.NETWORK_ERROR: "could not reach the API: check the network, proxy and base URL",
        S.UNEXPECTED: "an answer keyvault does not understand: does base_url end in /v1?",
    }
)


def parse_status(value: object) -> HealthStatus | None:
    """The status named by a stored string; None for one this keyvault does not know."""
    try:
        return HealthStatus(str(value))
    except ValueError:
        return None


class HealthRecord(NamedTuple):
    """The last check of one key (`entry.health`); never holds the secret.

    The evidence fields mirror `vault.health.model.HealthResult`; the bookkeeping is
    `consecutive_failures` (hard failures in a row), `last_ok_at`, and `disabled_by_policy`
    when the `[health] disable_after` policy disabled the key.
    """

    status: HealthStatus
    checked_at: str
    probe: str = "models"
    latency_ms: int | None = None
    http_status: int | None = None
    error_type: str | None = None
    error_code: str | None = None
    message: str | None = None
    request_id: str | None = None
    models: int | None = None
    ratelimit: Mapping[str, float] | None = None
    retry_after_s: float | None = None
    attempts: int = 0
    balance_usd: float | None = None
    evidence: str | None = None
    retry_at: str | None = None  # when the server said to try again (rate limits)
    consecutive_failures: int = 0
    last_ok_at: str | None = None
    disabled_by_policy: bool = False
    extra: Mapping[str, Any] = EMPTY  # fields a newer keyvault stored: kept and written back

    @property
    def ok(self) -> bool:
        return self.status is HealthStatus.OK


# stored field → its JSON types; the codec checks these and the values' ranges
HEALTH_FIELDS: Final[Mapping[str, tuple[type, ...]]] = MappingProxyType(
    {
        "status": (str,),
        "checked_at": (str,),
        "probe": (str,),
        "latency_ms": (int, type(None)),
        "http_status": (int, type(None)),
        "error_type": (str, type(None)),
        "error_code": (str, type(None)),
        "message": (str, type(None)),
        "request_id": (str, type(None)),
        "models": (int, type(None)),
        "ratelimit": (dict, type(None)),
        "retry_after_s": (int, float, type(None)),
        "attempts": (int,),
        "balance_usd": (int, float, type(None)),
        "evidence": (str, type(None)),
        "retry_at": (str, type(None)),
        "consecutive_failures": (int,),
        "last_ok_at": (str, type(None)),
        "disabled_by_policy": (bool,),
    }
)

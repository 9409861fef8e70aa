"""Health checks for API keys: probes against the OpenAI API (or a relay), classified results.

    from vault.health import ProbeTarget, check
    results = check([ProbeTarget("main", secret)], deep=True)

The data types and the classifier load without httpx; `check`, `check_targets` and the other
network pieces are imported on first use, so code that only reads stored results stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vault.health.classify import classify
from vault.health.model import (
    OPENAI_BASE_URL,
    Classification,
    HealthResult,
    Probe,
    ProbeTarget,
    Status,
)
from vault.health.ratelimit import parse_go_duration, parse_ratelimit, parse_retry_after
from vault.health.redact import mask_text

if TYPE_CHECKING:
    from vault.health.runner import (
        DEFAULT_CONCURRENCY,
        check,
        check_targets,
        exit_code,
    )

_LAZY = {
    "DEFAULT_CONCURRENCY": "vault.health.runner",
    "check": "vault.health.runner",
    "check_targets": "vault.health.runner",
    "exit_code": "vault.health.runner",
}

__all__ = [
    "DEFAULT_CONCURRENCY",
    "OPENAI_BASE_URL",
    "Classification",
    "HealthResult",
    "Probe",
    "ProbeTarget",
    "Status",
    "check",
    "check_targets",
    "classify",
    "exit_code",
    "mask_text",
    "parse_go_duration",
    "parse_ratelimit",
    "parse_retry_after",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vault.health' has no attribute {name!r}")

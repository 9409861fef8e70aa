"""`[health]` in config.toml: when `check` disables a failing standby key, which statuses
count as hard failures, and how long a key's retries may wait in all.

    [health]
    disable_after = 3     # disable a standby key after 3 hard failures in a row
    max_wait = 20         # seconds of Retry-After waits per key, in all

Pure: config in, policy out. The settings' checks are shared with `[rotation]`
(vault/rotation/policy.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.errors import ConfigError
from vault.health.model import DEFAULT_MAX_WAIT
from vault.model.health import HARD_FAILURES, HealthStatus
from vault.store.config import Config


@dataclass(frozen=True)
class HealthPolicy:
    """`[health]`: when `check` disables a failing standby key (None: never)."""

    disable_after: int | None = None
    hard: frozenset[HealthStatus] = HARD_FAILURES
    max_wait: float = DEFAULT_MAX_WAIT


def statuses(value: object, where: str) -> frozenset[HealthStatus]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"config.toml: {where} must be a list of statuses")
    known = {s.value for s in HealthStatus}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(
            f"config.toml: {where} has unknown status {unknown[0]!r}",
            hint="statuses: " + ", ".join(sorted(known)),
        )
    return frozenset(HealthStatus(v) for v in value)


def number(value: object, where: str, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"config.toml: {where} must be a number >= {minimum:g}")
    return float(value)


def health_policy(config: Config) -> HealthPolicy:
    raw = dict(config.health)
    unknown = sorted(set(raw) - {"disable_after", "hard", "max_wait"})
    if unknown:
        raise ConfigError(f"config.toml: unknown setting health.{unknown[0]}")
    after = raw.get("disable_after")
    hard = statuses(raw["hard"], "health.hard") if "hard" in raw else HARD_FAILURES
    wait = number(raw.get("max_wait", DEFAULT_MAX_WAIT), "health.max_wait")
    if after is None:
        return HealthPolicy(None, hard, wait)
    return HealthPolicy(int(number(after, "health.disable_after", minimum=1)), hard, wait)

"""What `keyvault doctor` reports: one `Check` per finding, at a `Level`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    area: str
    level: Level
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {**asdict(self), "level": str(self.level)}


def needs_fixing(checks: list[Check]) -> bool:
    return any(c.level in (Level.WARN, Level.FAIL) for c in checks)

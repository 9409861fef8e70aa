"""A string that will not print itself.

Every API key and identity travels through the library as a `Secret`, so that a stray
`print`, f-string, log call, `repr` in a traceback or `json.dumps` cannot leak it. The raw
value is only available through `reveal()`, which is easy to grep for.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final


_SHOWN_TAIL: Final = 4
# the public head of a key: the masked form shows it, so revealing it reveals nothing
KNOWN_PREFIXES: Final = ("sk-svcacct-", "sk-admin-", "sk-proj-", "sk-", "AGE-SECRET-KEY-1")


def mask(value: str) -> str:
    """Return a display form that identifies a key without revealing it: `sk-…wxyz`."""
    if len(value) < 12:
        return "…" * (len(value) > 0)
    for prefix in KNOWN_PREFIXES:
        if value.startswith(prefix):
            return f"{prefix}…{value[-_SHOWN_TAIL:]}"
    return f"…{value[-_SHOWN_TAIL:]}"


class Secret:
    """An immutable secret string whose str/repr/format are masked."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        """The raw value. Call only where the user asked for it or the API needs it."""
        return self._value

    @property
    def masked(self) -> str:
        return mask(self._value)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"Secret({self.masked!r})"

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        from cryptography.hazmat.primitives.constant_time import bytes_eq  # noqa: PLC0415

        return bytes_eq(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __len__(self) -> int:
        return len(self._value)

    def __reduce__(self) -> str:
        # pickling would write the raw value somewhere we do not control
        raise TypeError("Secret cannot be pickled")

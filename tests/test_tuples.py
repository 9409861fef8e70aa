"""vault/model/tuples.py builds the same records as typing.NamedTuple, without typing."""

from __future__ import annotations

import typing

import pytest

from vault.model import tuples


def make(base: type) -> type:
    class Point(base):  # type: ignore[misc,valid-type]
        """A point."""

        x: int
        y: int = 0
        label: str | None = None

        @property
        def norm(self) -> int:
            return abs(self.x) + abs(self.y)

        def moved(self, dx: int) -> Point:
            return self._replace(x=self.x + dx)

    return Point


@pytest.mark.parametrize("base", [tuples.NamedTuple, typing.NamedTuple])
def test_same_record_as_typing(base: type) -> None:
    point = make(base)
    p = point(3, label="a")
    assert p == (3, 0, "a") and isinstance(p, tuple)
    assert point._fields == ("x", "y", "label")
    assert point._field_defaults == {"y": 0, "label": None}
    assert p.norm == 3 and p.moved(2).x == 5 and p._asdict()["label"] == "a"
    assert point.__doc__ == "A point." and point.__name__ == "Point"
    assert "make.<locals>.Point" in point.__qualname__ and point.__module__ == __name__
    assert repr(p) == "Point(x=3, y=0, label='a')"
    with pytest.raises(AttributeError):
        p.x = 4  # type: ignore[misc]


def test_a_field_without_default_after_one_with_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default"):

        class Bad(tuples.NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]


def test_what_a_tuple_cannot_have_is_refused() -> None:
    with pytest.raises(TypeError, match="__init__"):

        class Bad(tuples.NamedTuple):
            a: int

            def __init__(self) -> None:  # type: ignore[misc]
                pass

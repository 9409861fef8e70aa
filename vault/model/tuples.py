"""`NamedTuple` class syntax for the records on the daily path, without importing `typing`.

`import typing` costs 12M instructions (~3 ms here), a fifth of `keyvault env`, and the
records of the vault document were the only reason that path needed it. This `NamedTuple`
builds the same class as `typing.NamedTuple` (a `collections.namedtuple` carrying the class
body's docstring, methods and properties); type checkers see `typing.NamedTuple` itself.
String annotations are never evaluated here (typing compiles each one as a ForwardRef).

    from vault.model.tuples import NamedTuple

    class Recipient(NamedTuple):
        name: str
        recipient: str
        added_at: str | None = None
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple  # noqa: PLC0414 - the name this module gives
else:
    from collections import namedtuple

    # what namedtuple defines, or what a class body cannot give a tuple (typing refuses them)
    _REFUSED = frozenset({"__new__", "__init__", "__slots__", "__getnewargs__", "__classcell__"})
    _NOT_COPIED = frozenset({"__module__", "__qualname__", "__annotations__"})

    class _NamedTupleMeta(type):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]):
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", {}))
            defaults = [namespace[field] for field in fields if field in namespace]
            if any(field in namespace for field in fields[: len(fields) - len(defaults)]):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            refused = _REFUSED.intersection(namespace)
            if refused:
                raise TypeError(f"{name}: a NamedTuple cannot define {sorted(refused)[0]}")
            record = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])
            for key, value in namespace.items():
                if key not in _NOT_COPIED and key not in fields:
                    setattr(record, key, value)
            record.__qualname__ = namespace["__qualname__"]
            record.__annotations__ = dict(namespace.get("__annotations__", {}))
            return record

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of an immutable record: fields are the annotated names of the class body."""

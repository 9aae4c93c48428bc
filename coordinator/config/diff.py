"""What a new configuration changes: per kind (builders, schedulers, workers, ...), the names
added, removed and changed. "Changed" compares what the objects are made of, recursively (their
attributes; a function by its code), not where in the file they were written: moving a builder
down the file changes nothing. Objects are pictured (`snapshot`) as loaded, before they run:
running objects gather state (timers, pending changes) that is not configuration."""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Where an object was written, or state it gathers at run time: not what it is.
_IGNORED = frozenset({"defined_at", "location", "_location", "_loc"})


@dataclass
class KindDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


Snapshot = dict[str, Any]  # name -> fingerprint


def snapshot(objects: Mapping[str, object]) -> Snapshot:
    return {name: fingerprint(obj) for name, obj in objects.items()}


def diff(old: Snapshot, new: Snapshot) -> KindDiff:
    """Names in `new` not in `old` (added), the reverse (removed), and in both but made
    differently (changed); each sorted."""
    return KindDiff(
        added=sorted(new.keys() - old.keys()),
        removed=sorted(old.keys() - new.keys()),
        changed=sorted(n for n in old.keys() & new.keys() if old[n] != new[n]),
    )


def fingerprint(obj: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """A comparable, hashable picture of what `obj` is made of."""
    if obj is None or isinstance(obj, bool | int | float | str | bytes):
        return obj
    if id(obj) in _seen:
        return ("<cycle>", type(obj).__qualname__)
    seen = _seen | {id(obj)}
    if isinstance(obj, Mapping):
        return ("map", tuple(sorted(((repr(k), fingerprint(v, seen)) for k, v in obj.items()), key=_first)))
    if isinstance(obj, list | tuple):
        return (type(obj).__name__, tuple(fingerprint(v, seen) for v in obj))
    if isinstance(obj, set | frozenset):
        return ("set", tuple(sorted(repr(fingerprint(v, seen)) for v in obj)))
    if isinstance(obj, type):
        return ("class", obj.__module__, obj.__qualname__)
    if isinstance(obj, types.FunctionType | types.MethodType):
        func = obj.__func__ if isinstance(obj, types.MethodType) else obj
        code = func.__code__
        closure = tuple(fingerprint(c.cell_contents, seen) for c in func.__closure__ or () if _filled(c))
        consts = tuple(fingerprint(c, seen) for c in code.co_consts if not isinstance(c, types.CodeType))
        return ("function", func.__qualname__, code.co_code, consts, closure)
    if isinstance(obj, types.CodeType):
        return ("code", obj.co_code)
    attrs = dict(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in attrs and hasattr(obj, slot):
                attrs[slot] = getattr(obj, slot)
    body = tuple(sorted(((k, fingerprint(v, seen)) for k, v in attrs.items() if k not in _IGNORED), key=_first))
    return (type(obj).__module__, type(obj).__qualname__, body)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _filled(cell: Any) -> bool:
    try:
        return cell.cell_contents is not _EMPTY
    except ValueError:  # a cell not filled yet
        return False


_EMPTY = object()

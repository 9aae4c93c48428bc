"""Which builders the caller of a read may see, handed from the gate down to the read side.

The gate decides once per call: a reader whose read rules are all scoped (builders=/tags=) gets
a Visibility; any other caller gets None (everything, at no cost). The read side (Queries, the
status feed, the lookups) asks `current()` and keeps only what it may show, so an unscoped
listing returns exactly the caller's builders and a hidden builder is never named, as if it did
not exist. A context variable carries it because each gRPC call and HTTP request runs in its own
task; a stream captures it when it starts.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from typing import Protocol


class _Rule(Protocol):
    def covers(self, builder: str, tags: Iterable[str]) -> bool: ...


class Visibility:
    """The builders some scoped rules cover; each name is decided once (memoized), so filtering
    a listing is a set lookup per row, not an authorization call."""

    def __init__(self, rules: Iterable[_Rule], tags_of: Callable[[str], Iterable[str]]) -> None:
        self._rules = list(rules)
        self._tags_of = tags_of
        self._seen: dict[str, bool] = {}

    def sees(self, builder: str) -> bool:
        known = self._seen.get(builder)
        if known is None:
            tags = list(self._tags_of(builder))
            known = self._seen[builder] = any(r.covers(builder, tags) for r in self._rules)
        return known

    def among(self, builders: Iterable[str]) -> frozenset[str]:
        return frozenset(b for b in builders if self.sees(b))


_current: contextvars.ContextVar[Visibility | None] = contextvars.ContextVar("visibility", default=None)


def current() -> Visibility | None:
    """The running call's visibility; None: it may read every builder."""
    return _current.get()


def set_current(visibility: Visibility | None) -> None:
    _current.set(visibility)


def sees(builder: str) -> bool:
    v = _current.get()
    return v is None or v.sees(builder)

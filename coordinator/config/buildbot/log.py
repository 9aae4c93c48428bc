"""What loading a Buildbot ``master.cfg`` learnt about it: each option, where it is, and how it maps.

The compatibility namespaces note every class and option they translate into a
:class:`MigrationLog` that the loader opens around running the file (a context variable, so two
loads never share one). ``checkconfig`` turns the unsupported entries into FILE:LINE problems
and prints the others as notes; ``--from-buildbot`` prints them all as a migration report.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.location import caller_location

# How an option maps; the report's sections, in this order.
SAME = "one-to-one"
DIFFERENT = "different meaning"
IGNORED = "accepted, meaningless for Gantry"
UNSUPPORTED = "not supported"
KINDS = (SAME, DIFFERENT, IGNORED, UNSUPPORTED)


@dataclass(frozen=True)
class Entry:
    kind: str
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class Call:
    """How to write an object in a Gantry-native configuration: ``name(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


class Unsupported:
    """Stands for an object Gantry cannot build (a latent worker, an IRC bot…); the loader drops
    it from the configuration after reporting it, so one mistake gives one message."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<not supported: {self.what}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Unsupported:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self  # `f.addStep(...)`-style chains on an unsupported object stay quiet


class MigrationLog:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, kind: str, text: str, where: tuple[str, int] | None = None) -> None:
        file, line = where if where is not None else caller_location(3)
        entry = Entry(kind, file, line, text)
        if entry not in self.entries:
            self.entries.append(entry)

    def relocate(self, since: int, where: tuple[str, int]) -> None:
        """Entries from `since` on were noted while the loader built something for the file (a
        builder given as a dict): they belong at `where`, not in the loader's caller."""
        moved = [Entry(e.kind, where[0], where[1], e.text) for e in self.entries[since:]]
        del self.entries[since:]
        for e in moved:
            if e not in self.entries:
                self.entries.append(e)

    def of_kind(self, kind: str) -> list[Entry]:
        return [e for e in self.entries if e.kind == kind]


_current: contextvars.ContextVar[MigrationLog | None] = contextvars.ContextVar("gantry_migration_log", default=None)


@contextlib.contextmanager
def recording(log: MigrationLog | None = None) -> Iterator[MigrationLog]:
    """Collect the notes of the configuration run inside this block (into `log`, or a new one)."""
    log = log if log is not None else MigrationLog()
    token = _current.set(log)
    try:
        yield log
    finally:
        _current.reset(token)


def current() -> MigrationLog:
    """The open log; outside a load (a test building objects directly) a throwaway one."""
    return _current.get() or MigrationLog()


def note(kind: str, text: str) -> None:
    """Record `text` at the user's line that called into the compatibility layer."""
    current().add(kind, text, caller_location(2))


def note_at(kind: str, text: str, where: tuple[str, int]) -> None:
    """Record `text` at `where` (a line the layer remembered, such as a generator's)."""
    current().add(kind, text, where)


def native(obj: Any, call: Call) -> Any:
    """Remember how to write `obj` natively (see native.py); returns `obj`."""
    obj.gantry_native = call
    return obj


def native_call(obj: Any) -> Call | None:
    call = getattr(obj, "gantry_native", None)
    return call if isinstance(call, Call) else None

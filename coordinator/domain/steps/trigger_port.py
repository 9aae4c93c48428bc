"""How a running step starts other schedulers' buildsets (the Trigger step) without the domain's
build machinery importing the service: the service implements :class:`TriggerPort` and the
dispatcher hands it to each build runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from coordinator.domain.model import JournalEntry, PropertyValue, SourceStamp
from coordinator.domain.results import Result


async def _nothing_to_stop(reason: str) -> None:
    pass


@dataclass
class Triggered:
    """A buildset a Trigger step started. With `wait`, `finished` resolves to the buildset's
    result and `builds` lists its builds as they start (builder, number)."""

    scheduler: str
    buildset_id: int
    requests: dict[str, int]
    finished: asyncio.Future[Result] | None = None
    builds: list[tuple[str, int]] = field(default_factory=list)
    linked: int = 0  # how many of `builds` the step has linked so far
    # Set whenever a build of the buildset starts or the buildset finishes (with `wait`).
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    release: Callable[[], None] = lambda: None
    # The triggering build was stopped: cancel the buildset's requests that have not started and
    # stop its builds that have.
    stop: Callable[[str], Awaitable[None]] = field(default=_nothing_to_stop)


class TriggerPort(Protocol):
    async def trigger(
        self,
        scheduler: str,
        sourcestamps: Sequence[SourceStamp],
        properties: Sequence[PropertyValue],
        *,
        wait: bool,
        parent: tuple[str, int],
        journal: JournalEntry | None = None,
    ) -> Triggered:
        """Submit a buildset through the Triggerable scheduler named `scheduler` (LookupError
        when there is none); with `wait`, follow it to completion. `journal`: the step's journal
        entry, stored with the buildset (in its transaction)."""
        ...

    async def follow(self, scheduler: str, buildset_id: int, requests: dict[str, int], *, wait: bool) -> Triggered:
        """The buildset a Trigger step submitted before a coordinator restart (its journal says
        which), followed again: the builds it started so far, its result once it is done."""
        ...

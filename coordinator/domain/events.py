"""Status events: every state change is one, stored with an increasing id, then published.

Events are created here (the domain decides what happened), persisted by storage in the same
transaction as the state change they describe, and only then handed to the :class:`EventBus`,
which fans them out to live consumers (status streams, the dispatcher's wake-ups, notifiers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.domain.results import Result

log = logging.getLogger(__name__)

KINDS = (
    "change.added",
    "buildset.added",
    "buildrequest.added",
    "buildrequest.retried",
    "buildrequest.collapsed",
    "buildrequest.cancelled",
    "build.started",
    "build.state",
    "step.started",
    "step.state",
    "step.urls",
    "step.finished",
    "build.finished",
    "buildset.finished",
    "worker.connected",
    "worker.disconnected",
)


@dataclass(frozen=True)
class Event:
    kind: str
    at: float
    builder: str = ""
    build_number: int = 0
    buildset_id: int = 0
    step_number: int = -1
    step_name: str = ""
    result: Result | None = None
    worker: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    id: int = 0

    def with_id(self, event_id: int) -> Event:
        return replace(self, id=event_id)


@dataclass(frozen=True)
class EventFilter:
    builders: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    buildset_id: int = 0
    worker: str = ""

    def matches(self, event: Event) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.buildset_id and event.buildset_id != self.buildset_id:
            return False
        if self.worker and event.worker != self.worker:
            return False
        # Events not tied to a builder (changes, workers) pass a builder filter.
        if self.builders and event.builder and event.builder not in self.builders:
            return False
        return True


class SubscriberOverflow(Exception):
    """The subscriber fell behind by more than its buffer; it must resume from its last id."""


class Subscription:
    """A bounded queue of live events for one consumer."""

    def __init__(self, bus: EventBus, flt: EventFilter, maxsize: int) -> None:
        self._bus = bus
        self.filter = flt
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def offer(self, event: Event) -> None:
        if self.overflowed or not self.filter.matches(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            # Never block the publisher (and so never slow builds): drop the subscriber instead.
            # The queue is full, so a consumer is never left waiting on an empty one.
            self.overflowed = True

    async def get(self) -> Event:
        if self.overflowed:
            raise SubscriberOverflow
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """In-process fan-out of committed events, in id order."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Event], None]] = []
        self.last_id = 0

    def subscribe(self, flt: EventFilter | None = None, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, flt or EventFilter(), maxsize)
        self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)

    def add_listener(self, listener: Callable[[Event], None]) -> None:
        """A synchronous callback for internal consumers that must see every event."""
        self._listeners.append(listener)

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self.last_id = max(self.last_id, event.id)
            for sub in list(self._subscriptions):
                sub.offer(event)
            for listener in self._listeners:
                try:
                    listener(event)
                except Exception:  # a bad listener must not stop the others
                    log.exception("event listener failed on %s", event.kind)

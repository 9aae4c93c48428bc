"""Status events: every state change is one, stored with an increasing id, then published.

Events are built here, one factory per kind (so each kind has one shape), by the domain code that
decides the state change; storage writes them in the same transaction as the change they
describe, and only then hands them to the :class:`EventBus`, which fans them out to live
consumers (status streams, the dispatcher's wake-ups, notifiers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from coordinator.domain.model import Build, BuildRequest, Change, NewBuildset, Step
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
    "worker.state",
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


# ---------------------------------------------------------------- one factory per kind


def change_added(change: Change, at: float) -> Event:
    return Event(
        kind="change.added", at=at,
        details={"change_id": change.id, "author": change.author, "branch": change.branch,
                 "revision": change.revision, "repository": change.repository, "project": change.project},
    )


def buildset_added(buildset_id: int, bs: NewBuildset, at: float) -> Event:
    return Event(
        kind="buildset.added", at=at, buildset_id=buildset_id,
        details={"reason": bs.reason, "scheduler": bs.scheduler, "builders": bs.builders,
                 "change_ids": bs.change_ids,
                 # What the build cancellers compare (scheduling/cancellers.py).
                 "sourcestamps": [{"codebase": s.codebase, "repository": s.repository, "branch": s.branch,
                                   "revision": s.revision, "project": s.project, "patched": bool(s.patch)}
                                  for s in bs.sourcestamps]},
    )


def buildrequest_added(request: BuildRequest, at: float) -> Event:
    return Event(
        kind="buildrequest.added", at=at, builder=request.builder, buildset_id=request.buildset_id,
        details={"request_id": request.id, "priority": request.priority},
    )


def buildrequest_retried(build: Build, at: float) -> Event:
    return Event(
        kind="buildrequest.retried", at=at, builder=build.builder, buildset_id=build.buildset_id,
        details={"request_id": build.build_request_id, "build_number": build.number},
    )


def buildrequest_collapsed(request: BuildRequest, into: BuildRequest, at: float) -> Event:
    return Event(
        kind="buildrequest.collapsed", at=at, builder=into.builder, buildset_id=request.buildset_id,
        result=Result.SKIPPED, details={"request_id": request.id, "absorbed_by": into.id},
    )


def buildrequest_cancelled(request: BuildRequest, reason: str, at: float) -> Event:
    return Event(
        kind="buildrequest.cancelled", at=at, builder=request.builder, buildset_id=request.buildset_id,
        result=Result.CANCELLED, details={"request_id": request.id, "reason": reason},
    )


def buildset_finished(buildset_id: int, result: Result, at: float) -> Event:
    return Event(kind="buildset.finished", at=at, buildset_id=buildset_id, result=result)


def _of_build(kind: str, build: Build, at: float, **fields: Any) -> Event:
    return Event(kind=kind, at=at, builder=build.builder, build_number=build.number,
                 buildset_id=build.buildset_id, worker=build.worker, **fields)


def _of_step(kind: str, build: Build, step: Step, at: float, **fields: Any) -> Event:
    return _of_build(kind, build, at, step_number=step.number, step_name=step.name, **fields)


def build_started(build: Build) -> Event:
    return _of_build("build.started", build, build.started_at,
                     details={"build_id": build.id, "request_id": build.build_request_id})


def build_state(build: Build, state_string: str, at: float) -> Event:
    return _of_build("build.state", build, at, details={"state_string": state_string})


def build_finished(build: Build, result: Result, state_string: str, at: float) -> Event:
    return _of_build("build.finished", build, at, result=result,
                     details={"state_string": state_string, "duration": at - build.started_at})


def step_started(build: Build, step: Step, at: float) -> Event:
    return _of_step("step.started", build, step, at)


def step_state(build: Build, step: Step, state_string: str, at: float) -> Event:
    return _of_step("step.state", build, step, at, details={"state_string": state_string})


def step_urls(build: Build, step: Step, at: float) -> Event:
    return _of_step("step.urls", build, step, at, details={"urls": [{"name": n, "url": u} for n, u in step.urls]})


def step_finished(build: Build, step: Step, result: Result, state_string: str, at: float) -> Event:
    started = step.started_at  # None for a step that never ran (skipped)
    return _of_step("step.finished", build, step, at, result=result,
                    details={"state_string": state_string, "duration": 0.0 if started is None else at - started})


def worker_connected(name: str, info: dict[str, str], at: float) -> Event:
    return Event(kind="worker.connected", at=at, worker=name, details={"info": info})


def worker_disconnected(name: str, reason: str, at: float) -> Event:
    return Event(kind="worker.disconnected", at=at, worker=name, details={"reason": reason})


def worker_state(name: str, state: str, reason: str, at: float) -> Event:
    """An operator paused, drained or resumed a worker ("paused", "draining", "active")."""
    return Event(kind="worker.state", at=at, worker=name, details={"state": state, "reason": reason})


class _Sees(Protocol):
    def sees(self, builder: str) -> bool: ...


@dataclass(frozen=True)
class EventFilter:
    builders: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    buildset_id: int = 0
    worker: str = ""
    # The builders the subscriber may see (None: all); see coordinator/domain/auth/visibility.py.
    visible: Callable[[str], bool] | None = None

    def narrowed(self, visibility: _Sees | None) -> EventFilter:
        return self if visibility is None else replace(self, visible=visibility.sees)

    def matches(self, event: Event) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.visible is not None and not self._visible(event):
            return False
        if self.buildset_id and event.buildset_id != self.buildset_id:
            return False
        if self.worker and event.worker != self.worker:
            return False
        # Events not tied to a builder (changes, workers) pass a builder filter.
        if self.builders and event.builder and event.builder not in self.builders:
            return False
        return True

    def _visible(self, event: Event) -> bool:
        assert self.visible is not None
        if event.builder:
            return self.visible(event.builder)
        named = event.details.get("builders")
        return named is None or any(self.visible(b) for b in named)

    def shown(self, event: Event) -> Event:
        """The event as this subscriber may see it: a buildset's list of builders without the
        hidden ones (a buildset of hidden builders only does not match at all)."""
        named = event.details.get("builders")
        if self.visible is None or named is None:
            return event
        return replace(event, details={**event.details, "builders": [b for b in named if self.visible(b)]})


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

    def remove_listener(self, listener: Callable[[Event], None]) -> None:
        """Stop calling `listener` (a consumer that stopped, e.g. replaced by a reconfig)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

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

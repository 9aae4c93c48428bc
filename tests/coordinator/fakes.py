"""Test doubles for the coordinator domain: a manual clock, the in-memory storage with what the
tests look at recorded, a scripted event log, and a way to wait on them."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.events import Event, EventBus
from coordinator.domain.model import Build, BuildRequest, Buildset, NewBuildset, SchedulerCommit
from coordinator.domain.results import Result
from coordinator.domain.steps.logs import LogWatchers
from coordinator.domain.workers.sessions import WorkerRegistry
from coordinator.storage.memory import MemoryStorage, RequestRow


class Changes:
    """A change counter to wait on: `await changes.until(predicate)` instead of sleeping."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def bump(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._event.clear()
                await self._event.wait()


# ------------------------------------------------------------------------------------ clock


@dataclass(order=True)
class FakeTimer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """Manual time: `advance(dt)` runs due callbacks in time order, with now() at their time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._timers: list[FakeTimer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self._now + delay, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    @property
    def pending(self) -> int:
        return sum(1 for t in self._timers if not t.cancelled)

    def advance(self, seconds: float) -> None:
        target = self._now + seconds
        while self._timers and self._timers[0].when <= target:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = timer.when
            timer.callback()
        self._now = target


# ------------------------------------------------------------------------------------ events


class FakeEventStore:
    """An EventLog whose commits the test interleaves with the feed's reads (as a concurrent
    writer would): `before_read`/`after_read` run around each page read."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.events: list[Event] = []
        self.reads = 0
        self.changes = Changes()
        self.before_read: Callable[[int], None] = lambda n: None
        self.after_read: Callable[[int], None] = lambda n: None

    def commit(self, kind: str = "change.added", builder: str = "", publish: bool = True) -> Event:
        event = Event(kind=kind, at=float(len(self.events)), builder=builder, id=len(self.events) + 1)
        self.events.append(event)
        if publish:
            self.bus.publish([event])
        return event

    async def pruned_through(self) -> int:
        return 0

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        self.reads += 1
        self.before_read(self.reads)
        page = [e for e in self.events if e.id > since_id][:limit]
        self.after_read(self.reads)
        self.changes.bump()
        return page


# ------------------------------------------------------------------------------------ storage


class RecordingStorage(MemoryStorage):
    """The in-memory storage, plus what the domain tests look at: the builds started and
    finished, step results, links and state strings (from the events it publishes), every claim
    attempt, the buildsets submitted and the scheduler commits (from its calls). `progress` is
    bumped on every write, for `await storage.progress.until(...)`."""

    def __init__(self, progress: Changes | None = None) -> None:
        super().__init__(self._record)
        self.progress = progress or Changes()
        self.started: list[Build] = []  # in start order
        self.finished: list[tuple[Build, Result, str, bool]] = []  # (build, result, state, requeued)
        self.step_results: list[tuple[int, str, Result]] = []  # (build id, step name, result)
        self.step_urls: list[tuple[str, list[tuple[str, str]]]] = []
        self.states: list[tuple[str, int, int, str]] = []  # (builder, build number, step or -1, text)
        self.claims: list[tuple[int, str, bool]] = []  # (request id, coordinator, won)
        self.submitted: list[NewBuildset] = []
        self.commits: list[SchedulerCommit] = []
        self.transactions = 0  # change and buildset writes
        self.buildset_reads = 0
        self._spy()

    # -- seeding and reading the tables directly
    def add_request(
        self, builder: str, priority: int = 0, submitted_at: float = 0.0, buildset: Buildset | None = None
    ) -> BuildRequest:
        """A request as if another coordinator had stored it (in its own buildset, when given)."""
        bs_id = 0
        if buildset is not None:
            bs_id = buildset.id = self.data.new_id("buildsets")
            self.data.buildsets[bs_id] = buildset
        row = RequestRow(id=self.data.new_id("buildrequests"), buildset_id=bs_id, builder=builder,
                         priority=priority, submitted_at=submitted_at)
        self.data.buildrequests[row.id] = row
        return BuildRequest(id=row.id, buildset_id=bs_id, builder=builder, priority=priority,
                            submitted_at=submitted_at)

    def adopt(self, build: Build) -> None:
        """A build the test made itself (not started through storage): record its events too."""
        self.started.append(build)

    def log_text(self, step_name: str, log_name: str) -> bytes:
        """What was written to a step's log (the step found by name)."""
        steps = {s.id for s in self.data.steps.values() if s.name == step_name}
        (log_id,) = [i for i, info in self.data.logs.items() if info.step_id in steps and info.name == log_name]
        return b"".join(c.data for _, c in sorted(self.data.logchunks.get(log_id, {}).items()))

    def claim_elsewhere(self, request_id: int, coordinator_id: str) -> None:
        self.data.buildrequests[request_id].claimed_by = coordinator_id

    @property
    def requests(self) -> dict[int, BuildRequest]:
        return {
            r.id: BuildRequest(id=r.id, buildset_id=r.buildset_id, builder=r.builder, priority=r.priority,
                               submitted_at=r.submitted_at, claimed=r.claimed_by is not None,
                               complete=r.complete, result=r.result, absorbed_by=self.data.collapses.get(r.id, 0))
            for r in self.data.buildrequests.values()
        }

    @property
    def claimed_by(self) -> dict[int, str]:
        return {r.id: r.claimed_by for r in self.data.buildrequests.values() if r.claimed_by is not None}

    @property
    def collapsed(self) -> dict[int, int]:
        return dict(self.data.collapses)

    @property
    def classified(self) -> list[tuple[str, int]]:
        """(scheduler, change id) of the changes schedulers took and have not built yet."""
        return sorted(self.data.scheduler_changes)

    def started_requests(self) -> list[int]:
        return [b.build_request_id for b in self.started]

    # -- recording
    def _record(self, published: list[Event]) -> None:
        retried = {(e.builder, e.details["build_number"]) for e in published if e.kind == "buildrequest.retried"}
        for e in published:
            if e.kind == "build.started":
                self.started.append(Build(
                    id=e.details["build_id"], builder=e.builder, number=e.build_number, worker=e.worker,
                    build_request_id=e.details["request_id"], buildset_id=e.buildset_id, started_at=e.at,
                ))
            elif e.kind == "build.finished":
                build = self._build(e)
                assert e.result is not None
                requeued = (e.builder, e.build_number) in retried
                self.finished.append((build, e.result, e.details["state_string"], requeued))
            elif e.kind == "step.finished":
                assert e.result is not None
                self.step_results.append((self._build(e).id, e.step_name, e.result))
            elif e.kind == "step.urls":
                self.step_urls.append((e.step_name, [(u["name"], u["url"]) for u in e.details["urls"]]))
            elif e.kind in ("build.state", "step.state"):
                self.states.append((e.builder, e.build_number, e.step_number, e.details["state_string"]))
        self.progress.bump()

    def _build(self, event: Event) -> Build:
        return next(b for b in self.started if (b.builder, b.number) == (event.builder, event.build_number))

    def _spy(self) -> None:
        claim, add_buildset = self.buildsets.claim_request, self.buildsets.add_buildset
        get_buildsets, add_changes = self.buildsets.get_buildsets, self.changes.add_changes

        async def claim_request(request_id: int, coordinator_id: str, at: float) -> bool:
            won = await claim(request_id, coordinator_id, at)
            self.claims.append((request_id, coordinator_id, won))
            self.progress.bump()
            return won

        async def add_buildset_(bs: NewBuildset | None, at: float, commit: SchedulerCommit | None,
                                events: Any) -> tuple[int, dict[str, int]]:
            self.transactions += 1
            stored = await add_buildset(bs, at, commit, events)
            if bs is not None:
                self.submitted.append(bs)
            if commit is not None:
                self.commits.append(commit)
            self.progress.bump()
            return stored

        async def get_buildsets_(ids: Sequence[int]) -> dict[int, Buildset]:
            self.buildset_reads += len(ids)
            return await get_buildsets(ids)

        async def add_changes_(*args: Any) -> tuple[list[int], bool]:
            self.transactions += 1
            return await add_changes(*args)

        self.buildsets.claim_request = claim_request  # type: ignore[method-assign,assignment]
        self.buildsets.add_buildset = add_buildset_  # type: ignore[method-assign,assignment]
        self.buildsets.get_buildsets = get_buildsets_  # type: ignore[method-assign,assignment]
        self.changes.add_changes = add_changes_  # type: ignore[method-assign,assignment]


def dispatcher_on(
    storage: MemoryStorage, workers: WorkerRegistry, clock: FakeClock, coordinator_id: str = "c"
) -> Dispatcher:
    """A dispatcher on `storage`, wired as app.py wires one."""
    return Dispatcher(
        storage.buildsets, storage.builds, storage.logs, storage.book, workers, clock, LogWatchers(), coordinator_id
    )

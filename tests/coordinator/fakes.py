"""Fakes for the coordinator domain's ports (Clock, Repository), and a way to wait on them."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from coordinator.domain.errors import AlreadyScheduled
from coordinator.domain.events import Event, EventBus
from coordinator.domain.model import (
    Build,
    BuildRequest,
    Buildset,
    Change,
    Classified,
    LogChunk,
    LogInfo,
    NewBuildset,
    PendingChange,
    PropertyValue,
    SchedulerCommit,
    SchedulerRecord,
    Step,
)
from coordinator.domain.results import Result


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
    """The event half of the Repository: events_after over a list, plus hooks to interleave
    commits with the reads (as a concurrent writer would)."""

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

    async def events_after(self, since_id: int, limit: int) -> list[Event]:
        self.reads += 1
        self.before_read(self.reads)
        page = [e for e in self.events if e.id > since_id][:limit]
        self.after_read(self.reads)
        self.changes.bump()
        return page


# ------------------------------------------------------------------------------------ repository


class FakeRepo:
    """In-memory Repository for the dispatcher and build runner. `claim_request` yields to the
    loop before an atomic check-and-set, so concurrent claims really interleave."""

    def __init__(self, changes: Changes | None = None) -> None:
        self.changes = changes or Changes()
        self.requests: dict[int, BuildRequest] = {}
        self.claimed_by: dict[int, str] = {}
        self.claims: list[tuple[int, str, bool]] = []
        self.builds: list[Build] = []
        self.finished: list[tuple[Build, Result, str, bool]] = []
        self.step_results: list[tuple[int, str, Result]] = []
        self.step_urls: list[tuple[str, list[tuple[str, str]]]] = []
        self._ids = itertools.count(1)
        self._numbers: dict[str, int] = {}
        self.buildsets: dict[int, Buildset] = {}
        self.collapsed: dict[int, int] = {}  # request id -> absorbed by
        self.states: list[tuple[str, int, int, str]] = []  # (builder, build number, step or -1, text)
        self.buildset_reads = 0

    def add_request(
        self, builder: str, priority: int = 0, submitted_at: float = 0.0, buildset: Buildset | None = None
    ) -> BuildRequest:
        bs_id = 0
        if buildset is not None:
            bs_id = buildset.id = next(self._ids)
            self.buildsets[bs_id] = buildset
        req = BuildRequest(id=next(self._ids), buildset_id=bs_id, builder=builder, priority=priority,
                           submitted_at=submitted_at)
        self.requests[req.id] = req
        return req

    def started_requests(self) -> list[int]:
        return [b.build_request_id for b in self.builds]

    async def unclaimed_requests(self) -> list[BuildRequest]:
        return [r for r in self.requests.values() if r.id not in self.claimed_by and not r.complete]

    async def claim_request(self, request_id: int, coordinator_id: str, at: float) -> bool:
        await asyncio.sleep(0)  # let other claimers run up to here: the check-and-set below is atomic
        req = self.requests[request_id]
        won = request_id not in self.claimed_by and not req.complete
        if won:
            self.claimed_by[request_id] = coordinator_id
        self.claims.append((request_id, coordinator_id, won))
        self.changes.bump()
        return won

    async def get_buildset(self, buildset_id: int) -> Buildset | None:
        return self.buildsets.get(buildset_id)

    async def get_buildsets(self, buildset_ids: Sequence[int]) -> dict[int, Buildset]:
        self.buildset_reads += len(buildset_ids)
        return {i: self.buildsets[i] for i in buildset_ids if i in self.buildsets}

    async def collapse_requests(self, into: BuildRequest, request_ids: Sequence[int], at: float) -> list[int]:
        await asyncio.sleep(0)
        done = []
        for rid in request_ids:
            req = self.requests[rid]
            if rid in self.claimed_by or req.complete:
                continue
            req.complete, req.result, req.absorbed_by = True, Result.SKIPPED, into.id
            self.collapsed[rid] = into.id
            done.append(rid)
        self.changes.bump()
        return done

    async def cancel_requests(
        self, request_ids: Sequence[int], reason: str, at: float
    ) -> tuple[list[int], dict[int, BuildRequest]]:
        await asyncio.sleep(0)
        cancelled = []
        for rid in request_ids:
            req = self.requests.get(rid)
            if req is not None and rid not in self.claimed_by and not req.complete:
                req.complete, req.result = True, Result.CANCELLED
                cancelled.append(rid)
        self.changes.bump()
        now = {
            rid: dataclasses.replace(self.requests[rid], claimed=rid in self.claimed_by)
            for rid in request_ids if rid in self.requests
        }
        return cancelled, now

    async def set_build_state(self, build: Build, state_string: str, at: float) -> None:
        build.state_string = state_string
        self.states.append((build.builder, build.number, -1, state_string))
        self.changes.bump()

    async def set_step_state(self, build: Build, step: Step, state_string: str, at: float) -> None:
        step.state_string = state_string
        self.states.append((build.builder, build.number, step.number, state_string))
        self.changes.bump()

    async def start_build(
        self, request: BuildRequest, worker: str, properties: list[PropertyValue], at: float,
        step_names: Sequence[str] = (),
    ) -> Build:
        number = self._numbers[request.builder] = self._numbers.get(request.builder, 0) + 1
        build = Build(id=next(self._ids), builder=request.builder, number=number, worker=worker,
                      build_request_id=request.id, buildset_id=request.buildset_id, started_at=at,
                      properties=[*properties, PropertyValue("buildnumber", number, "Build")])
        if step_names:
            build.steps = await self.add_steps(build, step_names)
        self.builds.append(build)
        self.changes.bump()
        return build

    async def finish_build(
        self, build: Build, result: Result, state_string: str, at: float, requeue: bool,
        properties: list[PropertyValue] | None = None,
    ) -> None:
        build.finished_at, build.result, build.state_string = at, result, state_string
        if properties is not None:
            build.properties = list(properties)
        req = self.requests[build.build_request_id]
        if requeue:
            self.claimed_by.pop(req.id, None)
        else:
            req.complete, req.result = True, result
        self.finished.append((build, result, state_string, requeue))
        self.changes.bump()

    async def add_steps(self, build: Build, names: Sequence[str]) -> list[Step]:
        return [Step(id=next(self._ids), build_id=build.id, number=i, name=n) for i, n in enumerate(names)]

    async def start_step(self, build: Build, step: Step, at: float) -> None:
        pass

    async def finish_step(
        self, build: Build, step: Step, result: Result, state_string: str, at: float, logs: Sequence[int] = ()
    ) -> None:
        self.step_results.append((build.id, step.name, result))
        self.changes.bump()

    async def set_step_urls(self, build: Build, step: Step, at: float) -> None:
        self.step_urls.append((step.name, list(step.urls)))
        self.changes.bump()

    async def set_build_properties(self, build: Build, properties: list[PropertyValue]) -> None:
        build.properties = list(properties)

    async def add_log(self, step: Step, name: str, type_: str) -> LogInfo:
        return LogInfo(id=next(self._ids), step_id=step.id, name=name, type=type_)

    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def finish_log(self, log_id: int) -> None:
        pass


# ------------------------------------------------------------------------------ scheduler state


class FakeSchedulerRepo(FakeRepo):
    """FakeRepo plus changes, buildsets and scheduler state in memory, with the same atomic
    consume-or-refuse rule as SQL storage. Survives a "restart": build a new service on it."""

    def __init__(self, changes: Changes | None = None) -> None:
        super().__init__(changes)
        self.stored_changes: dict[int, Change] = {}
        self.classified: dict[tuple[str, int], PendingChange] = {}
        self.state: dict[str, SchedulerRecord] = {}
        self.buildsets: list[NewBuildset] = []
        self.commits: list[SchedulerCommit] = []
        self.transactions = 0

    async def add_changes(self, changes: Sequence[Change], idempotency_key: str, at: float,
                          classified: Sequence[Classified] = ()) -> tuple[list[int], bool]:
        self.transactions += 1
        ids = []
        for c in changes:
            cid = next(self._ids)
            self.stored_changes[cid] = dataclasses.replace(c, id=cid)
            ids.append(cid)
        for k in classified:
            cid = ids[k.index]
            self.classified[(k.scheduler, cid)] = PendingChange(self.stored_changes[cid], k.key, k.important, at)
        return ids, False

    async def add_buildset(self, bs: NewBuildset | None, at: float,
                           commit: SchedulerCommit | None = None) -> tuple[int, dict[str, int]]:
        self.transactions += 1
        if commit is not None:
            keys = [(commit.scheduler, cid) for cid in set(commit.change_ids)]
            if any(k not in self.classified for k in keys):
                raise AlreadyScheduled("changes already built")
            rec = self.state.setdefault(commit.scheduler, SchedulerRecord(commit.scheduler))
            if commit.last_run is not None and rec.last_run is not None and rec.last_run >= commit.last_run:
                raise AlreadyScheduled("time already ran")
            for k in keys:
                del self.classified[k]
            if commit.last_run is not None:
                rec.last_run = commit.last_run
            self.commits.append(commit)
        if bs is None:
            self.changes.bump()
            return 0, {}
        self.buildsets.append(bs)
        reqs = {b: self.add_request(b, bs.priority, at).id for b in bs.builders}
        self.changes.bump()
        return len(self.buildsets), reqs

    async def load_scheduler_state(self, names: Sequence[str]) -> dict[str, SchedulerRecord]:
        out = {}
        for n in names:
            rec = self.state.get(n, SchedulerRecord(n))
            pending = [p for (s, _), p in sorted(self.classified.items()) if s == n]
            out[n] = SchedulerRecord(n, rec.enabled, rec.last_run, pending)
        return out

    async def set_scheduler_enabled(self, name: str, enabled: bool) -> None:
        self.state.setdefault(name, SchedulerRecord(name)).enabled = enabled

    async def forget_schedulers(self, configured: Sequence[str], dependents: Sequence[str]) -> dict[str, int]:
        dropped: dict[str, int] = {}
        for key in [k for k in self.classified if k[0] not in configured]:
            dropped[key[0]] = dropped.get(key[0], 0) + 1
            del self.classified[key]
        return dropped

    async def dependent_backlog(self, scheduler: str, upstream: str) -> list[Buildset]:
        return []  # Dependents' catch-up is tested on real storage (test_storage_dependents.py)

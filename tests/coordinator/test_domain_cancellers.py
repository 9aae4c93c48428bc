"""The build cancellers on the in-memory storage, with real dispatch: superseded work (a newer
change arriving while the older build is pending, starting, running, finished) and failing
buildsets. Builds block in a gate step the test opens; a stopped build leaves its gate."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.builds.submitter import BuildsetSubmitter
from coordinator.domain.events import Event
from coordinator.domain.model import NewBuildset, SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.scheduling.build_control import BuildControl
from coordinator.domain.scheduling.cancellers import Cancellers, FailingBuildsetCanceller, OldBuildCanceller
from coordinator.domain.scheduling.control import SchedulerControl
from coordinator.domain.steps.base import BuildStep, StepContext
from coordinator.domain.workers.sessions import WorkerDecl, WorkerRegistry, WorkerSession
from notifiers.decide import is_message_needed
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage, dispatcher_on


class Store(RecordingStorage):
    """Also hands every committed event to `listener` (as the EventBus does in app.py)."""

    def __init__(self, progress: Changes) -> None:
        self.listeners: list[Callable[[Event], None]] = []
        self.events_seen: list[Event] = []
        super().__init__(progress)

    def _record(self, published: list[Event]) -> None:
        super()._record(published)
        for e in published:
            self.events_seen.append(e)
            for listener in self.listeners:
                listener(e)


class Gate(BuildStep):
    """Waits until the test opens it (with a result) or the build is stopped."""

    def __init__(self, world: World) -> None:
        super().__init__(name="gate")
        self.world = world

    async def run(self, ctx: StepContext) -> Result:
        key = (ctx.builder, ctx.build_number)
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.world.gates[key] = fut
        self.world.repo.progress.bump()
        try:
            result = await ctx.unless_stopped(fut)
            return Result.CANCELLED if result is None else result
        finally:
            del self.world.gates[key]
            self.world.repo.progress.bump()


@dataclass
class World:
    repo: Store
    clock: FakeClock
    dispatcher: Dispatcher | None = None
    submitter: BuildsetSubmitter | None = None
    cancellers: Cancellers | None = None
    gates: dict[tuple[str, int], asyncio.Future[Result]] = field(default_factory=dict)

    async def start(self, builders: list[str], rules: list, workers: dict[str, int]) -> None:  # type: ignore[type-arg]
        registry = WorkerRegistry(self.clock.now, self.repo.workers)
        registry.configure([WorkerDecl(w, "secret", n) for w, n in workers.items()])
        d = self.dispatcher = dispatcher_on(self.repo, registry, self.clock)
        registry.on_change = d.kick
        d.configure([Builder(b, workers=list(workers), steps=[Gate(self)]) for b in builders])
        sub = self.submitter = BuildsetSubmitter(self.repo.buildsets, self.repo.book, self.clock, d)
        control = BuildControl(self.repo.builds, self.repo.buildsets, sub,
                               SchedulerControl(self.repo.schedulers, self.clock, sub), d)
        self.cancellers = Cancellers(control)
        self.cancellers.configure(rules)
        self.repo.listeners.append(self.cancellers.on_event)
        for w, n in workers.items():
            registry.attach(WorkerSession(w, n, {}, lambda m: None, self.clock.now))
        await d.start()

    async def push(self, revision: str, builders: list[str], branch: str = "main", changes: bool = True) -> int:
        """A buildset for `revision` of `branch` (from a change, or forced)."""
        assert self.submitter is not None
        bs = NewBuildset(
            reason="push", scheduler="s", builders=builders,
            sourcestamps=[SourceStamp(repository="repo", branch=branch, revision=revision)],
            change_ids=[1] if changes else [],
        )
        bs_id, _ = await self.submitter.submit(bs)
        return bs_id

    def request(self, bs_id: int, builder: str) -> int:
        return next(r.id for r in self.repo.requests.values() if r.buildset_id == bs_id and r.builder == builder)

    def result_of(self, bs_id: int, builder: str) -> Result | None:
        return self.repo.requests[self.request(bs_id, builder)].result

    def cancel_reason(self, request_id: int) -> str:
        return next(e.details["reason"] for e in self.repo.events_seen
                    if e.kind == "buildrequest.cancelled" and e.details["request_id"] == request_id)

    def finished(self, builder: str, number: int) -> tuple[Result, str] | None:
        return next(((r, s) for b, r, s, _ in self.repo.finished if (b.builder, b.number) == (builder, number)), None)

    async def until(self, predicate: Callable[[], bool]) -> None:
        await self.repo.progress.until(predicate)
        if self.cancellers is not None:
            await self.cancellers.background.wait()

    def open(self, key: tuple[str, int], result: Result = Result.SUCCESS) -> None:
        self.gates[key].set_result(result)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    w = World(Store(Changes()), FakeClock())
    try:
        yield w
    finally:
        for fut in w.gates.values():
            if not fut.done():
                fut.set_result(Result.SUCCESS)
        if w.cancellers is not None:
            await asyncio.wait_for(w.cancellers.aclose(), 5)
        if w.dispatcher is not None:
            await asyncio.wait_for(w.dispatcher.aclose(), 5)


SUPERSEDE = [OldBuildCanceller("superseded", builders=["test"])]


async def test_newer_change_cancels_a_pending_request_naming_the_newer_buildset(world: World) -> None:
    await world.start(["test"], SUPERSEDE, {"w1": 1})
    busy = await world.push("r0", ["test"], branch="other")  # occupies the only worker
    await world.until(lambda: ("test", 1) in world.gates)
    old = await world.push("r1", ["test"])
    new = await world.push("r2", ["test"])
    await world.until(lambda: world.result_of(old, "test") is not None)
    assert world.result_of(old, "test") == Result.CANCELLED
    reason = world.cancel_reason(world.request(old, "test"))
    assert f"buildset {new}" in reason and "'main'" in reason and "r2" in reason
    world.open(("test", 1))
    await world.until(lambda: ("test", 2) in world.gates)
    world.open(("test", 2))
    await world.until(lambda: world.result_of(new, "test") is not None)
    assert world.result_of(new, "test") == Result.SUCCESS
    assert world.result_of(busy, "test") == Result.SUCCESS  # another branch: untouched
    assert [b.build_request_id for b in world.repo.started] == [world.request(busy, "test"), world.request(new, "test")]
    bs = await world.repo.buildsets.get_buildset(old)
    assert bs is not None and bs.complete and bs.result == Result.CANCELLED


async def test_newer_change_stops_the_running_build(world: World) -> None:
    await world.start(["test"], SUPERSEDE, {"w1": 1, "w2": 1})
    old = await world.push("r1", ["test"])
    await world.until(lambda: ("test", 1) in world.gates)
    new = await world.push("r2", ["test"])
    await world.until(lambda: world.finished("test", 1) is not None and ("test", 2) in world.gates)
    assert world.finished("test", 1) == (Result.CANCELLED, "cancelled")
    assert world.result_of(old, "test") == Result.CANCELLED
    world.open(("test", 2))
    await world.until(lambda: world.result_of(new, "test") is not None)
    assert world.result_of(new, "test") == Result.SUCCESS


async def test_newer_change_arriving_while_the_older_build_starts(world: World) -> None:
    """The change commits right after the older request's claim, before its build exists: the
    build is stopped as soon as it starts (its steps skipped), not left running."""
    await world.start(["test"], SUPERSEDE, {"w1": 1, "w2": 1})
    claim = world.repo.buildsets.claim_request
    pushed: list[int] = []

    async def claim_then_push(request_id: int, coordinator_id: str, at: float) -> bool:
        won = await claim(request_id, coordinator_id, at)
        if not pushed:
            pushed.append(await world.push("r2", ["test"]))
            assert world.cancellers is not None
            await world.cancellers.background.wait()  # the cancel has run: claimed, so a stop
        return won

    world.repo.buildsets.claim_request = claim_then_push  # type: ignore[method-assign]
    old = await world.push("r1", ["test"])
    await world.until(lambda: world.finished("test", 1) is not None and ("test", 2) in world.gates)
    assert world.finished("test", 1) == (Result.CANCELLED, "cancelled")
    assert world.result_of(old, "test") == Result.CANCELLED
    first = world.repo.started[0]
    steps = [(name, r) for bid, name, r in world.repo.step_results if bid == first.id]
    assert steps == [("gate", Result.SKIPPED)]  # it never ran its step
    world.open(("test", 2))
    await world.until(lambda: world.result_of(pushed[0], "test") is not None)
    assert world.result_of(pushed[0], "test") == Result.SUCCESS


async def test_newer_change_after_the_older_build_finished_changes_nothing(world: World) -> None:
    await world.start(["test"], SUPERSEDE, {"w1": 1})
    old = await world.push("r1", ["test"])
    await world.until(lambda: ("test", 1) in world.gates)
    world.open(("test", 1), Result.FAILURE)
    await world.until(lambda: world.result_of(old, "test") is not None)
    new = await world.push("r2", ["test"])
    await world.until(lambda: ("test", 2) in world.gates)
    world.open(("test", 2))
    await world.until(lambda: world.result_of(new, "test") is not None)
    assert world.result_of(old, "test") == Result.FAILURE
    assert not [e for e in world.repo.events_seen if e.kind == "buildrequest.cancelled"]


async def test_what_never_supersedes(world: World) -> None:
    """A forced buildset, the same revision, another branch, an unconfigured builder."""
    await world.start(["test", "docs"], SUPERSEDE, {"w1": 1})
    busy = await world.push("r0", ["docs"])
    await world.until(lambda: ("docs", 1) in world.gates)
    kept = [
        await world.push("r1", ["test", "docs"]),
        await world.push("r1", ["test"]),  # same revision as the first
        await world.push("r3", ["test"], branch="feature"),
        await world.push("r2", ["test"], changes=False),  # forced: cancels nothing
    ]
    await world.until(lambda: len(world.repo.requests) == 6)
    assert all(r.result is None for r in world.repo.requests.values())
    world.open(("docs", 1))
    latest = await world.push("r4", ["test"])
    await world.until(lambda: world.result_of(kept[3], "test") is not None)
    cancelled = {e.details["request_id"] for e in world.repo.events_seen if e.kind == "buildrequest.cancelled"}
    # The forced one is superseded by a change on its branch too, as in Buildbot.
    assert cancelled == {world.request(kept[0], "test"), world.request(kept[1], "test"),
                         world.request(kept[3], "test")}
    assert world.request(kept[2], "test") not in cancelled and world.request(latest, "test") not in cancelled
    assert world.request(kept[0], "docs") not in cancelled
    assert world.result_of(busy, "docs") == Result.SUCCESS


async def test_a_failing_build_stops_the_rest_of_its_buildset(world: World) -> None:
    rules = [FailingBuildsetCanceller("fail-fast", builders=["lint", "unit"], cancel=None)]
    await world.start(["lint", "unit", "e2e"], rules, {"w1": 2})
    bs = await world.push("r1", ["lint", "unit", "e2e"])
    await world.until(lambda: len(world.gates) == 2)
    assert set(world.gates) == {("lint", 1), ("unit", 1)}  # e2e waits for a slot
    world.open(("lint", 1), Result.FAILURE)
    await world.until(lambda: all(r.complete for r in world.repo.requests.values()))
    results = {b: world.result_of(bs, b) for b in ("lint", "unit", "e2e")}
    assert results == {"lint": Result.FAILURE, "unit": Result.CANCELLED, "e2e": Result.CANCELLED}
    assert world.finished("unit", 1) == (Result.CANCELLED, "cancelled")  # stopped while running
    reason = world.cancel_reason(world.request(bs, "e2e"))  # cancelled while pending
    assert reason == f"build lint #1 of buildset {bs} failed; cancelled by fail-fast"
    assert world.finished("e2e", 1) is None
    buildset = await world.repo.buildsets.get_buildset(bs)
    assert buildset is not None and buildset.result == Result.CANCELLED  # the worst of the three
    # Cancelled work is never a failure for a notifier.
    assert not is_message_needed(("failing", "problem", "change"), Result.CANCELLED, Result.SUCCESS)


async def test_failing_buildset_canceller_only_cancels_the_listed_builders(world: World) -> None:
    rules = [FailingBuildsetCanceller("fail-fast", builders=["lint"], cancel=["e2e"])]
    await world.start(["lint", "unit", "e2e"], rules, {"w1": 2})
    bs = await world.push("r1", ["lint", "unit", "e2e"])
    await world.until(lambda: set(world.gates) == {("lint", 1), ("unit", 1)})
    world.open(("lint", 1), Result.FAILURE)
    await world.until(lambda: world.result_of(bs, "e2e") is not None)
    assert world.result_of(bs, "e2e") == Result.CANCELLED
    assert world.result_of(bs, "unit") is None  # still running: not in `cancel`
    world.open(("unit", 1), Result.FAILURE)  # unit is not watched: its failure cancels nothing
    await world.until(lambda: world.result_of(bs, "unit") is not None)
    assert world.result_of(bs, "unit") == Result.FAILURE


async def test_requests_queued_before_a_restart_are_superseded_too(world: World) -> None:
    await world.start(["test"], SUPERSEDE, {})  # no worker: everything stays queued
    old = await world.push("r1", ["test"])
    forced = await world.push("r1b", ["test"], changes=False)
    assert world.cancellers is not None and world.submitter is not None
    # A restarted coordinator: new cancellers that saw none of those events.
    restarted = Cancellers(world.cancellers.work)
    restarted.configure(SUPERSEDE)
    await restarted.seed(world.repo.buildsets)
    world.repo.listeners[:] = [restarted.on_event]
    world.cancellers = restarted
    assert all(r.result is None for r in world.repo.requests.values())  # seeding cancels nothing
    new = await world.push("r2", ["test"])
    await world.until(lambda: world.result_of(old, "test") is not None and world.result_of(forced, "test") is not None)
    assert world.result_of(old, "test") == Result.CANCELLED == world.result_of(forced, "test")
    assert f"buildset {new}" in world.cancel_reason(world.request(old, "test"))
    assert world.result_of(new, "test") is None

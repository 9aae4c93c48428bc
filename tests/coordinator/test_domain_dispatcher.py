"""The dispatcher on the in-memory storage, with gate steps the test opens: order, slots, races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.dispatcher import Dispatcher
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext
from coordinator.domain.workers.sessions import WorkerDecl, WorkerRegistry, WorkerSession
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage, dispatcher_on


@dataclass
class Gates:
    """Builds block in their step until the test opens their gate."""

    changes: Changes
    waiting: dict[tuple[str, int], asyncio.Future[Result]] = field(default_factory=dict)
    running_on: dict[str, int] = field(default_factory=dict)
    max_on: dict[str, int] = field(default_factory=dict)
    max_total: int = 0

    async def enter(self, ctx: StepContext) -> Result:
        key = (ctx.builder, int(ctx.get_property("buildnumber")))
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting[key] = fut
        self.running_on[ctx.worker] = self.running_on.get(ctx.worker, 0) + 1
        self.max_on[ctx.worker] = max(self.max_on.get(ctx.worker, 0), self.running_on[ctx.worker])
        self.max_total = max(self.max_total, sum(self.running_on.values()))
        self.changes.bump()
        try:
            return await fut
        finally:
            self.running_on[ctx.worker] -= 1
            del self.waiting[key]

    def open(self, *keys: tuple[str, int], result: Result = Result.SUCCESS) -> None:
        for key in keys or [k for k, f in self.waiting.items() if not f.done()]:
            self.waiting[key].set_result(result)


class GateStep(BuildStep):
    def __init__(self, gates: Gates) -> None:
        super().__init__(name="gate")
        self.gates = gates

    async def run(self, ctx: StepContext) -> Result:
        return await self.gates.enter(ctx)


@dataclass
class World:
    repo: RecordingStorage
    gates: Gates
    clock: FakeClock
    dispatchers: list[Dispatcher] = field(default_factory=list)

    def coordinator(self, name: str, workers: dict[str, int], builders: list[Builder]) -> Dispatcher:
        registry = WorkerRegistry(self.clock.now, self.repo.workers)
        registry.configure([WorkerDecl(w, "secret", n) for w, n in workers.items()])
        d = dispatcher_on(self.repo, registry, self.clock, name)
        registry.on_change = d.kick  # as app.py wires them
        d.configure(builders)
        for w, n in workers.items():
            registry.attach(WorkerSession(w, n, {}, lambda m: None, self.clock.now))
        self.dispatchers.append(d)
        return d

    def builder(self, name: str, workers: list[str]) -> Builder:
        return Builder(name, workers=workers, steps=[GateStep(self.gates)])

    def running(self) -> list[tuple[str, int]]:
        """The builds waiting at their gate (not those opened and about to leave it)."""
        return sorted(k for k, f in self.gates.waiting.items() if not f.done())

    async def until(self, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
        await self.repo.progress.until(predicate, timeout)

    def request_of(self, key: tuple[str, int]) -> int:
        return next(b.build_request_id for b in self.repo.started if (b.builder, b.number) == key)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    changes = Changes()
    w = World(RecordingStorage(changes), Gates(changes), FakeClock())
    try:
        yield w
    finally:
        w.gates.open()
        for d in w.dispatchers:
            await asyncio.wait_for(d.aclose(), 5)


async def run_one_at_a_time(world: World, count: int) -> list[int]:
    """Open each build's gate in turn; the request ids in the order their builds started."""
    for i in range(count):
        await world.until(lambda i=i: len(world.repo.started) == i + 1 and len(world.running()) == 1)
        world.gates.open()
    await world.until(lambda: len(world.repo.finished) == count)
    return world.repo.started_requests()


async def test_priority_order_then_fifo(world: World) -> None:
    repo = world.repo
    # (priority, submitted_at): ids 1..6 in this order.
    spec = [(0, 10.0), (5, 11.0), (0, 9.0), (5, 12.0), (10, 13.0), (5, 11.0)]
    reqs = [repo.add_request("b", p, t) for p, t in spec]
    d = world.coordinator("c1", {"w1": 1}, [world.builder("b", ["w1"])])
    await d.start()
    order = await run_one_at_a_time(world, len(reqs))
    # Highest priority first; equal priority by submission time, then by id.
    assert order == [reqs[4].id, reqs[1].id, reqs[5].id, reqs[3].id, reqs[2].id, reqs[0].id]
    assert [r for _, _, r in repo.claims] == [True] * 6
    assert all(req.complete and req.result == Result.SUCCESS for req in repo.requests.values())


async def test_request_added_while_busy_jumps_the_queue_by_priority(world: World) -> None:
    repo = world.repo
    first = repo.add_request("b", 0, 1.0)
    low = repo.add_request("b", 0, 2.0)
    d = world.coordinator("c1", {"w1": 1}, [world.builder("b", ["w1"])])
    await d.start()
    await world.until(lambda: len(world.running()) == 1)
    urgent = repo.add_request("b", 9, 3.0)
    d.add_request(urgent)
    assert d.pending_count("b") == 2
    world.gates.open()
    await world.until(lambda: len(repo.started) == 2 and len(world.running()) == 1)
    world.gates.open()
    await world.until(lambda: len(repo.started) == 3 and len(world.running()) == 1)
    world.gates.open()
    await world.until(lambda: len(repo.finished) == 3)
    assert repo.started_requests() == [first.id, urgent.id, low.id]


async def test_max_builds_is_respected(world: World) -> None:
    repo = world.repo
    for i in range(7):
        repo.add_request("b", 0, float(i))
    d = world.coordinator("c1", {"w1": 2, "w2": 1}, [world.builder("b", ["w1", "w2"])])
    await d.start()
    await world.until(lambda: len(world.running()) == 3)
    assert d.pending_count("b") == 4
    while len(repo.finished) < 7:
        done = len(repo.finished)
        world.gates.open(world.running()[0])  # free one slot at a time
        await world.until(lambda done=done: len(repo.finished) == done + 1)
        await world.until(lambda: len(world.running()) == min(3, 7 - len(repo.finished)))
    assert world.gates.max_on == {"w1": 2, "w2": 1}
    assert world.gates.max_total == 3
    assert sorted(repo.started_requests()) == sorted(repo.requests)


async def test_builder_without_free_worker_waits_and_others_proceed(world: World) -> None:
    repo = world.repo
    blocked = repo.add_request("needs-w2", 0, 1.0)
    free = repo.add_request("b", 0, 2.0)
    d = world.coordinator(
        "c1", {"w1": 1}, [world.builder("needs-w2", ["w2"]), world.builder("b", ["w1"])]
    )
    await d.start()
    await world.until(lambda: world.running() == [("b", 1)])
    assert repo.started_requests() == [free.id]
    assert d.pending_count("needs-w2") == 1 and blocked.id not in repo.claimed_by


async def test_two_workers_freeing_at_once_never_start_a_request_twice(world: World) -> None:
    repo = world.repo
    for i in range(12):
        repo.add_request("b", i % 3, float(i))
    d = world.coordinator("c1", {"w1": 1, "w2": 1}, [world.builder("b", ["w1", "w2"])])
    await d.start()
    while len(repo.finished) < 12:
        await world.until(lambda: len(world.running()) == min(2, 12 - len(repo.finished)))
        done = len(repo.finished)
        world.gates.open()  # both slots free in the same instant
        await world.until(lambda done=done: len(repo.finished) == min(12, done + 2))
    started = repo.started_requests()
    assert sorted(started) == sorted(repo.requests), "every request ran exactly once"
    assert sum(won for _, _, won in repo.claims) == 12


async def test_two_coordinators_racing_for_the_same_requests(world: World) -> None:
    """Two dispatchers (two coordinators) load the same pending requests; the atomic claim lets
    exactly one of them start each."""
    repo = world.repo
    for i in range(10):
        repo.add_request("b", 0, float(i))
    d1 = world.coordinator("c1", {"w1": 1}, [world.builder("b", ["w1"])])
    d2 = world.coordinator("c2", {"w2": 1}, [world.builder("b", ["w2"])])
    await asyncio.gather(d1.start(), d2.start())
    while len(repo.finished) < 10:
        await world.until(lambda: len(world.running()) == min(2, 10 - len(repo.finished)))
        done = len(repo.finished)
        world.gates.open()  # both coordinators have a free worker at the same moment
        await world.until(lambda done=done: len(repo.finished) == min(10, done + 2))
    started = repo.started_requests()
    assert sorted(started) == sorted(repo.requests), "every request ran exactly once"
    assert sum(won for _, _, won in repo.claims) == 10
    assert any(not won for _, _, won in repo.claims), "the race never happened"
    assert {b.worker for b in repo.started} == {"w1", "w2"}
    assert {repo.claimed_by[b.build_request_id] for b in repo.started if b.worker == "w2"} == {"c2"}


async def test_retry_requeues_the_request_and_it_runs_again(world: World) -> None:
    repo = world.repo
    req = repo.add_request("b", 0, 1.0)
    d = world.coordinator("c1", {"w1": 1}, [world.builder("b", ["w1"])])
    await d.start()
    await world.until(lambda: world.running() == [("b", 1)])
    world.gates.open(result=Result.RETRY)
    await world.until(lambda: world.running() == [("b", 2)])
    assert [(b.number, r, requeue) for b, r, _, requeue in repo.finished] == [(1, Result.RETRY, True)]
    world.gates.open()
    await world.until(lambda: len(repo.finished) == 2)
    assert repo.started_requests() == [req.id, req.id]
    assert repo.requests[req.id].complete and repo.requests[req.id].result == Result.SUCCESS


async def test_failed_claim_leaves_the_request_to_its_owner(world: World) -> None:
    repo = world.repo
    mine = repo.add_request("b", 0, 1.0)
    theirs = repo.add_request("b", 5, 0.0)
    d = world.coordinator("c1", {"w1": 1}, [world.builder("b", ["w1"])])
    await d.start()  # loads both requests
    repo.claim_elsewhere(theirs.id, "c2")  # another coordinator claims one before we dispatch
    await world.until(lambda: len(world.running()) == 1)
    assert repo.started_requests() == [mine.id]
    assert (theirs.id, "c1", False) in repo.claims
    assert d.pending_count("b") == 0

"""Scheduling a build: worker labels, nextWorker/canStartBuild/nextBuild, collapsing, locks and
"why is it pending" — the dispatcher on the in-memory storage, a fake clock and gate steps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from coordinator.domain.builds.builders import Builder
from coordinator.domain.builds.dispatcher import Dispatcher, compatible
from coordinator.domain.builds.locks import LockRegistry, MasterLock, RealLock, WorkerLock
from coordinator.domain.model import BuildRequest, Buildset, SourceStamp
from coordinator.domain.results import Result
from coordinator.domain.steps.base import BuildStep, StepContext
from coordinator.domain.workers.sessions import WorkerDecl, WorkerRegistry, WorkerSession
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage, dispatcher_on
from tests.coordinator.test_domain_dispatcher import Gates, GateStep, World


class Sched(World):
    def start(
        self, workers: dict[str, tuple[int, str]], builders: list[Builder], connect: bool = True
    ) -> Dispatcher:
        """A dispatcher whose workers {name: (max_builds, "label,label")} are connected."""
        registry = WorkerRegistry(self.clock.now, self.repo.workers)
        registry.configure([WorkerDecl(w, "secret", n) for w, (n, _) in workers.items()])
        d = dispatcher_on(self.repo, registry, self.clock, "c1")
        registry.on_change = d.kick  # as app.py wires them
        d.configure(builders)
        if connect:
            for w, (n, labels) in workers.items():
                self.connect(d, w, n, labels)
        self.dispatchers.append(d)
        return d

    def connect(self, d: Dispatcher, name: str, slots: int = 1, labels: str = "") -> None:
        d.workers.attach(WorkerSession(name, slots, {"labels": labels}, lambda m: None, self.clock.now))

    def b(self, name: str, workers: list[str], **kw: Any) -> Builder:
        return Builder(name, workers=workers, steps=[GateStep(self.gates)], **kw)


@pytest.fixture
async def w() -> AsyncIterator[Sched]:
    changes = Changes()
    world = Sched(RecordingStorage(changes), Gates(changes), FakeClock())
    try:
        yield world
    finally:
        for d in world.dispatchers:
            for runner in list(d.running.values()):
                runner.stop("test over")
        world.gates.open()
        for d in world.dispatchers:
            await asyncio.wait_for(d.aclose(), 5)


def reasons(d: Dispatcher, builder: str = "") -> dict[int, str]:
    return {p.id: p.reason for p in d.pending_requests(builder)}


def bs(branch: str = "main", revision: str = "", changes: tuple[int, ...] = (1,), codebase: str = "") -> Buildset:
    return Buildset(
        id=0, reason="r", scheduler="s", submitted_at=0.0,
        sourcestamps=[SourceStamp("https://example.org/r.git", branch, revision, "proj", codebase)],
        properties=[], change_ids=list(changes),
    )


# ------------------------------------------------------------------------ worker selection


async def test_worker_labels_choose_only_workers_that_advertised_them(w: Sched) -> None:
    for i in range(4):
        w.repo.add_request("b", 0, float(i))
    d = w.start(
        {"mac": (2, "mac"), "small": (2, "linux"), "big": (2, "linux,big")},
        [w.b("b", ["mac", "small", "big"], worker_labels=["linux", "big"])],
    )
    await d.start()
    await w.until(lambda: len(w.running()) == 2)
    assert {b.worker for b in w.repo.started} == {"big"}
    assert set(reasons(d).values()) == {"all 1 workers busy"}


async def test_next_worker_and_can_start_build(w: Sched) -> None:
    asked: list[tuple[list[str], str]] = []

    def next_worker(builder: Builder, workers: list[WorkerSession], req: BuildRequest) -> WorkerSession:
        asked.append((sorted(s.name for s in workers), builder.name))
        return sorted(workers, key=lambda s: s.name)[-1]  # the last by name

    async def can_start(builder: Builder, worker: WorkerSession, req: BuildRequest) -> bool:
        return worker.name != "w3"  # w3 always refuses: w2 is next

    w.repo.add_request("b", 0, 1.0)
    d = w.start({"w1": (1, ""), "w2": (1, ""), "w3": (1, "")},
                [w.b("b", ["w1", "w2", "w3"], nextWorker=next_worker, canStartBuild=can_start)])
    await d.start()
    await w.until(lambda: len(w.running()) == 1)
    assert [b.worker for b in w.repo.started] == ["w2"]
    assert asked[:2] == [(["w1", "w2", "w3"], "b"), (["w1", "w2"], "b")]


async def test_can_start_build_refusing_everywhere_leaves_the_request_pending(w: Sched) -> None:
    req = w.repo.add_request("b", 0, 1.0)
    def refuse(builder: Builder, worker: WorkerSession, req: BuildRequest) -> bool:
        w.repo.progress.bump()
        return False

    d = w.start({"w1": (1, ""), "w2": (1, "")}, [w.b("b", ["w1", "w2"], canStartBuild=refuse)])
    await d.start()
    await w.until(lambda: "b" in d._refused)
    assert w.repo.started == [] and not w.repo.claims
    assert reasons(d) == {req.id: "canStartBuild refused on all workers"}


async def test_next_build_overrides_the_queue_order(w: Sched) -> None:
    reqs = [w.repo.add_request("b", p, float(i)) for i, p in enumerate([5, 0, 9, 1])]
    seen: list[list[int]] = []

    def next_build(builder: Builder, requests: list[BuildRequest]) -> BuildRequest:
        seen.append([r.id for r in requests])
        return min(requests, key=lambda r: r.priority)  # lowest priority first, on purpose

    d = w.start({"w1": (1, "")}, [w.b("b", ["w1"], nextBuild=next_build, collapseRequests=False)])
    await d.start()
    for i in range(4):
        await w.until(lambda i=i: len(w.repo.started) == i + 1 and len(w.running()) == 1)
        w.gates.open()
    await w.until(lambda: len(w.repo.finished) == 4)
    assert w.repo.started_requests() == [reqs[1].id, reqs[3].id, reqs[0].id, reqs[2].id]
    # nextBuild is offered the requests in queue order (priority, then submission).
    assert seen[0] == [reqs[2].id, reqs[0].id, reqs[3].id, reqs[1].id]


async def test_priorities_under_contention_with_workers_freeing_together(w: Sched) -> None:
    prios = [3, 0, 7, 7, 1, 9, 0, 3, 5, 9, 2, 7]
    reqs = [w.repo.add_request("b", p, float(i)) for i, p in enumerate(prios)]
    d = w.start({"w1": (1, ""), "w2": (1, ""), "w3": (1, "")}, [w.b("b", ["w1", "w2", "w3"])])
    await d.start()
    while len(w.repo.finished) < len(reqs):
        await w.until(lambda: len(w.running()) == min(3, len(reqs) - len(w.repo.finished)))
        done = len(w.repo.finished)
        w.gates.open()  # every worker frees in the same instant
        await w.until(lambda done=done: len(w.repo.finished) == min(len(reqs), done + 3))
    started = w.repo.started_requests()
    expected = [r.id for r in sorted(reqs, key=lambda r: (-r.priority, r.submitted_at, r.id))]
    assert started == expected
    assert sum(won for _, _, won in w.repo.claims) == len(reqs), "no request claimed twice"


# ------------------------------------------------------------------------ collapsing


async def test_compatible_requests_are_absorbed_by_the_started_one(w: Sched) -> None:
    first = w.repo.add_request("b", 0, 1.0, bs("main", changes=(1,)))
    same = [w.repo.add_request("b", 0, 2.0 + i, bs("main", changes=(2 + i,))) for i in range(3)]
    other_branch = w.repo.add_request("b", 0, 9.0, bs("dev", changes=(7,)))
    forced = w.repo.add_request("b", 0, 10.0, bs("main", revision="abc", changes=()))
    d = w.start({"w1": (1, "")}, [w.b("b", ["w1"])])
    await d.start()
    await w.until(lambda: len(w.repo.collapsed) == 3)
    assert w.repo.collapsed == {r.id: first.id for r in same}
    stored = w.repo.requests
    assert all(stored[r.id].complete and stored[r.id].result == Result.SKIPPED and stored[r.id].absorbed_by == first.id
               for r in same)
    assert d.pending_count("b") == 2
    for started in (1, 2, 3):
        await w.until(lambda started=started: len(w.repo.started) == started and len(w.running()) == 1)
        w.gates.open()
    await w.until(lambda: len(w.repo.finished) == 3)
    assert w.repo.started_requests() == [first.id, other_branch.id, forced.id]


def test_default_compatibility_rule() -> None:
    assert compatible(bs(changes=(1,)), bs(changes=(2,)))
    assert not compatible(bs(changes=(1,)), bs(changes=()))  # one from changes, one not
    assert compatible(bs(revision="a", changes=()), bs(revision="a", changes=()))
    assert not compatible(bs(revision="a", changes=()), bs(revision="b", changes=()))
    assert not compatible(bs("main"), bs("dev"))
    assert not compatible(bs(codebase="x"), bs(codebase="y"))
    assert not compatible(bs(), None)


async def test_collapse_false_and_callable(w: Sched) -> None:
    never = [w.repo.add_request("never", 0, float(i), bs()) for i in range(3)]
    calls: list[tuple[int, int]] = []

    async def only_even(builder: Builder, started: BuildRequest, other: BuildRequest) -> bool:
        calls.append((started.id, other.id))
        assert other.buildset is not None and other.buildset.sourcestamps[0].branch == "main"
        return other.submitted_at % 2 == 0

    custom = [w.repo.add_request("custom", 0, float(i), bs()) for i in range(5)]
    d = w.start({"w1": (1, ""), "w2": (1, "")},
                [w.b("never", ["w1"], collapseRequests=False), w.b("custom", ["w2"], collapseRequests=only_even)])
    await d.start()
    await w.until(lambda: len(w.repo.collapsed) == 2 and len(w.running()) == 2)
    assert w.repo.collapsed == {custom[2].id: custom[0].id, custom[4].id: custom[0].id}
    assert sorted(calls) == [(custom[0].id, r.id) for r in custom[1:]]
    assert d.pending_count("never") == 2 and not any(w.repo.requests[r.id].complete for r in never)


async def test_collapse_loads_each_buildset_once(w: Sched) -> None:
    for i in range(6):
        w.repo.add_request("b", 0, float(i), bs("main" if i % 2 else "dev", changes=()))
    d = w.start({"w1": (1, "")}, [w.b("b", ["w1"])])
    await d.start()
    for i in range(5):
        await w.until(lambda i=i: len(w.repo.started) == i + 1 and len(w.running()) == 1)
        if len(w.repo.started) + len(w.repo.collapsed) == 6:
            break
        w.gates.open()
    assert w.repo.buildset_reads == 6


# ------------------------------------------------------------------------ locks


async def test_master_lock_exclusive_serializes_two_builders(w: Sched) -> None:
    lock = MasterLock("deploy")
    a = w.repo.add_request("a", 0, 1.0)
    b = w.repo.add_request("b", 0, 2.0)
    d = w.start({"w1": (1, ""), "w2": (1, "")},
                [w.b("a", ["w1"], locks=[lock.access("exclusive")]), w.b("b", ["w2"], locks=[lock])])
    await d.start()
    await w.until(lambda: len(w.repo.started) == 2 and len(w.running()) == 1)
    waiting = next(x for x in w.repo.started if x.build_request_id == b.id)
    assert ("b", waiting.number, -1, "waiting for lock deploy") in w.repo.states
    stored = await w.repo.builds.get_build("b", waiting.number)
    assert stored is not None and stored.state_string == "waiting for lock deploy"
    assert w.running() == [("a", 1)]
    w.gates.open()
    await w.until(lambda: w.running() == [("b", 1)])
    assert w.repo.requests[a.id].complete
    w.gates.open()
    await w.until(lambda: len(w.repo.finished) == 2)
    assert w.gates.max_total == 1


async def test_counting_lock_admits_max_count(w: Sched) -> None:
    lock = MasterLock("db", maxCount=2)
    for i in range(6):
        w.repo.add_request(f"b{i % 3}", 0, float(i))
    d = w.start({"w1": (3, ""), "w2": (3, "")},
                [w.b(f"b{i}", ["w1", "w2"], locks=[lock.access("counting")]) for i in range(3)])
    await d.start()
    while len(w.repo.finished) < 6:
        await w.until(lambda: len(w.running()) == min(2, 6 - len(w.repo.finished)))
        done = len(w.repo.finished)
        w.gates.open(w.running()[0])
        await w.until(lambda done=done: len(w.repo.finished) == done + 1)
    assert w.gates.max_total == 2


async def test_worker_lock_counts_per_worker_with_max_count_for_worker(w: Sched) -> None:
    lock = WorkerLock("cpu", maxCount=1, maxCountForWorker={"big": 2})
    for i in range(8):
        w.repo.add_request("b", 0, float(i))
    d = w.start({"big": (4, ""), "small": (4, "")}, [w.b("b", ["big", "small"], locks=[lock])])
    await d.start()
    await w.until(lambda: len(w.running()) == 3)
    assert sorted(w.gates.running_on.items()) == [("big", 2), ("small", 1)]
    while len(w.repo.finished) < 8:  # drain: where the rest run depends on which worker freed first
        await w.until(lambda: len(w.running()) > 0)
        done = len(w.repo.finished)
        w.gates.open()
        await w.until(lambda done=done: len(w.repo.finished) > done)
    assert w.gates.max_on == {"big": 2, "small": 1}


class Boom(BuildStep):
    async def run(self, ctx: StepContext) -> Result:
        raise RuntimeError("boom")


async def test_step_lock_waits_on_the_step_and_is_released_on_exception(w: Sched) -> None:
    lock = MasterLock("net")
    gate = GateStep(w.gates)
    gate.locks = [lock.access("exclusive")]
    boom = Boom(name="boom", locks=[lock.access("exclusive")])
    w.repo.add_request("holder", 0, 1.0)
    d = w.start({"w1": (1, ""), "w2": (1, "")},
                [Builder("holder", ["w1"], [gate]), Builder("boomer", ["w2"], [boom])])
    await d.start()
    await w.until(lambda: len(w.running()) == 1)
    req = w.repo.add_request("boomer", 0, 2.0)
    d.add_request(req)
    await w.until(lambda: ("boomer", 1, 0, "waiting for lock net") in w.repo.states)
    w.gates.open()
    await w.until(lambda: len(w.repo.finished) == 2)
    finished = [(b.builder, r) for b, r, _, _ in w.repo.finished]
    assert finished == [("holder", Result.SUCCESS), ("boomer", Result.EXCEPTION)]
    # The exception released the lock: another holder gets it at once.
    w.repo.add_request("holder", 0, 3.0)
    d.add_request(w.repo.requests[max(w.repo.requests)])
    await w.until(lambda: w.running() == [("holder", 2)])
    assert not any("waiting" in s for b, n, _, s in w.repo.states if (b, n) == ("holder", 2))


async def test_stop_while_waiting_for_lock_cancels_cleanly(w: Sched) -> None:
    lock = MasterLock("deploy")
    w.repo.add_request("a", 0, 1.0)
    w.repo.add_request("b", 0, 2.0)
    w.repo.add_request("c", 0, 3.0)
    d = w.start({"w1": (1, ""), "w2": (1, ""), "w3": (1, "")},
                [w.b(n, [f"w{i + 1}"], locks=[lock]) for i, n in enumerate("abc")])
    d.builders["a"].locks = [lock.access("exclusive")]
    await d.start()
    await w.until(lambda: len(w.repo.started) == 3 and len(w.running()) == 1)
    assert w.running() == [("a", 1)]
    d.find_running("b", 1).stop("no longer needed")  # type: ignore[union-attr]
    await w.until(lambda: len(w.repo.finished) == 1)
    build, result, state, requeue = w.repo.finished[0]
    assert (build.builder, result, requeue) == ("b", Result.CANCELLED, False)
    assert "waiting for lock deploy" in state
    assert w.repo.step_results[-1] == (build.id, "gate", Result.SKIPPED)
    w.gates.open()  # a releases; c (queued behind the stopped b) gets the lock
    await w.until(lambda: w.running() == [("c", 1)])


async def test_real_lock_is_fair_fifo() -> None:
    lock = RealLock("l", 2)
    a = lock.acquire("a", "counting")
    x = lock.acquire("x", "exclusive")
    b = lock.acquire("b", "counting")  # would fit, but x is ahead of it: FIFO
    assert a.done() and not x.done() and not b.done()
    lock.release("a")
    assert x.done() and not b.done()
    lock.release("x")
    assert b.done()
    y = lock.acquire("y", "exclusive")
    lock.cancel("y", y)  # gave up waiting
    c = lock.acquire("c", "counting")
    assert c.done() and lock.holders == 2


def test_lock_registry_keys_worker_locks_per_worker() -> None:
    reg = LockRegistry()
    wl = WorkerLock("w", maxCountForWorker={"big": 3})
    assert reg.get(wl.access("counting"), "big") is not reg.get(wl.access("counting"), "small")
    assert reg.get(wl.access("counting"), "big").max_count == 3
    ml = MasterLock("m")
    assert reg.get(ml.access("counting"), "a") is reg.get(ml.access("exclusive"), "b")


# ------------------------------------------------------------------------ why pending


async def test_pending_reasons(w: Sched) -> None:
    lock = MasterLock("deploy")
    r_nobody = w.repo.add_request("nobody", 0, 1.0)
    r_labels = w.repo.add_request("labelled", 0, 1.0)
    r_gone = w.repo.add_request("removed", 0, 1.0)
    hi = w.repo.add_request("busy", 5, 1.0)
    lo = [w.repo.add_request("busy", 1, 2.0 + i) for i in range(3)]
    d = w.start(
        {"off": (1, ""), "w1": (1, "linux"), "l1": (1, ""), "l2": (1, "")},
        [w.b("nobody", ["off"]), w.b("labelled", ["w1"], worker_labels=["windows"]),
         w.b("busy", ["w1"], collapseRequests=False),
         w.b("holder", ["l1"], locks=[lock]), w.b("locked", ["l2"], locks=[lock])],
        connect=False,
    )
    for name, labels in (("w1", "linux"), ("l1", ""), ("l2", "")):
        w.connect(d, name, 1, labels)
    d.builders["holder"].locks = [lock.access("exclusive")]
    await d.start()
    await w.until(lambda: len(w.running()) == 1)  # busy's highest priority request runs on w1
    got = reasons(d)
    assert got[r_nobody.id] == "no worker connected"
    assert got[r_labels.id] == "no connected worker has labels [windows]"
    assert got[r_gone.id] == "builder not configured"
    assert hi.id not in got
    assert [got[r.id] for r in lo] == ["all 1 workers busy", "all 1 workers busy", "all 1 workers busy"]
    # A higher-priority request arriving behind them: the others are now of lower priority.
    urgent = w.repo.add_request("busy", 9, 9.0)
    d.add_request(urgent)
    got = reasons(d, "busy")
    assert got[urgent.id] == "all 1 workers busy"
    assert [got[r.id] for r in lo] == ["lower priority than 1 requests"] * 3
    assert [p.id for p in d.pending_requests("busy")] == [urgent.id, *(r.id for r in lo)]
    # The lock: holder runs, locked waits for the lock and keeps l2; its next request says so.
    d.add_request(w.repo.add_request("holder", 0, 10.0))
    await w.until(lambda: len(w.running()) == 2)
    d.add_request(w.repo.add_request("locked", 0, 11.0))
    await w.until(lambda: any(s == "waiting for lock deploy" for _, _, _, s in w.repo.states))
    d.add_request(second := w.repo.add_request("locked", 0, 12.0))
    got = reasons(d, "locked")
    assert got[second.id] == "waiting for lock deploy"


async def test_collapsing_races_with_workers_freeing_at_once(w: Sched) -> None:
    """Two workers free at the same instant over compatible requests: every request is either
    built exactly once or absorbed exactly once, never both."""
    reqs = [w.repo.add_request("b", i % 2, float(i), bs("main" if i % 3 else "dev")) for i in range(18)]
    d = w.start({"w1": (1, ""), "w2": (1, "")}, [w.b("b", ["w1", "w2"])])
    await d.start()

    def settled() -> bool:
        return all(r.complete for r in w.repo.requests.values()) and not w.running()

    while not settled():
        await w.until(
            lambda: settled() or (len(w.running()) >= 1 and d.pending_count("b") == 0) or len(w.running()) == 2
        )
        w.gates.open()
        await w.until(lambda: settled() or len(w.running()) < 2)
    built = w.repo.started_requests()
    assert len(built) == len(set(built)), "a request started twice"
    assert not set(built) & set(w.repo.collapsed), "a request both built and absorbed"
    assert set(built) | set(w.repo.collapsed) == {r.id for r in reqs}
    assert set(w.repo.collapsed.values()) <= set(built)
    assert len(w.repo.collapsed) > 0

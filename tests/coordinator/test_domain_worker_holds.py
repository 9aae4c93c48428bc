"""Pause, drain and resume on the in-memory storage: a build never starts on a worker after
pause returned (even with a start under way as it is called), holds are stored and reloaded,
and a draining worker is told to exit once idle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from coordinator.domain.builds.worker_holds import WorkerHolds
from coordinator.domain.errors import NotFound
from coordinator.domain.model import WorkerHold
from coordinator.domain.workers.sessions import WorkerSession
from tests.coordinator.fakes import Changes, FakeClock, RecordingStorage
from tests.coordinator.test_domain_dispatcher import Gates, World


class Exits:
    def __init__(self, progress: Changes) -> None:
        self.told: list[tuple[str, str]] = []
        self.progress = progress

    def ask_to_exit(self, worker: str, reason: str) -> bool:
        self.told.append((worker, reason))
        self.progress.bump()
        return True


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


async def holds_for(world: World, workers: dict[str, int]) -> tuple[WorkerHolds, Exits]:
    d = world.coordinator("c1", workers, [world.builder("b", list(workers))])
    holds = WorkerHolds(world.repo.workers, d, d.workers, world.clock)
    exits = Exits(world.repo.progress)
    holds.exit = exits
    d.on_slot_freed = holds.tell_idle_to_exit  # as app.py wires them
    await holds.start()
    await d.start()
    return holds, exits


def on(world: World, worker: str) -> list[int]:
    return [b.number for b in world.repo.started if b.worker == worker]


async def test_pause_waits_for_a_start_under_way_and_no_build_starts_after_it(world: World) -> None:
    repo = world.repo
    holds, _ = await holds_for(world, {"w1": 2})
    d = world.dispatchers[0]
    # The dispatcher claims the request, then waits in the claim until the test lets it go.
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    claim = repo.buildsets.claim_request
    claiming = Changes()

    async def slow_claim(request_id: int, coordinator_id: str, at: float) -> bool:
        claiming.bump()
        await gate
        return await claim(request_id, coordinator_id, at)

    repo.buildsets.claim_request = slow_claim  # type: ignore[method-assign]
    d.add_request(repo.add_request("b"))
    session = d.workers.sessions["w1"]
    await claiming.until(lambda: any(b.startswith("request:") for b in session.builds))

    pause = asyncio.create_task(holds.pause("w1", "disk full"))
    for _ in range(20):  # however long we let it run, it waits for the start under way
        await asyncio.sleep(0)
    assert not pause.done()
    gate.set_result(None)
    await pause
    assert on(world, "w1") == [1]  # the start under way finished before pause returned

    repo.buildsets.claim_request = claim  # type: ignore[method-assign]
    for _ in range(3):
        d.add_request(repo.add_request("b"))
    await world.until(lambda: len(world.running()) == 1)
    world.gates.open()
    await world.until(lambda: len(repo.finished) == 1)
    assert on(world, "w1") == [1]  # a free slot, three requests, and nothing started
    assert [p.reason for p in d.pending_requests("b")] == ["worker w1 paused"] * 3
    assert holds.state_of("w1") == ("paused", "disk full")

    await holds.resume("w1", "")
    await world.until(lambda: len(world.running()) == 2)
    assert holds.state_of("w1") == ("active", "")
    assert [e.details["state"] for e in repo.data.events if e.kind == "worker.state"] == ["paused", "active"]


async def test_holds_are_stored_and_reloaded(world: World) -> None:
    holds, _ = await holds_for(world, {"w1": 1, "w2": 1})
    await holds.pause("w1", "maintenance")
    await holds.drain("w2", "decommission")
    assert await world.repo.workers.load_worker_holds() == {
        "w1": WorkerHold("paused", "maintenance", world.clock.now()),
        "w2": WorkerHold("draining", "decommission", world.clock.now()),
    }
    with pytest.raises(NotFound, match="no worker named 'w9'"):
        await holds.pause("w9", "")


async def test_a_draining_worker_is_told_to_exit_once_its_builds_are_done(world: World) -> None:
    repo = world.repo
    holds, exits = await holds_for(world, {"w1": 2})
    d = world.dispatchers[0]
    d.add_request(repo.add_request("b"))
    await world.until(lambda: len(world.running()) == 1)
    await holds.drain("w1", "")
    d.add_request(repo.add_request("b"))
    assert exits.told == []  # a build runs
    world.gates.open()
    await world.until(lambda: bool(exits.told))
    assert exits.told == [("w1", "drained")]
    assert on(world, "w1") == [1]


async def test_an_agent_drain_lasts_for_its_connection(world: World) -> None:
    holds, exits = await holds_for(world, {"w1": 1})
    holds.agent_draining("w1", "the agent received SIGTERM")
    assert holds.state_of("w1") == ("draining", "the agent received SIGTERM")
    assert exits.told == [("w1", "the agent received SIGTERM")]  # idle: told at once
    registry = world.dispatchers[0].workers
    old = registry.sessions["w1"]
    registry.attach(WorkerSession("w1", 1, {}, lambda m: None, world.clock.now))
    holds.workers_changed()
    assert old is not registry.sessions["w1"]
    assert holds.state_of("w1") == ("active", "")
    assert "w1" not in world.dispatchers[0].held

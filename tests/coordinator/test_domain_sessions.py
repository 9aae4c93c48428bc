"""WorkerSession (the worker stream's protocol state, without the wire) and WorkerRegistry."""

from __future__ import annotations

import asyncio

import pytest

from coordinator.domain.errors import Unauthenticated
from coordinator.domain.workers.commands import (
    Abandon,
    Ack,
    CommandSpec,
    Finished,
    Interrupt,
    KeptCommand,
    Output,
    Reattach,
    WorkerLost,
)
from coordinator.domain.workers.sessions import Outbound, WorkerDecl, WorkerRegistry, WorkerSession
from coordinator.storage.memory import MemoryStorage
from tests.coordinator.fakes import Changes, FakeClock

CID = "7-0-1"


class Wire:
    """What the session sends to the worker, and the output handler with controllable stores."""

    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.changes = Changes()
        self.stored: list[tuple[int, bytes]] = []
        self.stores: list[asyncio.Future[None]] = []

    def send(self, item: Outbound) -> None:
        self.sent.append(item)
        self.changes.bump()

    def on_output(self, channel: int, data: bytes, marks: tuple[int, ...] = ()) -> asyncio.Future[None]:
        self.stored.append((channel, data))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _f: self.changes.bump())
        self.stores.append(fut)
        return fut

    def acks(self) -> list[int]:
        return [m.seq for m in self.sent if isinstance(m, Ack)]


async def running(wire: Wire, max_builds: int = 1) -> tuple[WorkerSession, asyncio.Task[Finished]]:
    clock = FakeClock()
    session = WorkerSession("w1", max_builds, {"os": "linux"}, wire.send, clock.now)
    task = asyncio.ensure_future(session.run_command(CommandSpec(CID, argv=["make"]), wire.on_output))
    await wire.changes.until(lambda: bool(wire.sent))
    assert wire.sent == [CommandSpec(CID, argv=["make"])]
    return session, task


async def test_output_is_acked_only_after_it_is_stored() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.on_output(Output(CID, 1, 1, b"hello\n"))
    session.on_output(Output(CID, 2, 2, b"oops\n"))
    assert wire.stored == [(1, b"hello\n"), (2, b"oops\n")]
    assert wire.acks() == []

    wire.stores[0].set_result(None)
    await wire.changes.until(lambda: wire.acks() == [1])
    wire.stores[1].set_result(None)
    await wire.changes.until(lambda: wire.acks() == [1, 2])

    session.on_finished(Finished(CID, 0, last_seq=2))
    assert (await asyncio.wait_for(task, 5)).rc == 0


async def test_duplicate_seq_is_acked_again_but_not_stored_twice() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.on_output(Output(CID, 1, 1, b"a"))
    wire.stores[0].set_result(None)
    await wire.changes.until(lambda: wire.acks() == [1])

    session.on_output(Output(CID, 1, 1, b"a"))  # a resend
    assert wire.stored == [(1, b"a")]
    assert wire.acks() == [1, 1]
    session.on_finished(Finished(CID, 0, last_seq=1))
    await asyncio.wait_for(task, 5)


async def test_duplicate_of_output_still_being_stored_is_not_acked_early() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.on_output(Output(CID, 1, 1, b"a"))
    session.on_output(Output(CID, 1, 1, b"a"))  # resent before the first copy is stored
    assert wire.stored == [(1, b"a")]
    assert wire.acks() == [], "an ack promises the output is stored"
    wire.stores[0].set_result(None)
    await wire.changes.until(lambda: 1 in wire.acks())
    session.on_finished(Finished(CID, 0, last_seq=1))
    await asyncio.wait_for(task, 5)


async def test_command_finishes_only_after_its_output_is_stored() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.on_output(Output(CID, 1, 1, b"x"))
    session.on_finished(Finished(CID, 3, last_seq=1))
    await run_ready_callbacks()
    assert not task.done()
    wire.stores[0].set_result(None)
    finished = await asyncio.wait_for(task, 5)
    assert (finished.rc, finished.last_seq) == (3, 1)


async def run_ready_callbacks() -> None:
    """Let every already-runnable task and callback run, to check that something did NOT happen
    (no time passes: these are zero-delay yields, not waits for an outcome)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_failed_store_is_not_acked() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.on_output(Output(CID, 1, 1, b"x"))
    wire.stores[0].set_exception(RuntimeError("disk full"))
    session.on_output(Output(CID, 2, 1, b"y"))
    wire.stores[1].set_result(None)
    await wire.changes.until(lambda: bool(wire.acks()))
    assert wire.acks() == [2]
    session.close("test over")
    with pytest.raises(WorkerLost):
        await task


async def test_close_fails_running_commands_with_worker_lost() -> None:
    wire = Wire()
    session, task = await running(wire, max_builds=2)
    session.builds.add("b/1")
    assert session.free_slots == 1
    session.on_output(Output(CID, 1, 1, b"x"))
    session.close("stream reset")
    with pytest.raises(WorkerLost, match="worker w1 lost: stream reset"):
        await asyncio.wait_for(task, 5)
    assert session.closed and session.free_slots == 0

    # Nothing more goes to a closed worker: no late ack, no interrupt; new commands fail at once.
    wire.stores[0].set_result(None)
    session.interrupt(CID, "stop")
    await run_ready_callbacks()
    assert not any(isinstance(m, Ack | Interrupt) for m in wire.sent)
    with pytest.raises(WorkerLost):
        await session.run_command(CommandSpec("other"), wire.on_output)
    session.close("again")  # idempotent
    assert session.closed_reason == "stream reset"


async def test_interrupt_and_unknown_commands() -> None:
    wire = Wire()
    session, task = await running(wire)
    session.interrupt("no-such-command", "x")
    session.interrupt(CID, "stopped by alice")
    assert wire.sent[1:] == [Interrupt(CID, "stopped by alice")]
    session.on_output(Output("no-such-command", 1, 1, b"x"))  # ignored
    session.on_finished(Finished("no-such-command", 0))
    assert wire.stored == []
    session.on_finished(Finished(CID, -1, "interrupted"))
    assert (await asyncio.wait_for(task, 5)).reason == "interrupted"


def test_heard_updates_last_heard() -> None:
    clock = FakeClock()
    session = WorkerSession("w1", 1, {}, lambda m: None, clock.now)
    clock.advance(30)
    assert session.last_heard == 1_000.0
    session.heard()
    assert session.last_heard == 1_030.0


# ------------------------------------------------------------------------------------ registry


def registry() -> WorkerRegistry:
    reg = WorkerRegistry(FakeClock().now, MemoryStorage().workers)
    reg.configure([WorkerDecl("w1", "s3cret", 2), WorkerDecl("w2", "other")])
    return reg


def test_authenticate() -> None:
    reg = registry()
    assert reg.authenticate("w1", "s3cret").max_builds == 2
    with pytest.raises(Unauthenticated) as wrong_secret:
        reg.authenticate("w1", "nope")
    with pytest.raises(Unauthenticated) as unknown_name:
        reg.authenticate("ghost", "s3cret")
    with pytest.raises(Unauthenticated) as other_workers_secret:
        reg.authenticate("w1", "other")
    with pytest.raises(Unauthenticated) as empty:
        reg.authenticate("", "")
    # Never reveal whether the worker exists.
    messages = {str(e.value) for e in (wrong_secret, unknown_name, other_workers_secret, empty)}
    assert messages == {"wrong worker name or secret"}


def test_attach_replaces_and_detach_ignores_stale_sessions() -> None:
    reg = registry()
    changes: list[int] = []
    reg.on_change = lambda: changes.append(len(reg.sessions))
    clock = FakeClock()
    first = WorkerSession("w1", 2, {}, lambda m: None, clock.now)
    second = WorkerSession("w1", 2, {}, lambda m: None, clock.now)
    assert reg.attach(first) is None
    assert reg.attach(second) is first
    assert not reg.detach(first)  # the replaced session going away must not remove the new one
    assert reg.sessions["w1"] is second
    assert reg.detach(second) and "w1" not in reg.sessions
    assert changes == [1, 1, 0]


def test_silent_since() -> None:
    reg = registry()
    clock = FakeClock()
    quiet = WorkerSession("w1", 1, {}, lambda m: None, clock.now)
    reg.attach(quiet)
    clock.advance(10)
    chatty = WorkerSession("w2", 1, {}, lambda m: None, clock.now)
    reg.attach(chatty)
    assert reg.silent_since(clock.now() - 5) == [quiet]


# ------------------------------------------------------------------------------------ re-attach


async def kept_session(
    wire: Wire, grace: float = 60.0
) -> tuple[WorkerSession, asyncio.Task[Finished], FakeClock, list[str]]:
    """A session running CID (missing_timeout `grace`) whose waits are recorded."""
    clock = FakeClock()
    session = WorkerSession("w1", 1, {}, wire.send, clock.now, missing_timeout=grace, call_later=clock.call_later)
    shown: list[str] = []

    async def on_wait(text: str) -> None:
        shown.append(text)
        wire.changes.bump()

    spec = CommandSpec(CID, argv=["make"], missing_timeout=grace)
    task = asyncio.ensure_future(session.run_command(spec, wire.on_output, on_wait))
    await wire.changes.until(lambda: bool(wire.sent))
    return session, task, clock, shown


async def test_a_lost_stream_keeps_the_command_and_resume_resends_after_what_is_stored() -> None:
    wire = Wire()
    session, task, clock, shown = await kept_session(wire)
    session.on_output(Output(CID, 1, 1, b"one\n"))
    session.on_output(Output(CID, 2, 1, b"two\n"))
    wire.stores[0].set_result(None)
    await wire.changes.until(lambda: wire.acks() == [1])

    assert session.lose(session.generation, "connection lost") == 60.0
    assert not session.attached and session.free_slots == 0 and not task.done()
    await wire.changes.until(lambda: shown == ["worker disconnected, waiting up to 60 s"])
    clock.advance(59)
    assert not task.done()

    second = Wire()
    generation = session.resume(second.send, {"os": "linux"}, 1, [KeptCommand(CID, 5, False)])
    assert generation == 1 and session.attached
    assert second.sent == []  # seq 2 is still being stored: the resend point is not known yet
    wire.stores[1].set_result(None)
    await second.changes.until(lambda: Reattach(CID, 2) in second.sent)
    await wire.changes.until(lambda: shown[-1] == "")
    # The resend overlaps nothing and misses nothing: seq 2 again is not stored twice.
    session.on_output(Output(CID, 2, 1, b"two\n"))
    session.on_output(Output(CID, 3, 1, b"three\n"))
    assert wire.stored == [(1, b"one\n"), (1, b"two\n"), (1, b"three\n")]
    wire.stores[2].set_result(None)
    session.on_finished(Finished(CID, 0, last_seq=3))
    assert (await asyncio.wait_for(task, 5)).rc == 0
    # The worker forgets the command only once the build committed its end.
    assert Ack(CID, 3, finished=True) not in second.sent
    session.release([CID])
    assert second.sent[-1] == Ack(CID, 3, finished=True)
    clock.advance(100)  # the grace timers were cancelled: nothing happens
    assert not session.closed


async def test_past_its_grace_the_command_fails_and_is_abandoned_when_reported() -> None:
    wire = Wire()
    session, task, clock, _ = await kept_session(wire, grace=3)
    session.lose(session.generation, "heartbeat timeout")
    clock.advance(3)
    with pytest.raises(WorkerLost, match="not back within 3 s"):
        await asyncio.wait_for(task, 5)
    assert session.closed  # nothing else held it
    # A session that was never kept: a reconnect with the command gets it abandoned.
    later = Wire()
    fresh = WorkerSession("w1", 1, {}, later.send, clock.now, missing_timeout=3, call_later=clock.call_later)
    fresh.builds.add("b/1")
    fresh.lose(fresh.generation, "x")
    fresh.resume(later.send, {}, 1, [KeptCommand(CID, 9, True)])
    assert later.sent == [Abandon(CID, "no build waits for it any more")]


async def test_a_worker_back_without_the_command_fails_it_and_a_stale_stream_changes_nothing() -> None:
    wire = Wire()
    session, task, clock, _ = await kept_session(wire)
    old = session.generation
    session.resume(wire.send, {}, 1, [])  # reconnected before the old stream was noticed dead
    assert session.lose(old, "connection lost") is None and session.attached  # stale: ignored
    with pytest.raises(WorkerLost, match="came back without command"):
        await asyncio.wait_for(task, 5)


async def test_no_grace_closes_at_once() -> None:
    wire = Wire()
    session, task, clock, _ = await kept_session(wire, grace=0)
    assert session.lose(session.generation, "connection lost") is None
    assert session.closed
    with pytest.raises(WorkerLost):
        await asyncio.wait_for(task, 5)


async def test_registry_keeps_a_lost_session_and_forgets_it_when_its_grace_ends() -> None:
    clock = FakeClock()
    storage = MemoryStorage()
    reg = WorkerRegistry(clock.now, storage.workers)
    reg.configure([WorkerDecl("w1", "s3cret", 1, missing_timeout=30)])
    session = WorkerSession("w1", 1, {}, lambda m: None, clock.now, missing_timeout=30, call_later=clock.call_later)
    await reg.connect(session)
    session.builds.add("b/1")
    assert await reg.lost(session, session.generation, "connection lost")
    assert reg.resumable("w1") is session and reg.silent_since(clock.now() + 1) == []
    (record,) = await storage.workers.list_workers()
    assert not record.connected
    clock.advance(30)
    assert session.closed and "w1" not in reg.sessions and reg.resumable("w1") is None


async def test_after_a_restart_a_build_adopts_the_command_the_worker_kept() -> None:
    clock = FakeClock()
    reg = WorkerRegistry(clock.now, MemoryStorage().workers, call_later=clock.call_later)
    session = reg.adopt(WorkerDecl("w1", "s", 1, missing_timeout=60), 60)
    session.builds.add("b/1")
    kept = session.expect("7-1-")
    missing = session.expect("8-0-")
    assert reg.resumable("w1") is session and not session.attached
    wire = Wire()
    session.resume(wire.send, {}, 1, [
        KeptCommand("7-1-2", 4, True), KeptCommand("7-1-3", 9, False), KeptCommand("5-0-1", 2, True),
    ])
    # Every command of the step the worker kept (one done and journaled, the one in flight).
    assert await kept == [KeptCommand("7-1-2", 4, True), KeptCommand("7-1-3", 9, False)]
    assert await missing == []  # that build's command did not survive
    assert wire.sent == [Abandon("5-0-1", "no build waits for it any more")]
    task = asyncio.ensure_future(session.adopt_command(KeptCommand("7-1-3", 9, False), 4, wire.on_output, None, 60))
    await wire.changes.until(lambda: Reattach("7-1-3", 4) in wire.sent)
    session.on_output(Output("7-1-3", 4, 1, b"dup"))  # stored before the restart
    session.on_output(Output("7-1-3", 5, 1, b"new"))
    assert wire.stored == [(1, b"new")]
    wire.stores[0].set_result(None)
    session.on_finished(Finished("7-1-3", 0, last_seq=5))
    assert (await asyncio.wait_for(task, 5)).rc == 0


async def test_an_adopted_session_gives_up_after_its_grace() -> None:
    clock = FakeClock()
    reg = WorkerRegistry(clock.now, MemoryStorage().workers, call_later=clock.call_later)
    session = reg.adopt(WorkerDecl("w1", "s", 1, missing_timeout=60), 30)
    kept = session.expect("7-1-")
    clock.advance(30)
    assert session.closed and await kept == [] and "w1" not in reg.sessions


async def test_a_build_stopped_while_its_worker_is_away_interrupts_the_command_once_it_is_back() -> None:
    wire = Wire()
    session, task, clock, _ = await kept_session(wire)
    session.lose(session.generation, "connection lost")
    session.interrupt(CID, "stopped by alice")
    assert not any(isinstance(m, Interrupt) for m in wire.sent)  # nowhere to send it yet
    second = Wire()
    session.resume(second.send, {}, 1, [KeptCommand(CID, 0, False)])
    await second.changes.until(lambda: len(second.sent) >= 2)
    assert second.sent == [Reattach(CID, 0), Interrupt(CID, "stopped by alice")]
    session.on_finished(Finished(CID, -1, "interrupted"))
    assert (await asyncio.wait_for(task, 5)).reason == "interrupted"

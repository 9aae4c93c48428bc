"""File primitives that survive a lost worker stream (WorkerFiles over a WorkerSession, without
the wire): the step waits for the worker within its grace period, then goes on over the new
stream: mkdir/stat/glob asked again, an upload from the bytes stored, a download from its start.
Stopped meanwhile: interrupted; not back in time: WorkerLost (the build ends RETRY)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest

from coordinator.domain.builds.context import BuildContext
from coordinator.domain.builds.journal import StepJournal
from coordinator.domain.builds.worker_files import WorkerFiles
from coordinator.domain.model import Build, Step
from coordinator.domain.workers.commands import (
    DOWNLOAD,
    FileChunk,
    FileCommand,
    FileResult,
    TransferError,
    WorkerLost,
)
from coordinator.domain.workers.sessions import Outbound, WorkerSession
from coordinator.storage.memory import MemoryStorage
from tests.coordinator.fakes import FakeClock


class Wire:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self._changed = asyncio.Event()

    def send(self, item: Outbound) -> None:
        self.sent.append(item)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def commands(self) -> list[FileCommand]:
        return [m for m in self.sent if isinstance(m, FileCommand)]


class Sink:
    def __init__(self) -> None:
        self.data = b""
        self.committed = self.aborted = False

    async def write(self, data: bytes) -> None:
        self.data += data

    async def commit(self) -> None:
        self.committed = True

    async def abort(self) -> None:
        self.aborted = True


class Setup:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.wire = Wire()
        self.session = WorkerSession(
            "w1", 1, {}, self.wire.send, self.clock.now, 4, missing_timeout=60, call_later=self.clock.call_later
        )
        self.session.builds.add("b/1")  # the build holds the worker: it is waited for
        build = Build(id=7, builder="b", number=1, worker="w1", build_request_id=1, buildset_id=1, started_at=0.0)
        self.context = BuildContext(build, self.session)
        step = Step(id=1, build_id=7, number=2, name="up")
        self.context.begin_step(step)
        storage = MemoryStorage()
        self.journal_store = storage.journal
        self.journal = StepJournal(build, storage.journal)
        self.journal.begin_step(step)
        self.states: list[str] = []
        self._waiting = asyncio.Event()
        self.files = WorkerFiles(
            self.context, self.session, "b", storage.builds, self.clock, journal=self.journal,
            on_worker_wait=self.wait_text,
        )

    async def wait_text(self, text: str) -> None:
        self.states.append(text)
        if text:
            self._waiting.set()

    async def drop(self) -> None:
        """The stream is lost; returns once the step waits for the worker."""
        assert self.session.lose(self.session.generation, "connection reset") == 60
        await asyncio.wait_for(self._waiting.wait(), 10)

    def back(self) -> None:
        self.session.resume(self.wire.send, {}, 1, [])

    async def command(self, n: int) -> FileCommand:
        await self.wire.until(lambda: len(self.wire.commands()) >= n)
        return self.wire.commands()[n - 1]


async def test_a_stat_cut_off_is_asked_again_once_the_worker_is_back() -> None:
    s = Setup()
    task = asyncio.ensure_future(s.files.stat("out.bin"))
    first = await s.command(1)
    await s.drop()
    s.back()
    again = await s.command(2)
    assert (again.op, again.path) == (first.op, first.path) and again.request_id != first.request_id
    s.session.files.on_result(FileResult(again.request_id, exists=True, size=3))
    result = await task
    assert result is not None and result.size == 3
    assert s.states == ["worker disconnected, waiting up to 60 s", ""]


async def test_an_upload_resumes_after_the_bytes_already_stored() -> None:
    s = Setup()
    sink = Sink()
    task = asyncio.ensure_future(s.files.upload("out.bin", sink))
    first = await s.command(1)
    s.session.files.on_chunk(FileChunk(first.request_id, 1, b"hello "))
    await s.wire.until(lambda: sink.data == b"hello ")
    await s.drop()
    s.back()
    again = await s.command(2)
    assert again.offset == 6  # only the rest is asked for
    s.session.files.on_chunk(FileChunk(again.request_id, 1, b"world"))
    digest = hashlib.sha256(b"hello world").hexdigest()
    s.session.files.on_result(FileResult(again.request_id, size=11, sha256=digest, last_seq=1))
    assert (await task).sha256 == digest
    assert (sink.data, sink.committed, sink.aborted) == (b"hello world", True, False)
    # Asked twice, journaled once (as the one action a replay after a restart finds), under the
    # id of the request that completed it.
    await s.journal.flush()
    entries = await s.journal_store.step_journal(7, 2)
    assert [(e.kind, e.index, e.command_id) for e in entries] == [("file", 0, again.request_id)]


async def test_a_download_starts_over_from_a_fresh_read() -> None:
    s = Setup()
    reads = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal reads
        reads += 1
        yield b"payload"

    task = asyncio.ensure_future(s.files.download(chunks, "in.bin"))
    first = await s.command(1)
    assert first.op == DOWNLOAD
    await s.drop()
    s.back()
    again = await s.command(2)
    await s.wire.until(lambda: any(isinstance(m, FileChunk) and m.eof and m.request_id == again.request_id
                                   for m in s.wire.sent))
    s.session.files.on_result(FileResult(again.request_id, size=7))
    assert (await task).size == 7 and reads == 2


async def test_stopped_while_waiting_for_the_worker_is_interrupted() -> None:
    s = Setup()
    task = asyncio.ensure_future(s.files.mkdir("dist"))
    await s.command(1)
    await s.drop()
    s.context.stop("stopped by alice")
    with pytest.raises(TransferError, match="interrupted: stopped by alice"):
        await task


async def test_a_worker_not_back_within_the_grace_period_is_lost() -> None:
    s = Setup()
    sink = Sink()
    task = asyncio.ensure_future(s.files.upload("out.bin", sink))
    await s.command(1)
    await s.drop()
    s.clock.advance(61)
    with pytest.raises(WorkerLost, match="connection reset"):
        await task
    assert sink.aborted and not sink.committed

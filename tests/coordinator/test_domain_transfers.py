"""Transfers over a worker session, without the wire: checksums, size limits, windows, and a worker
lost mid-transfer."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable

import pytest

from coordinator.domain.workers.commands import (
    DOWNLOAD,
    UPLOAD,
    FileAck,
    FileCancel,
    FileChunk,
    FileCommand,
    FileResult,
    TransferError,
    WorkerLost,
)
from coordinator.domain.workers.sessions import Outbound, WorkerSession
from tests.coordinator.fakes import FakeClock

RID = "7-1-1"


class Wire:
    def __init__(self) -> None:
        self.sent: list[Outbound] = []
        self.written: list[bytes] = []
        self._changed = asyncio.Event()

    def send(self, item: Outbound) -> None:
        self.sent.append(item)
        self._changed.set()

    async def write(self, data: bytes) -> None:
        self.written.append(data)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [m for m in self.sent if isinstance(m, kind)]


def session(wire: Wire, window: int = 2) -> WorkerSession:
    return WorkerSession("w1", 1, {}, wire.send, FakeClock().now, window)


async def upload(wire: Wire, s: WorkerSession, max_size: int = 0) -> asyncio.Task[FileResult]:
    cmd = FileCommand(RID, UPLOAD, "b", "build/out.bin", max_size)
    task = asyncio.ensure_future(s.files.receive(cmd, wire.write))
    await wire.until(lambda: bool(wire.sent))
    assert wire.sent == [cmd]
    return task


async def test_upload_chunks_are_written_acked_and_verified() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s)
    s.files.on_chunk(FileChunk(RID, 1, b"hello "))
    s.files.on_chunk(FileChunk(RID, 2, b"world"))
    await wire.until(lambda: len(wire.of(FileAck)) == 2)
    digest = hashlib.sha256(b"hello world").hexdigest()
    s.files.on_result(FileResult(RID, size=11, sha256=digest, last_seq=2))
    result = await task
    assert result.sha256 == digest and wire.written == [b"hello ", b"world"]
    assert wire.of(FileAck) == [FileAck(RID, 1), FileAck(RID, 2)]


async def test_checksum_mismatch_is_detected() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s)
    s.files.on_chunk(FileChunk(RID, 1, b"hello"))
    s.files.on_result(FileResult(RID, size=5, sha256=hashlib.sha256(b"hellO").hexdigest(), last_seq=1))
    with pytest.raises(TransferError, match="checksum mismatch"):
        await task


async def test_missing_chunks_are_detected() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s)
    s.files.on_chunk(FileChunk(RID, 1, b"hello"))
    s.files.on_result(FileResult(RID, size=10, sha256="x", last_seq=2))
    with pytest.raises(TransferError, match="incomplete transfer"):
        await task


async def test_upload_beyond_max_size_is_cancelled() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s, max_size=8)
    s.files.on_chunk(FileChunk(RID, 1, b"12345"))
    s.files.on_chunk(FileChunk(RID, 2, b"67890"))
    with pytest.raises(TransferError, match=r"larger than maxsize \(8 bytes\)"):
        await task
    assert wire.of(FileCancel) == [FileCancel(RID, "build/out.bin is larger than maxsize (8 bytes)")]
    assert wire.written == [b"12345"]


async def test_worker_error_fails_the_transfer() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s)
    s.files.on_result(FileResult(RID, error="no such file or directory: build/out.bin"))
    with pytest.raises(TransferError, match="no such file"):
        await task


async def test_worker_lost_mid_upload_is_worker_lost() -> None:
    wire = Wire()
    s = session(wire)
    task = await upload(wire, s)
    s.files.on_chunk(FileChunk(RID, 1, b"12345"))
    s.close("connection lost")
    with pytest.raises(WorkerLost):
        await task
    with pytest.raises(WorkerLost):  # and nothing new starts on a closed session
        await s.files.request(FileCommand("x", UPLOAD, "b", "p"))


async def _chunks(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        yield bytes([i]) * 4


async def test_download_keeps_within_the_window_and_sends_the_sha256() -> None:
    wire = Wire()
    s = session(wire, window=2)
    cmd = FileCommand(RID, DOWNLOAD, "b", "build/in.bin")
    task = asyncio.ensure_future(s.files.send(cmd, _chunks(5)))
    await wire.until(lambda: len(wire.of(FileChunk)) == 2)
    await asyncio.sleep(0)
    assert len(wire.of(FileChunk)) == 2  # the window is full
    s.files.on_ack(FileAck(RID, 2))
    await wire.until(lambda: len(wire.of(FileChunk)) == 4)
    s.files.on_ack(FileAck(RID, 4))
    await wire.until(lambda: any(c.eof for c in wire.of(FileChunk)))
    *data, last = wire.of(FileChunk)
    assert [c.seq for c in data] == [1, 2, 3, 4, 5] and last.seq == 6
    assert last.sha256 == hashlib.sha256(b"".join(c.data for c in data)).hexdigest()
    s.files.on_result(FileResult(RID, size=20))
    assert (await task).size == 20


async def test_download_stops_when_the_worker_gives_up() -> None:
    wire = Wire()
    s = session(wire, window=1)
    task = asyncio.ensure_future(s.files.send(FileCommand(RID, DOWNLOAD, "b", "x"), _chunks(5)))
    await wire.until(lambda: len(wire.of(FileChunk)) == 1)
    s.files.on_result(FileResult(RID, error="disk full"))
    with pytest.raises(TransferError, match="disk full"):
        await task
    assert len(wire.of(FileChunk)) == 1


async def test_worker_lost_mid_download_is_worker_lost() -> None:
    wire = Wire()
    s = session(wire, window=1)
    task = asyncio.ensure_future(s.files.send(FileCommand(RID, DOWNLOAD, "b", "x"), _chunks(5)))
    await wire.until(lambda: len(wire.of(FileChunk)) == 1)
    s.close("heartbeat timeout")
    with pytest.raises(WorkerLost):
        await task


async def test_a_worker_ignoring_the_window_is_stopped() -> None:
    wire = Wire()
    s = session(wire, window=2)
    written = asyncio.Event()

    async def never_done(data: bytes) -> None:  # a store that does not finish: nothing is acked
        written.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(s.files.receive(FileCommand(RID, UPLOAD, "b", "x"), never_done))
    await wire.until(lambda: bool(wire.sent))
    s.files.on_chunk(FileChunk(RID, 1, b"a"))
    await written.wait()
    for seq in range(2, 10):
        s.files.on_chunk(FileChunk(RID, seq, b"a"))
    assert wire.of(FileCancel) and "flow-control window" in wire.of(FileCancel)[0].reason
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_failing_store_stops_the_worker() -> None:
    wire = Wire()
    s = session(wire)

    async def disk_full(data: bytes) -> None:
        raise TransferError("cannot write /data/out.bin: No space left on device")

    task = asyncio.ensure_future(s.files.receive(FileCommand(RID, UPLOAD, "b", "x"), disk_full))
    await wire.until(lambda: bool(wire.sent))
    s.files.on_chunk(FileChunk(RID, 1, b"a"))
    with pytest.raises(TransferError, match="No space left"):
        await task
    assert wire.of(FileCancel) == [FileCancel(RID, "cannot write /data/out.bin: No space left on device")]
    assert wire.of(FileAck) == []


async def test_an_upload_resumes_after_the_bytes_stored_before_a_lost_stream() -> None:
    from coordinator.domain.workers.transfers import Transfers, UploadProgress

    wire = Wire()
    s = session(wire)
    progress = UploadProgress()
    first = asyncio.ensure_future(s.files.receive(FileCommand(RID, UPLOAD, "b", "out.bin"), wire.write, progress))
    await wire.until(lambda: bool(wire.sent))
    s.files.on_chunk(FileChunk(RID, 1, b"hello "))
    await wire.until(lambda: len(wire.of(FileAck)) == 1)
    s.files.close("stream lost")
    with pytest.raises(WorkerLost):
        await first
    assert progress.size == 6
    # The next stream (its own Transfers): the same progress, a new request asking for the rest.
    s.files = Transfers(wire.send, 2)
    again = FileCommand("7-1-2", UPLOAD, "b", "out.bin", offset=progress.size)
    second = asyncio.ensure_future(s.files.receive(again, wire.write, progress))
    await wire.until(lambda: wire.sent[-1] == again)
    s.files.on_chunk(FileChunk("7-1-2", 1, b"world"))
    digest = hashlib.sha256(b"hello world").hexdigest()
    s.files.on_result(FileResult("7-1-2", size=11, sha256=digest, last_seq=1))
    assert (await second).sha256 == digest
    assert wire.written == [b"hello ", b"world"]

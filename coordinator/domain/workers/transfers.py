"""File primitives and transfers over one worker stream, without the wire.

Uploads (worker -> coordinator) arrive as numbered chunks; each is written to its sink, hashed
and then acknowledged, so at most the worker's window of chunks is ever held in memory. Downloads
(coordinator -> worker) send at most `window` chunks ahead of the worker's acks. The receiver
checks the sha256; a size limit stops the transfer. A worker that goes away fails every pending
transfer of this stream with WorkerLost; the build side (WorkerFiles) waits for the worker to come
back within its grace period and goes on: an upload from the bytes already stored (its
UploadProgress), a download from the start (the worker discards a partial file).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from coordinator.domain.workers.commands import (
    FileAck,
    FileCancel,
    FileChunk,
    FileCommand,
    FileResult,
    TransferError,
    WorkerLost,
)

Send = Callable[[FileCommand | FileChunk | FileAck | FileCancel], None]
Write = Callable[[bytes], Awaitable[None]]
# What a download sends: the chunks, or a function giving them afresh (then the download can
# start over after a lost stream).
Chunks = AsyncIterator[bytes] | Callable[[], AsyncIterator[bytes]]


@dataclass
class UploadProgress:
    """What an upload has stored so far; kept by the caller across attempts, so an upload
    cut off by a lost stream resumes at `size` bytes instead of starting over."""

    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0


@dataclass
class _Pending:
    cmd: FileCommand
    result: asyncio.Future[FileResult]
    # uploads: chunks and the final result, in stream order (at most the worker's window)
    inbox: asyncio.Queue[FileChunk | FileResult | BaseException] | None = None
    # downloads: highest chunk the worker has written
    acked: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class Transfers:
    def __init__(self, send: Send, window: int) -> None:
        self._send = send
        self._window = max(1, window)
        self._pending: dict[str, _Pending] = {}
        self._lost: str | None = None

    # -- what the step side asks for
    async def request(self, cmd: FileCommand) -> FileResult:
        """mkdir / rmdir / stat / glob: one command, one result."""
        pending = self._register(cmd)
        try:
            self._send(cmd)
            return _checked(await pending.result)
        finally:
            self._pending.pop(cmd.request_id, None)

    async def receive(self, cmd: FileCommand, write: Write, progress: UploadProgress | None = None) -> FileResult:
        """Upload: the worker sends the file in chunks; each is passed to `write` before it is
        acknowledged. Raises TransferError (size limit, checksum, worker error, a failing
        `write`) or WorkerLost; a worker still sending is told to stop. With `progress` (whose
        size `cmd.offset` must be), the bytes stored so far are counted in, and it is updated
        as chunks are stored."""
        pending = self._register(cmd)
        pending.inbox = asyncio.Queue()
        progress = progress or UploadProgress()
        assert cmd.offset == progress.size, "the FileCommand's offset is what was stored"
        digest, seq = progress.digest, 0
        worker_done = False  # the worker sent its FileResult (or is gone): nothing to cancel
        try:
            self._send(cmd)
            while True:
                item = await pending.inbox.get()
                if isinstance(item, BaseException):
                    worker_done = isinstance(item, WorkerLost)
                    raise item
                if isinstance(item, FileResult):
                    worker_done = True
                    result = _checked(item)
                    if result.last_seq != seq or result.size != progress.size:
                        raise TransferError(
                            f"{cmd.path}: incomplete transfer ({progress.size} of {result.size} bytes)"
                        )
                    if result.sha256 != digest.hexdigest():
                        raise TransferError(f"{cmd.path}: checksum mismatch: the file arrived damaged")
                    return result
                if item.seq != seq + 1:
                    raise TransferError(f"{cmd.path}: chunk {item.seq} out of order (expected {seq + 1})")
                seq = item.seq
                if cmd.max_size and progress.size + len(item.data) > cmd.max_size:
                    raise TransferError(f"{cmd.path} is larger than maxsize ({cmd.max_size} bytes)")
                await write(item.data)
                # Counted once written: a resumed upload asks for exactly what is not stored.
                digest.update(item.data)
                progress.size += len(item.data)
                self._send(FileAck(cmd.request_id, seq))
        except BaseException as exc:
            if not worker_done and self._lost is None:
                self._send(FileCancel(cmd.request_id, str(exc) or type(exc).__name__))
            raise
        finally:
            self._pending.pop(cmd.request_id, None)

    async def send(self, cmd: FileCommand, chunks: AsyncIterator[bytes]) -> FileResult:
        """Download: send `chunks` to the worker, never more than the window ahead of its acks,
        then the sha256; returns once the worker has verified and stored the file."""
        pending = self._register(cmd)
        digest, seq = hashlib.sha256(), 0
        try:
            self._send(cmd)
            async for data in chunks:
                while seq - pending.acked >= self._window and not pending.result.done():
                    pending.changed.clear()
                    await pending.changed.wait()
                if pending.result.done():
                    break  # the worker gave up early (its error is in the result)
                seq += 1
                digest.update(data)
                self._send(FileChunk(cmd.request_id, seq, data))
            if not pending.result.done():
                self._send(FileChunk(cmd.request_id, seq + 1, b"", eof=True, sha256=digest.hexdigest()))
            return _checked(await pending.result)
        except BaseException:
            if not pending.result.done():
                self._send(FileCancel(cmd.request_id, "transfer abandoned"))
            raise
        finally:
            self._pending.pop(cmd.request_id, None)

    # -- what the worker said
    def on_chunk(self, chunk: FileChunk) -> None:
        pending = self._pending.get(chunk.request_id)
        if pending is None or pending.inbox is None:
            return  # of a transfer already over (e.g. cancelled for its size)
        if pending.inbox.qsize() > 2 * self._window:
            # The worker ignores the window: fail the transfer rather than buffer without bound.
            # What is queued is dropped; the step sees only the error.
            error = TransferError(f"{pending.cmd.path}: the worker sent past the flow-control window")
            pending.inbox = asyncio.Queue()
            pending.inbox.put_nowait(error)
            self._send(FileCancel(chunk.request_id, str(error)))
            return
        pending.inbox.put_nowait(chunk)

    def on_ack(self, ack: FileAck) -> None:
        pending = self._pending.get(ack.request_id)
        if pending is not None and ack.seq > pending.acked:
            pending.acked = ack.seq
            pending.changed.set()

    def on_result(self, result: FileResult) -> None:
        pending = self._pending.get(result.request_id)
        if pending is None:
            return
        if pending.inbox is not None:
            pending.inbox.put_nowait(result)
        elif not pending.result.done():
            pending.result.set_result(result)
            pending.changed.set()

    def abandon(self, request_id: str, reason: str) -> None:
        """Stop a transfer from this side (the build was stopped): the worker is told, and the
        waiting step gets a TransferError."""
        pending = self._pending.get(request_id)
        if pending is None:
            return
        self._send(FileCancel(request_id, reason))
        error = TransferError(f"interrupted: {reason}")
        if pending.inbox is not None:
            pending.inbox.put_nowait(error)
        elif not pending.result.done():
            pending.result.set_exception(error)
        pending.changed.set()

    def close(self, reason: str) -> None:
        self._lost = reason
        for pending in self._pending.values():
            lost = WorkerLost(reason)
            if pending.inbox is not None:
                pending.inbox.put_nowait(lost)
            elif not pending.result.done():
                pending.result.set_exception(lost)
            pending.changed.set()

    # -- helpers
    def _register(self, cmd: FileCommand) -> _Pending:
        if self._lost is not None:
            raise WorkerLost(self._lost)
        pending = _Pending(cmd, asyncio.get_running_loop().create_future())
        self._pending[cmd.request_id] = pending
        return pending



def _checked(result: FileResult) -> FileResult:
    if result.error:
        raise TransferError(result.error)
    return result

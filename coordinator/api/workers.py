"""The worker stream adapter: protobuf frames <-> a domain WorkerSession.

One stream per worker; per connection there is one handler coroutine, one reader task and one
outbox. Heartbeats to all workers and the silent-peer check run in a single watchdog loop, not a
task per worker, so idle workers cost little. A worker that reconnects while a build still
holds its session continues that session (the commands it kept re-attach); a stream's end
leaves the session waiting for it within the grace period (WorkerRegistry.lost).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from coordinator.api.interceptors.auth import peer_ip
from coordinator.domain.auth.limits import FailureLimiter
from coordinator.domain.errors import Unauthenticated
from coordinator.domain.workers.capacity import effective_capacity
from coordinator.domain.workers.commands import (
    Abandon,
    Ack,
    CommandSpec,
    FileAck,
    FileCancel,
    FileChunk,
    FileCommand,
    FileResult,
    Finished,
    Interrupt,
    KeptCommand,
    Output,
    Reattach,
)
from coordinator.domain.workers.sessions import Outbound, WorkerRegistry, WorkerSession
from coordinator.logsafe import clip
from protos.gantry.v1 import worker_pb2, worker_pb2_grpc

log = logging.getLogger(__name__)

HELLO_TIMEOUT = 10.0


class _Close:
    """Ends one stream's write loop (put in its outbox)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def to_pb(item: Outbound | worker_pb2.Heartbeat | worker_pb2.CoordinatorMessage) -> worker_pb2.CoordinatorMessage:
    if isinstance(item, worker_pb2.CoordinatorMessage):
        return item  # built here already (shutdown)
    if isinstance(item, CommandSpec):
        return worker_pb2.CoordinatorMessage(
            start=worker_pb2.StartCommand(
                command_id=item.command_id, argv=item.argv, shell_command=item.shell_command,
                builder_dir=item.builder_dir, workdir=item.workdir, env=item.env,
                timeout=item.timeout, max_time=item.max_time, missing_timeout=item.missing_timeout,
                redactions=[worker_pb2.Redaction(name=n, value=v) for n, v in item.redactions],
            )
        )
    if isinstance(item, Ack):
        return worker_pb2.CoordinatorMessage(
            ack=worker_pb2.Ack(command_id=item.command_id, seq=item.seq, finished=item.finished)
        )
    if isinstance(item, Reattach):
        return worker_pb2.CoordinatorMessage(
            reattach=worker_pb2.Reattach(command_id=item.command_id, stored_seq=item.stored_seq)
        )
    if isinstance(item, Abandon):
        return worker_pb2.CoordinatorMessage(
            abandon=worker_pb2.AbandonCommand(command_id=item.command_id, reason=item.reason)
        )
    if isinstance(item, Interrupt):
        return worker_pb2.CoordinatorMessage(
            interrupt=worker_pb2.InterruptCommand(command_id=item.command_id, reason=item.reason)
        )
    if isinstance(item, FileChunk):
        return worker_pb2.CoordinatorMessage(
            file_data=worker_pb2.FileData(
                request_id=item.request_id, seq=item.seq, data=item.data, eof=item.eof, sha256=item.sha256
            )
        )
    if isinstance(item, FileAck):
        return worker_pb2.CoordinatorMessage(file_ack=worker_pb2.FileAck(request_id=item.request_id, seq=item.seq))
    if isinstance(item, FileCommand):
        return worker_pb2.CoordinatorMessage(
            file_command=worker_pb2.FileCommand(
                request_id=item.request_id, op=_FILE_OPS[item.op], builder_dir=item.builder_dir,
                path=item.path, max_size=item.max_size, mode=item.mode, offset=item.offset,
            )
        )
    if isinstance(item, FileCancel):
        return worker_pb2.CoordinatorMessage(
            file_cancel=worker_pb2.FileCancel(request_id=item.request_id, reason=item.reason)
        )
    return worker_pb2.CoordinatorMessage(heartbeat=item)


_FILE_OPS = {name.lower(): value for name, value in worker_pb2.FileCommand.Op.items()}


def file_result_in(r: worker_pb2.FileResult) -> FileResult:
    return FileResult(
        request_id=r.request_id, error=r.error, exists=r.exists, is_dir=r.is_dir, size=r.size,
        mtime=r.mtime, sha256=r.sha256, last_seq=r.last_seq, paths=tuple(r.paths), too_large=r.too_large,
    )


class WorkerServicer(worker_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self,
        registry: WorkerRegistry,
        now: Callable[[], float],
        heartbeat_interval: float = 10.0,
        window: int = 32,  # 32 x 32 KiB in flight per command: ~2x the log rate of 8 (bench), bounded
        failures: FailureLimiter | None = None,
    ) -> None:
        self.registry = registry
        self.now = now
        # Wrong secrets: 10 a minute per source address and per worker name, then refused unread.
        self.failures = failures or FailureLimiter(limit=10, window=60.0, now=time.monotonic)
        self.heartbeat_interval = heartbeat_interval
        self.window = window
        self._outboxes: dict[WorkerSession, asyncio.Queue[Any]] = {}
        self.on_draining: Callable[[str, str], None] = lambda _name, _reason: None  # (worker, why)

    async def Connect(
        self, request_iterator: AsyncIterator[worker_pb2.WorkerMessage], context: grpc.aio.ServicerContext
    ) -> None:
        try:
            first = await asyncio.wait_for(anext(request_iterator), HELLO_TIMEOUT)
        except (TimeoutError, StopAsyncIteration):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be hello")
        if not first.HasField("hello"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be hello")
        hello = first.hello
        source, by_name = peer_ip(context.peer() or ""), f"name:{hello.name[:200]}"
        if self.failures.blocked(source) or self.failures.blocked(by_name):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "too many failed attempts for this worker or from this address; retry in a minute")
        try:
            decl = self.registry.authenticate(hello.name, hello.secret)
        except Unauthenticated as exc:
            first_of_window = [self.failures.failed(source), self.failures.failed(by_name)]
            if any(first_of_window):  # once per address and name a minute: guessing cannot flood the log
                log.warning("refused worker %s from %s: wrong name or secret (further failures within "
                            "a minute are not logged)", clip(hello.name, 64), clip(context.peer(), 64))
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        self.failures.succeeded(by_name)
        outbox: asyncio.Queue[Any] = asyncio.Queue()  # bounded by the protocol: acks <= window per command
        info = {"os": hello.os, "arch": hello.arch, "version": hello.version,
                "labels": ",".join(hello.labels)}
        max_builds = effective_capacity(decl.max_builds, hello.max_builds)
        kept = [KeptCommand(c.command_id, c.last_seq, c.finished) for c in hello.commands]
        await context.write(
            worker_pb2.CoordinatorMessage(
                welcome=worker_pb2.Welcome(
                    heartbeat_interval=max(1, int(self.heartbeat_interval)), window=self.window, version="0.1.0"
                )
            )
        )
        session = self.registry.resumable(decl.name)
        if session is not None:
            stale = self._outboxes.get(session)
            generation = await self.registry.resume(
                session, outbox.put_nowait, info, max_builds, kept, agent_limit=hello.max_builds
            )
            if stale is not None:
                stale.put_nowait(_Close("replaced by a new connection"))
            log.info("worker %s reconnected from %s; %d command(s) kept", session.name, context.peer(), len(kept))
        else:
            session = WorkerSession(
                decl.name, max_builds, info, outbox.put_nowait, self.now, self.window,
                missing_timeout=decl.missing_timeout, agent_limit=hello.max_builds,
            )
            generation = session.generation
            old = await self.registry.connect(session)
            if old is not None:
                self._close(old, "replaced by a new connection")
            for k in kept:  # commands of a session this coordinator does not have
                outbox.put_nowait(Abandon(k.command_id, "no build waits for it any more"))
            log.info("worker %s connected from %s", session.name, context.peer())
        self._outboxes[session] = outbox
        reader = asyncio.ensure_future(self._read(request_iterator, session, generation))
        reader.add_done_callback(lambda _f: outbox.put_nowait(_Close("connection closed")))
        reason = "connection closed"
        try:
            while True:
                item = await outbox.get()
                if isinstance(item, _Close):
                    reason = item.reason
                    break
                await context.write(to_pb(item))
        except (asyncio.CancelledError, grpc.aio.AioRpcError, ConnectionError):
            reason = "connection lost"
        finally:
            reader.cancel()
            if self._outboxes.get(session) is outbox:
                del self._outboxes[session]
            if await asyncio.shield(self.registry.lost(session, generation, reason)):
                log.info("worker %s disconnected: %s", session.name, reason)

    async def _read(
        self, messages: AsyncIterator[worker_pb2.WorkerMessage], session: WorkerSession, generation: int
    ) -> None:
        try:
            async for msg in messages:
                if session.generation != generation:
                    return  # a newer stream of this worker took over: this one is stale
                session.heard()
                which = msg.WhichOneof("msg")
                if which == "output":
                    o = msg.output
                    session.on_output(Output(o.command_id, o.seq, o.channel, o.data, tuple(o.time_marks)))
                elif which == "finished":
                    f = msg.finished
                    session.on_finished(Finished(f.command_id, f.rc, f.reason, f.last_seq))
                elif which == "file_data":
                    d = msg.file_data
                    session.files.on_chunk(FileChunk(d.request_id, d.seq, d.data, d.eof, d.sha256))
                elif which == "file_ack":
                    session.files.on_ack(FileAck(msg.file_ack.request_id, msg.file_ack.seq))
                elif which == "file_result":
                    session.files.on_result(file_result_in(msg.file_result))
                elif which == "draining":
                    if msg.draining.stopping:
                        session.leaving = True  # its commands die with it: nothing will re-attach
                    self.on_draining(session.name, msg.draining.reason or "the agent is draining")
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass

    def _close(self, session: WorkerSession, reason: str) -> None:
        """End the session's stream; the session waits for the worker if a build holds it."""
        box = self._outboxes.get(session)
        if box is not None:
            box.put_nowait(_Close(reason))
        else:
            session.close(reason)

    def ask_to_exit(self, worker: str, reason: str) -> bool:
        """Tell a connected agent to exit (it was drained); False if it is not connected."""
        session = self.registry.sessions.get(worker)
        box = None if session is None else self._outboxes.get(session)
        if box is None:
            return False
        box.put_nowait(worker_pb2.CoordinatorMessage(shutdown=worker_pb2.Shutdown(reason=reason)))
        return True

    def close_all(self, reason: str) -> None:
        """End every worker stream (at shutdown, so the server need not wait out its grace)."""
        for session in list(self._outboxes):
            self._close(session, reason)

    async def watchdog(self) -> None:
        """Send heartbeats and drop the workers the registry finds silent for three intervals."""
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            silent = self.registry.silent_since(self.now() - 3 * self.heartbeat_interval)
            for session in silent:
                log.warning("worker %s silent for %.0fs: dropping it", session.name, 3 * self.heartbeat_interval)
                self._close(session, "heartbeat timeout")
            beat = worker_pb2.Heartbeat(sent_at=self.now())
            for session in list(self.registry.sessions.values()):
                box = self._outboxes.get(session)
                if box is not None and session not in silent:
                    box.put_nowait(beat)

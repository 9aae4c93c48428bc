"""Runs one StartCommand: spawn it in its own process group, stream its output, enforce limits.

Output is byte-exact (never decoded). Each channel is coalesced into chunks of up to CHUNK_SIZE
bytes, sent when full or COALESCE_DELAY after the first unsent byte. Chunks are numbered from 1
per command over all channels, in send order, and go to the command's on-disk Spool with
the wall-clock times their bytes were read (a mark per chunk, and one more per read within it
only where the time moved by MARK_RESOLUTION_MS: per-line times for the log viewer); a
Delivery sends them to the coordinator through whichever connection is attached (see
delivery.py), so the command outlives a lost connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from protos.gantry.v1 import worker_pb2
from worker_agent.delivery import Delivery, MessageSink
from worker_agent.process import ChildProcess, spawn
from worker_agent.redact import Redactor
from worker_agent.spool import DEFAULT_LIMIT, Spool

CHUNK_SIZE = 32 * 1024
COALESCE_DELAY = 0.020
# A read within a coalesced chunk gets its own time mark only if its time differs from the
# chunk's last mark by at least this much (reads within one chunk are usually < 20 ms apart).
MARK_RESOLUTION_MS = 10
# After the process exited (or was killed), how long pipes may stay silent before we stop
# waiting for EOF: grandchildren that escaped the kill may hold them open forever.
DRAIN_TIMEOUT = 2.0
# How long to wait for a killed process to be reaped.
REAP_TIMEOUT = 2.0

STDOUT, STDERR, HEADER = 1, 2, 3
# Under the basedir; one directory per running command, removed when it is over.
SPOOL_DIR = ".gantry-spool"

__all__ = ["CommandRunner", "MessageSink", "StartError"]


def _protocol_factory(reader: asyncio.StreamReader) -> Callable[[], asyncio.BaseProtocol]:
    return lambda: asyncio.StreamReaderProtocol(reader)


class StartError(Exception):
    """The command cannot be started (bad directory, empty command, ...)."""


class CommandRunner:
    """Runs one command to completion and reports it through a MessageSink.

    `run()` returns the CommandFinished once it was sent (on whichever connection is attached
    by then). `ack()`, `interrupt()`, `attach()` and `detach()` are called by the connection as
    messages arrive. Cancelling `run()` kills the process group and reaps it; `close()` removes
    the spool once the runner is done with.
    """

    def __init__(
        self,
        start: worker_pb2.StartCommand,
        basedir: Path,
        sink: MessageSink | None,
        *,
        window: int = 8,
        drain_timeout: float = DRAIN_TIMEOUT,
        spool_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self._start = start
        self._basedir = basedir
        name = hashlib.sha256(start.command_id.encode()).hexdigest()[:24]
        spool = Spool(Path(basedir) / SPOOL_DIR / name, spool_limit)
        self.delivery = Delivery(start.command_id, spool, window)
        self._sink = sink  # attached when run() starts (it needs the running loop)
        # Told as soon as the command's end is known (its delivery may wait for a connection).
        self.on_end: Callable[[worker_pb2.CommandFinished], None] = lambda _f: None
        self._drain_timeout = drain_timeout
        self._lock = asyncio.Lock()
        self._proc: ChildProcess | None = None
        self._kill_reason = ""
        self._header_tasks: list[asyncio.Task[None]] = []
        self._sending = 0  # > 0 while a chunk waits for window room or the sink
        self._last_output = 0.0
        self._done = False
        self._redactor = Redactor((r.name, r.value) for r in start.redactions)

    # -- what the connection sees -------------------------------------------------------------

    @property
    def command_id(self) -> str:
        return self._start.command_id

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def describe(self) -> str:
        """The command as text, as shown in the log header (secrets hidden)."""
        if self._start.argv:
            return self._redactor.text(shlex.join(self._start.argv))
        return self._redactor.text(self._start.shell_command)

    def directory(self) -> Path:
        """basedir/builder_dir/(workdir or "build"), absolute; never outside basedir."""
        base = Path(os.path.abspath(self._basedir))
        rel = os.path.normpath(
            os.path.join(self._start.builder_dir, self._start.workdir or "build")
        )
        if os.path.isabs(rel) or rel == ".." or rel.startswith(".." + os.sep):
            raise StartError(f"directory {rel!r} is outside the worker's basedir")
        if self._redactor.leaks_into(rel):  # the name would show in listings, logs, `pwd`
            raise StartError("the build directory's name contains a secret (or part of one): "
                             "use a secret in the command, never in workdir")
        return base / rel

    @property
    def missing_timeout(self) -> float:
        """How long the command may wait for the coordinator to come back (0: not at all)."""
        return self._start.missing_timeout

    def ack(self, seq: int, finished: bool = False) -> None:
        self.delivery.ack(seq, finished)

    def attach(self, sink: MessageSink, stored_seq: int | None = None) -> int:
        return self.delivery.attach(sink, stored_seq)

    def detach(self) -> None:
        self._sink = None  # not started yet: it waits for a Reattach like the others
        self.delivery.detach()

    def close(self) -> None:
        self.delivery.close()

    def kill_now(self) -> None:
        """Kill the process group at once (abandoned: nobody waits for the command), before any
        later message can start another command in the same directory."""
        self._killpg()

    def interrupt(self, reason: str) -> None:
        self._kill("interrupted", f"interrupted: {reason}\n")

    # -- the run ---------------------------------------------------------------------------------

    async def run(self) -> worker_pb2.CommandFinished:
        if self._sink is not None:
            self.delivery.attach(self._sink)
            self._sink = None
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._last_output = started
        try:
            workdir = self.directory()
        except StartError as exc:
            return await self._fail_start(exc)
        await self._send_header(f"{self.describe()}\n in dir {workdir}\n")
        if self._kill_reason:  # interrupted before it could start
            self._done = True
            await self._await_headers()
            return await self._finish(-1, self._kill_reason)
        try:
            proc, readers, transports = await self._spawn(workdir)
        except (OSError, ValueError, StartError) as exc:
            return await self._fail_start(exc)

        self._proc = proc
        if self._kill_reason:
            self._killpg()
        pumps = [
            asyncio.create_task(self._pump(STDOUT, readers[0])),
            asyncio.create_task(self._pump(STDERR, readers[1])),
        ]
        watchdog = asyncio.create_task(self._watchdog(started))
        try:
            returncode = await proc.wait()
            self._last_output = max(self._last_output, loop.time())
            await self._drain(pumps, transports)
            watchdog.cancel()
            self._done = True  # no more kills: their header lines must precede the last one
            await self._await_headers()
            elapsed = loop.time() - started
            if returncode < 0:
                rc, end = -1, f"process killed by signal {-returncode}\n"
            else:
                rc, end = returncode, f"program finished with exit code {returncode}\n"
            await self._send_header(f"{end}elapsedTime={elapsed:0.6f}\n")
            return await self._finish(rc, self._kill_reason)
        finally:
            self._done = True
            abandoned = proc.returncode is None or not all(task.done() for task in pumps)
            watchdog.cancel()
            helpers = [*pumps, *self._header_tasks]
            for task in helpers:
                task.cancel()
            await asyncio.wait(helpers)
            if abandoned:  # cancelled (lost connection, shutdown): kill, reap, wait for the group
                self._killpg()
                try:
                    async with asyncio.timeout(REAP_TIMEOUT):
                        await self._reap(proc, readers)
                except TimeoutError:
                    pass
            for transport in transports:
                transport.close()

    @staticmethod
    async def _reap(proc: ChildProcess, readers: list[asyncio.StreamReader]) -> None:
        """Wait for the leader, then for pipe EOF: the rest of the killed group has died too."""
        await proc.wait()
        for reader in readers:
            while await reader.read(CHUNK_SIZE):
                pass  # output nobody will receive any more

    async def _spawn(
        self, workdir: Path
    ) -> tuple[ChildProcess, list[asyncio.StreamReader], list[asyncio.ReadTransport]]:
        if self._start.argv:
            argv = list(self._start.argv)
        elif self._start.shell_command:
            argv = ["/bin/sh", "-c", self._start.shell_command]
        else:
            raise StartError("empty command (neither argv nor shell_command)")
        try:
            os.makedirs(workdir, exist_ok=True)  # a few local syscalls; not worth a thread
        except OSError as exc:
            raise StartError(f"cannot create {workdir}: {exc.strerror or exc}") from None
        env = dict(os.environ)
        env.update(self._start.env)
        env["PWD"] = str(workdir)
        # Our own pipes (not asyncio's PIPE) so we own the read transports and can stop waiting
        # for EOF when an escaped grandchild keeps a pipe open.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = spawn(argv, workdir, env, stdout=out_w, stderr=err_w)
        except BaseException as exc:
            for fd in (out_r, err_r):
                os.close(fd)
            if isinstance(exc, OSError):  # name the program, not only the errno text
                raise StartError(f"{argv[0]}: {exc.strerror or exc}") from None
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        readers: list[asyncio.StreamReader] = []
        transports: list[asyncio.ReadTransport] = []
        loop = asyncio.get_running_loop()
        try:
            for fd in (out_r, err_r):
                reader = asyncio.StreamReader(limit=CHUNK_SIZE)
                pipe: IO[bytes] = os.fdopen(fd, "rb", buffering=0)
                transport, _ = await loop.connect_read_pipe(_protocol_factory(reader), pipe)
                readers.append(reader)
                transports.append(transport)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            for transport in transports:
                transport.close()
            raise
        return proc, readers, transports

    async def _pump(self, channel: int, reader: asyncio.StreamReader) -> None:
        """Read one pipe and send it in coalesced chunks of at most CHUNK_SIZE bytes."""
        loop = asyncio.get_running_loop()
        buf = bytearray()
        marks: list[int] = []  # flattened (offset in buf, unix ms) of the reads in buf
        redact = self._redactor.stream()
        flush_at = 0.0
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                if pending is None:
                    # Reading at most what fits keeps len(buf) <= CHUNK_SIZE.
                    pending = asyncio.ensure_future(reader.read(max(1, CHUNK_SIZE - len(buf))))
                if buf:
                    done, _ = await asyncio.wait(
                        {pending}, timeout=max(0.0, flush_at - loop.time())
                    )
                    if not done:
                        await self._send_chunk(channel, bytes(buf), tuple(marks))
                        buf.clear()
                        marks.clear()
                        continue
                data = await pending
                pending = None
                if not data:
                    break
                self._last_output = loop.time()
                now_ms = time.time_ns() // 1_000_000
                if not buf:
                    flush_at = self._last_output + COALESCE_DELAY
                    marks[:] = (0, now_ms)
                elif now_ms - marks[-1] >= MARK_RESOLUTION_MS:
                    marks += (len(buf), now_ms)
                buf += redact.feed(data)  # may be longer than data: "<secret NAME>"
                while len(buf) >= CHUNK_SIZE:
                    head, marks[:] = split_marks(marks, CHUNK_SIZE)
                    await self._send_chunk(channel, bytes(buf[:CHUNK_SIZE]), head)
                    del buf[:CHUNK_SIZE]
            buf += redact.flush()
            while buf:
                head, marks[:] = split_marks(marks, CHUNK_SIZE)
                await self._send_chunk(channel, bytes(buf[:CHUNK_SIZE]), head)
                del buf[:CHUNK_SIZE]
        finally:
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})  # the reader accepts one waiter at a time

    async def _drain(
        self, pumps: list[asyncio.Task[None]], transports: list[asyncio.ReadTransport]
    ) -> None:
        """Wait for the pumps to reach EOF, but not for pipes that stay silent after the exit."""
        loop = asyncio.get_running_loop()
        pending: set[asyncio.Task[None]] = set(pumps)
        while pending:
            done, pending = await asyncio.wait(pending, timeout=self._drain_timeout)
            for task in done:
                task.result()  # propagate a failing sink
            silent = loop.time() - self._last_output
            if pending and not self._sending and silent >= self._drain_timeout:
                # Closing gives the readers EOF after what they already buffered; whoever still
                # holds the write end gets EPIPE.
                for transport in transports:
                    transport.close()

    async def _watchdog(self, started: float) -> None:
        """Kill on `timeout` seconds without output or `max_time` seconds in all."""
        loop = asyncio.get_running_loop()
        timeout, max_time = self._start.timeout, self._start.max_time
        while not self._kill_reason:
            now = loop.time()
            if self._sending:
                # Blocked on flow control is not silence: the command is producing output
                # faster than the coordinator stores it.
                self._last_output = now
            deadlines: list[tuple[float, str]] = []
            if timeout > 0:
                deadlines.append((self._last_output + timeout, "timeout"))
            if max_time > 0:
                deadlines.append((started + max_time, "max_time"))
            if not deadlines:
                return
            when, which = min(deadlines)
            if now < when:
                await asyncio.sleep(when - now)
                continue
            if which == "timeout":
                self._kill(
                    "timeout",
                    f"command timed out: {timeout:g} seconds without output, attempting to kill\n",
                )
            else:
                self._kill(
                    "max_time",
                    f"command timed out: {max_time:g} seconds elapsed, attempting to kill\n",
                )

    # -- killing -----------------------------------------------------------------------------------

    def _kill(self, reason: str, header: str) -> None:
        """Kill the process group now; the header line follows asynchronously (it may wait for
        window room, and a kill must not wait for the coordinator)."""
        if self._kill_reason or self._done:
            return
        self._kill_reason = reason
        self._header_tasks.append(asyncio.create_task(self._send_header(header)))
        self._killpg()

    def _killpg(self) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone

    async def _await_headers(self) -> None:
        for task in self._header_tasks:
            await task

    # -- sending -------------------------------------------------------------------------------------

    async def _send_header(self, text: str) -> None:
        marks = (0, time.time_ns() // 1_000_000)
        await self._send_chunk(HEADER, self._redactor.text(text).encode(), marks)

    async def _send_chunk(self, channel: int, data: bytes, marks: tuple[int, ...]) -> None:
        self._sending += 1
        try:
            async with self._lock:  # one writer at a time: seq order == write order
                await self.delivery.append(channel, data, marks)
        finally:
            self._sending -= 1

    async def _fail_start(self, exc: Exception) -> worker_pb2.CommandFinished:
        reason = f"failed to start: {exc}"
        await self._send_header(reason + "\n")
        return await self._finish(-1, reason)

    async def _finish(self, rc: int, reason: str) -> worker_pb2.CommandFinished:
        async with self._lock:
            finished = worker_pb2.CommandFinished(
                command_id=self.command_id,
                rc=rc,
                reason=self._redactor.text(reason),
                last_seq=self.delivery.last_seq,
            )
        self.on_end(finished)
        await self.delivery.finish(finished)
        return finished


def split_marks(marks: list[int], n: int) -> tuple[tuple[int, ...], list[int]]:
    """Time marks (flattened offset, ms pairs) of the first `n` bytes, and of the rest with
    offsets from `n` on; the rest starts with the time in effect at byte `n`."""
    head: list[int] = []
    tail: list[int] = []
    for i in range(0, len(marks), 2):
        offset, ms = marks[i], marks[i + 1]
        if offset < n:
            head += (offset, ms)
        else:
            tail += (offset - n, ms)
    if head and (not tail or tail[0] != 0):
        tail[:0] = (0, head[-1])
    return tuple(head), tail

"""Step logs as the domain writes them: offsets per channel, and wake-ups for followers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from coordinator.domain.model import LogChunk
from coordinator.domain.workers.commands import STDERR, STDOUT


class ChunkStore(Protocol):
    def append_log(self, log_id: int, seq: int, chunk: LogChunk) -> Awaitable[None]: ...


class LogWatchers:
    """Lets log followers wait for a log to grow, without polling the database."""

    def __init__(self) -> None:
        self._events: dict[int, asyncio.Event] = {}

    def notify(self, log_id: int) -> None:
        ev = self._events.pop(log_id, None)
        if ev is not None:
            ev.set()

    async def wait(self, log_id: int, timeout: float) -> None:
        ev = self._events.setdefault(log_id, asyncio.Event())
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass


class StepLog:
    """An open log of a running step. Tracks offsets; every write is one stored chunk, with
    the time its bytes were produced: the worker's when it says, else `now()` (output of
    commands on the coordinator, header lines, agents that do not send times)."""

    def __init__(
        self, log_id: int, name: str, store: ChunkStore, watchers: LogWatchers,
        now: Callable[[], float] | None = None,
    ) -> None:
        self.log_id = log_id
        self._now = now
        self.name = name
        self._store = store
        self._watchers = watchers
        self._seq = 0
        self.size = 0
        self._channel_size: dict[int, int] = {}
        self._stored: list[LogChunk] = []  # a resumed log's chunks of before the restart

    def resume_after(self, chunks: Sequence[LogChunk]) -> None:
        """Continue a log that already holds `chunks` (a build resumed after a restart). Its
        step is replayed from the start: what it writes again up to the stored end (and the
        output of its journaled commands, `replay`) is not stored twice, only passed over."""
        self._stored = list(chunks)
        self._seq = 0
        self.size = 0
        self._channel_size = {}

    @property
    def position(self) -> int:
        """How many chunks the log holds so far (the next one's seq is this + 1)."""
        return self._seq

    def replay(self, end: int) -> list[LogChunk]:
        """The stored chunks from here to `end` (a journaled command's output), passed over."""
        chunks = self._stored[self._seq:end]
        for c in chunks:
            self._advance(c.channel, len(c.data))
        return chunks

    def rest(self) -> list[LogChunk]:
        """The stored chunks not replayed yet (the output of the command in flight at the
        restart), passed over: what is written from now on is new."""
        return self.replay(len(self._stored))

    def _advance(self, channel: int, n: int) -> tuple[int, int]:
        self._seq += 1
        offset, coff = self.size, self._channel_size.get(channel, 0)
        self.size += n
        self._channel_size[channel] = coff + n
        return offset, coff

    def write(self, channel: int, data: bytes, marks: tuple[int, ...] = ()) -> Awaitable[None]:
        """Queue `data` for storage; the awaitable resolves once it is committed. `marks`: when
        its bytes were produced (flattened (offset in data, unix ms) pairs); () means now."""
        if self._seq < len(self._stored):  # replayed: stored before the restart
            stored = self._stored[self._seq]
            self._advance(stored.channel, len(stored.data))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        if not marks and self._now is not None:
            marks = (0, round(self._now() * 1000))
        offset, coff = self._advance(channel, len(data))
        chunk = LogChunk(channel=channel, data=data, offset=offset, channel_offset=coff, marks=marks)
        fut = self._store.append_log(self.log_id, self._seq, chunk)
        fut_ = asyncio.ensure_future(fut)
        fut_.add_done_callback(lambda _f: self._watchers.notify(self.log_id))
        return fut_


class OutputCollector:
    """Keeps a command's stdout and stderr in memory for a step to read (as Buildbot's
    BufferLogObserver), bounded: bytes past `limit` per channel are dropped, `truncated` says so."""

    def __init__(self, limit: int = 1024 * 1024) -> None:
        self.limit = limit
        self._data: dict[int, bytearray] = {STDOUT: bytearray(), STDERR: bytearray()}
        self.truncated = False

    def feed(self, channel: int, data: bytes) -> None:
        buf = self._data.get(channel)
        if buf is None:
            return  # header lines are not the command's output
        room = self.limit - len(buf)
        if len(data) > room:
            self.truncated = True
        buf += data[: max(room, 0)]

    @property
    def stdout(self) -> str:
        return self._data[STDOUT].decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self._data[STDERR].decode("utf-8", "replace")


LineObserver = Callable[[int, str], None]


class LineSplitter:
    """Cuts a log's output into lines per channel as chunks arrive, for log observers. A line
    split across chunks is joined; only the unfinished line is buffered, and one longer than
    `max_line` is passed on in pieces, so memory stays bounded whatever the log's size."""

    def __init__(self, observers: list[LineObserver], max_line: int = 64 * 1024) -> None:
        self.observers = observers
        self.max_line = max_line
        self._partial: dict[int, bytearray] = {}
        self.error: Exception | None = None

    def feed(self, channel: int, data: bytes) -> None:
        if channel not in (STDOUT, STDERR):
            return
        buf = self._partial.setdefault(channel, bytearray())
        buf += data
        *lines, rest = bytes(buf).split(b"\n")
        while len(rest) > self.max_line:
            lines.append(rest[: self.max_line])
            rest = rest[self.max_line:]
        self._partial[channel] = bytearray(rest)
        for line in lines:
            self._emit(channel, line)

    def flush(self) -> None:
        """The command ended: pass on what is left of each channel's last line."""
        for channel, rest in self._partial.items():
            if rest:
                self._emit(channel, bytes(rest))
        self._partial.clear()

    def _emit(self, channel: int, line: bytes) -> None:
        text = line.decode("utf-8", "replace").rstrip("\r")
        for observer in self.observers:
            try:
                observer(channel, text)
            except Exception as exc:
                # Never let a step's observer break the worker stream that delivers the output;
                # the first error is raised in the step once its command has finished.
                if self.error is None:
                    self.error = exc

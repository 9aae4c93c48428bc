"""A command's output on disk until the coordinator has stored it: what makes a lost
connection cost nothing.

Every chunk a command produces is numbered and appended here first; the connection sends from
the spool and the coordinator's acks trim it. While the coordinator is unreachable the command
keeps running and its output accumulates on disk, not in memory. The spool is bounded: once
`limit` unacknowledged bytes are spooled, `append` waits, so the runner stops reading the
command's pipes and the command blocks on write — output is slowed down, never dropped.

Records live in segment files of about `segment_size` bytes; a segment is deleted once every
record in it is acknowledged, so a long command's spool does not grow with its total output.
Only a small index (seq -> segment, offset, length, channel, time marks) stays in memory. The
time marks say when each chunk's bytes were read from the pipe: a chunk resent after a
reconnect keeps the times it was read at, not the time of the resend.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections import deque
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LIMIT = 64 * 1024 * 1024
SEGMENT_SIZE = 1024 * 1024
# Also bound the in-memory index when chunks are tiny (a line per 20 ms for hours).
MAX_RECORDS = 100_000


@dataclass(frozen=True)
class Record:
    seq: int
    channel: int
    segment: int
    offset: int
    length: int
    marks: tuple[int, ...] = ()  # flattened (offset in the chunk, unix ms) pairs


class Spool:
    def __init__(
        self,
        directory: Path,
        limit: int = DEFAULT_LIMIT,
        segment_size: int = SEGMENT_SIZE,
        max_records: int = MAX_RECORDS,
    ) -> None:
        self._dir = directory
        self._limit = max(1, limit)
        self._segment_size = max(1, segment_size)
        self._max_records = max(1, max_records)
        self._records: deque[Record] = deque()  # unacknowledged, in seq order
        self._bytes = 0  # unacknowledged bytes
        self._acked = 0
        self._seq = 0
        self._segment = -1
        self._segment_fd = -1
        self._segment_len = 0
        self._read_fds: dict[int, int] = {}
        self._changed = asyncio.Event()  # something was appended or acknowledged
        self._sealed = False  # the command ended: nothing more will be appended
        self._closed = False

    # -- state
    @property
    def last_seq(self) -> int:
        """The number of the last record appended (0: none)."""
        return self._seq

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def is_full(self) -> bool:
        return self._bytes >= self._limit or len(self._records) >= self._max_records

    # -- writing
    async def append(self, channel: int, data: bytes, marks: tuple[int, ...] = ()) -> int:
        """Number and store one chunk (and its time marks), waiting while the spool is full;
        its seq."""
        while self.is_full():
            await self._wait_change()
        if self._closed:
            raise RuntimeError("spool is closed")
        if self._segment_fd < 0 or self._segment_len >= self._segment_size:
            self._open_segment()
        offset = self._segment_len
        _write_all(self._segment_fd, data, offset)
        self._segment_len += len(data)
        self._seq += 1
        self._records.append(Record(self._seq, channel, self._segment, offset, len(data), marks))
        self._bytes += len(data)
        self._notify()
        return self._seq

    def _open_segment(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self._segment += 1
        path = self._dir / f"{self._segment:08d}.spool"
        self._segment_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._read_fds[self._segment] = self._segment_fd
        self._segment_len = 0

    # -- reading and trimming
    def read(self, seq: int) -> tuple[int, bytes] | None:
        """(channel, data) of record `seq`, or None if it is acknowledged or not written yet."""
        record = self.read_record(seq)
        return None if record is None else record[:2]

    def read_record(self, seq: int) -> tuple[int, bytes, tuple[int, ...]] | None:
        """(channel, data, time marks) of record `seq`, or None if it is acknowledged or not
        written yet."""
        if not self._records or seq <= self._acked or seq > self._seq:
            return None
        rec = self._records[seq - self._records[0].seq]
        return rec.channel, os.pread(self._read_fds[rec.segment], rec.length, rec.offset), rec.marks

    def bytes_between(self, after: int, upto: int) -> int:
        """Bytes of the records after `after` up to `upto` (those still spooled)."""
        return sum(r.length for r in self._records if after < r.seq <= upto)

    def ack(self, seq: int) -> None:
        """Every record up to `seq` is stored by the coordinator: forget them."""
        seq = min(seq, self._seq)
        if seq <= self._acked:
            return
        self._acked = seq
        while self._records and self._records[0].seq <= seq:
            self._bytes -= self._records.popleft().length
        # Segments before the oldest live record (and the current one if all are acked) go.
        keep_from = self._records[0].segment if self._records else self._segment + 1
        for segment in [s for s in self._read_fds if s < keep_from and s != self._segment]:
            os.close(self._read_fds.pop(segment))
            _unlink(self._dir / f"{segment:08d}.spool")
        if not self._records and self._segment_fd >= 0:
            # Everything is stored: start the current segment over instead of growing it.
            os.ftruncate(self._segment_fd, 0)
            self._segment_len = 0
        self._notify()

    async def wait_beyond(self, seq: int) -> None:
        """Return once a record after `seq` exists."""
        while self._seq <= seq and not self._sealed and not self._closed:
            await self._wait_change()

    def seal(self) -> None:
        """The command ended: wake whoever waits for more records."""
        self._sealed = True
        self._notify()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()

    def close(self) -> None:
        """Delete the files (the command is over, or abandoned)."""
        self._closed = True
        for fd in self._read_fds.values():
            os.close(fd)
        self._read_fds.clear()
        self._segment_fd = -1
        shutil.rmtree(self._dir, ignore_errors=True)
        self._notify()


def _write_all(fd: int, data: bytes, offset: int) -> None:
    # pwrite: the segment may have been truncated, so the fd's own position means nothing.
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass

"""Step logs as the domain writes them: offsets per channel, and wake-ups for followers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Protocol

from coordinator.domain.model import LogChunk


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
    """An open log of a running step. Tracks offsets; every write is one stored chunk."""

    def __init__(self, log_id: int, name: str, store: ChunkStore, watchers: LogWatchers) -> None:
        self.log_id = log_id
        self.name = name
        self._store = store
        self._watchers = watchers
        self._seq = 0
        self.size = 0
        self._channel_size: dict[int, int] = {}

    def write(self, channel: int, data: bytes) -> Awaitable[None]:
        """Queue `data` for storage; the awaitable resolves once it is committed."""
        self._seq += 1
        coff = self._channel_size.get(channel, 0)
        chunk = LogChunk(channel=channel, data=data, offset=self.size, channel_offset=coff)
        self.size += len(data)
        self._channel_size[channel] = coff + len(data)
        fut = self._store.append_log(self.log_id, self._seq, chunk)
        fut_ = asyncio.ensure_future(fut)
        fut_.add_done_callback(lambda _f: self._watchers.notify(self.log_id))
        return fut_

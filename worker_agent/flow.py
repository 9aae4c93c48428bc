"""Per-command flow-control window: at most `size` output chunks in flight without an ack."""

from __future__ import annotations

import asyncio


class FlowWindow:
    """Counts sent and acknowledged chunk numbers; `wait_for_room` blocks while the window is full.

    The runner waits here before sending each chunk, so while the coordinator is behind, the runner
    stops reading the child's pipes and the child blocks on write: memory stays bounded.
    """

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._sent = 0
        self._acked = 0
        self._changed = asyncio.Event()

    @property
    def size(self) -> int:
        return self._size

    @property
    def acked(self) -> int:
        return self._acked

    @property
    def in_flight(self) -> int:
        return self._sent - self._acked

    def is_full(self) -> bool:
        return self.in_flight >= self._size

    def note_sent(self, seq: int) -> None:
        self._sent = max(self._sent, seq)

    def ack(self, seq: int) -> None:
        # An ack can never cover chunks not yet sent; clamp so a confused peer cannot open the
        # window beyond what is in flight.
        seq = min(seq, self._sent)
        if seq > self._acked:
            self._acked = seq
            self._changed.set()

    def reset(self, seq: int) -> None:
        """A new connection resends after `seq`, which is both sent and acknowledged."""
        self._sent = self._acked = seq
        self._changed.set()

    async def wait_for_room(self) -> None:
        while self.is_full():
            self._changed.clear()
            await self._changed.wait()
